"""Energy method 2: VCD toggle counting, the capacitive energy sum on a real Yosys netlist,
and a measured block whose energy follows its input activity."""
import numpy as np
import pytest

from hw.blocks import get_block
from sim import ptsoftmax as ptsoftmax_bench
from sim.vectors import Vectors
from sorbet_hw.tools import ToolError
from synth.activity import (AND2, FF, INV, OUTPUT_PORT_LOAD, VDD, count_toggles, gate_netlist,
                            measure, pin_capacitance, switching_energy)

VCD = """$timescale 1ps $end
$scope module top $end
$var wire 1 ! clk $end
$var wire 4 " bus [3:0] $end
$var reg 1 # \\$flag $end
$upscope $end
$enddefinitions $end
#0
$dumpvars
0!
bx "
x#
$end
#5
1!
b101 "
0#
#10
0!
b1010 "
1#
#15
1!
b11 "
z#
#20
0#
"""


def test_toggles_count_each_bit_and_ignore_x_and_z(tmp_path):
    path = tmp_path / "a.vcd"
    path.write_text(VCD)
    toggles = count_toggles(path)
    assert toggles["clk"] == [3]
    # bus: x -> 0101 (not counted) -> 1010 (every bit) -> 0011 (bits 0 and 3)
    assert toggles["bus"] == [2, 1, 1, 2]
    assert toggles["$flag"] == [1]          # x->0 no, 0->1 yes, 1->z no, z->0 no


def test_energy_is_toggles_times_half_c_v_squared_on_a_yosys_netlist(tmp_path):
    (tmp_path / "t.v").write_text("module t(input a, input b, output y);\n"
                                  "assign y = a & b;\nendmodule\n")
    _, netlist = gate_netlist(tmp_path / "t.v", "t", tmp_path / "work")
    activity = switching_energy(netlist, {"a": [2], "b": [0], "y": [1]}, "t")
    half_v2 = 0.5 * VDD ** 2 * FF
    expected_a = 2 * half_v2 * AND2                       # a drives one AND input
    expected_y = 1 * half_v2 * (OUTPUT_PORT_LOAD + AND2)  # output load + the AND's own output
    assert activity.by_driver["$_AND_"] == pytest.approx(expected_y)
    assert activity.by_driver["input ports"] == pytest.approx(expected_a)
    assert activity.energy_j == pytest.approx(expected_a + expected_y)
    assert activity.toggles == 3 and activity.unmatched == 0


def test_unknown_cells_are_an_error_naming_the_table():
    assert pin_capacitance("$_DFFE_PP_", "C") == INV
    with pytest.raises(ToolError, match="PIN_CAPACITANCE"):
        pin_capacitance("$_TBUF_", "A")


def test_measured_energy_follows_input_activity(tmp_path):
    """The same PTsoftmax gates, bit exact on both: rows of zeros leave the datapath still,
    random rows toggle it, so they cost more energy per score (the clock costs the same)."""
    params = get_block("ptsoftmax").resolve({"row_length": 4, "score_width": 8})
    rng = np.random.default_rng(0)
    random_rows = rng.integers(-128, 128, size=(24, 4))
    zero_rows = np.zeros_like(random_rows)
    results = {}
    for name, rows in (("random", random_rows), ("zero", zero_rows)):
        v = Vectors("ptsoftmax", params, rows, ptsoftmax_bench.reference(params, rows))
        results[name] = measure(v, build_root=tmp_path)
        assert results[name]["unmatched"] == 0 and results[name]["elements"] == 96
    assert results["zero"]["toggles"] < 0.8 * results["random"]["toggles"]
    assert results["zero"]["energy_per_element_j"] < 0.9 * results["random"]["energy_per_element_j"]
    assert results["zero"]["by_driver"]["clock"] == pytest.approx(results["random"]["by_driver"]["clock"], rel=0.01)
    assert not list(tmp_path.rglob("*.vcd"))            # counted, then deleted
    # Measured once: the second call reads the kept result.
    again = measure(Vectors("ptsoftmax", params, random_rows,
                            ptsoftmax_bench.reference(params, random_rows)), build_root=tmp_path)
    assert again == results["random"]


def test_workload_pairs_share_their_real_inputs(tmp_path):
    from model.checkpoint import load_packed, shipped_checkpoint
    from model.export import DEFAULT_SENTENCE, export_vectors
    from synth.workloads import LAYER_SLICE, NORM_CHANNELS, PAIRS, pairs, workloads
    export_vectors(load_packed(shipped_checkpoint("sst2")), DEFAULT_SENTENCE, tmp_path, source="test")
    loads = workloads(tmp_path, tokens=3)
    pt, softmax, norm, layernorm = (loads[k] for k in ("ptsoftmax", "softmax", "bspn", "layernorm"))
    spiking, mac, bwn, skip = (loads[k] for k in ("if_layer", "mac_layer", "bwn_layer", "bwn_layer_skip"))
    assert len(pairs(tmp_path, tokens=3)) == len(PAIRS) == 5
    heads, n = 12, pt.params["row_length"]
    assert pt.inputs.shape == (heads * 3, n) and np.array_equal(pt.inputs, softmax.inputs)
    assert norm.inputs.shape == (3, NORM_CHANNELS) and np.array_equal(norm.inputs, layernorm.inputs)
    assert spiking.inputs.shape == (3, 16, LAYER_SLICE["inputs"])
    assert np.array_equal(mac.inputs, spiking.inputs.sum(1))                 # the spike counts
    assert np.array_equal(np.sign(mac.params["weights"]), spiking.params["weights"])
    assert np.abs(mac.params["weights"]).max() > 1                           # 8-bit weights
    # The fair baseline: the same counts as signed levels, the same outputs as the IF layer.
    assert np.array_equal(bwn.inputs, spiking.inputs.sum(1) - 8) and np.array_equal(bwn.inputs, skip.inputs)
    assert np.array_equal(bwn.expected, spiking.expected.sum(1))
    assert skip.params["skip_zeros"] and not bwn.params["skip_zeros"]
