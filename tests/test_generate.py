"""Generated Verilog: deterministic, lint-clean, accumulate-only, parameters checked."""
import subprocess

import numpy as np
import pytest

from sorbet_hw.hw.blocks import BLOCKS, generate, get_block
from sorbet_hw.model.params import ParameterError
from sorbet_hw.synth.yosys import MULTIPLIER_CELLS, word_level_cells
from tests.configs import CONFIGS

CASES = [(block, name) for block, configs in CONFIGS.items() for name in configs]


@pytest.mark.parametrize("block, name", CASES, ids=[f"{b}-{n}" for b, n in CASES])
def test_verilog_is_deterministic_and_lint_clean(block, name, tmp_path):
    a = generate(block, CONFIGS[block][name], tmp_path / "a")
    b = generate(block, CONFIGS[block][name], tmp_path / "b")
    assert a.read_bytes() == b.read_bytes()
    text = a.read_text()
    assert str(tmp_path) not in text and "/work/" not in text      # no absolute paths
    lint = subprocess.run(["verilator", "--lint-only", "-Wall", str(a)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stderr[-2000:]


@pytest.mark.parametrize("block, name", CASES, ids=[f"{b}-{n}" for b, n in CASES])
def test_spiking_blocks_infer_no_multiplier_and_baselines_do(block, name, tmp_path):
    """The spiking blocks and the BWN layer add and subtract only; the conventional
    baselines multiply."""
    path = generate(block, CONFIGS[block][name], tmp_path)
    cells = word_level_cells(path, block)
    assert cells, "yosys reported no cells"
    if not get_block(block).multiplies:
        assert not set(cells) & set(MULTIPLIER_CELLS), cells
    else:                   # the conventional arithmetic the spiking block does without
        assert set(cells) & set(MULTIPLIER_CELLS), cells


def test_a_multiplier_would_be_seen(tmp_path):
    (tmp_path / "mul.v").write_text(
        "module mul(input [7:0] a, input [7:0] b, output [15:0] y); assign y = a * b; endmodule\n")
    assert "$mul" in word_level_cells(tmp_path / "mul.v", "mul")


@pytest.mark.parametrize("block, params, name", [
    ("ptsoftmax", dict(row_length=0), "row_length"),
    ("ptsoftmax", dict(row_length=5000), "row_length"),
    ("ptsoftmax", dict(score_width=0), "score_width"),
    ("ptsoftmax", dict(frac_bits=12), "frac_bits"),
    ("ptsoftmax", dict(out_frac_bits=-1), "out_frac_bits"),
    ("ptsoftmax", dict(rounding="down"), "rounding"),
    ("ptsoftmax", dict(colour=1), "colour"),
    ("bspn", dict(groups=5), "groups"),
    ("bspn", dict(channels=0), "channels"),
    ("bspn", dict(in_width=1), "in_width"),
    ("bspn", dict(out_width=40), "out_width"),
    ("bspn", dict(channels=4, groups=1, beta=[0, 0, 0, 999]), "beta"),
    ("if_layer", dict(lanes=5), "lanes"),
    ("if_layer", dict(inputs_per_cycle=5), "inputs_per_cycle"),
    ("if_layer", dict(inputs=0), "inputs"),
    ("if_layer", dict(steps=8), "act_bits"),
    ("if_layer", dict(weights=np.full((4, 2), 2)), "weights"),
    ("if_layer", dict(weight_kind="quaternary"), "weight_kind"),
    ("softmax", dict(exp_bits=0), "exp_bits"),
    ("softmax", dict(frac_bits=13, score_width=16), "frac_bits"),
    ("layernorm", dict(channels=1), "channels"),
    ("layernorm", dict(gamma_frac_bits=8), "gamma_frac_bits"),
    ("layernorm", dict(channels=2, gamma=[1, 1000]), "gamma"),
    ("bwn_layer", dict(weights=np.full((4, 2), 2)), "weights"),
    ("bwn_layer", dict(lanes=5), "lanes"),
    ("bwn_layer", dict(act_bits=1), "act_bits"),
    ("bwn_layer", dict(skip_zeros=2), "skip_zeros"),
    ("bwn_layer", dict(signed_inputs="yes"), "signed_inputs"),
    ("event_if_layer", dict(lanes=5), "lanes"),
    ("event_if_layer", dict(act_bits=9), "act_bits"),
    ("event_if_layer", dict(event_kind="burst"), "event_kind"),
    ("event_if_layer", dict(input_signed=2), "input_signed"),
    ("event_if_layer", dict(weights=np.full((4, 2), 2)), "weights"),
    ("mac_layer", dict(weights=np.full((4, 2), 200)), "weights"),
    ("mac_layer", dict(lanes=3), "lanes"),
    ("mac_layer", dict(shift=41), "shift"),
])
def test_out_of_range_parameters_name_the_parameter(block, params, name, tmp_path):
    with pytest.raises(ParameterError, match=name):
        generate(block, params, tmp_path)
    assert not list(tmp_path.glob("*.v")), "no Verilog may be left behind"


def test_every_block_has_a_bench_and_a_reference():
    import importlib
    for block in BLOCKS:
        bench = importlib.import_module(f"sorbet_hw.sim.{block}")
        importlib.import_module(f"sorbet_hw.model.{block}")
        for name in ("make_vectors", "cycles_per_beat"):
            assert callable(getattr(bench, name)), (block, name)
        assert callable(get_block(block).reference)
        assert get_block(block).resolve({})
