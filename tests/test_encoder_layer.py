"""The whole encoder layer in RTL: tiny layers on both simulators, the real layer of the
shipped student on a real sentence, and its parameters checked."""
import subprocess

import numpy as np
import pytest

from sorbet_hw.hw.blocks import generate, get_block
from sorbet_hw.model.encoder_layer import encoder_layer, layer_params
from sorbet_hw.model.params import ParameterError
from sorbet_hw.sim.encoder_layer import make_vectors
from sorbet_hw.sim.runner import run_bench
from sorbet_hw.synth.yosys import MULTIPLIER_CELLS, word_level_cells

# The demo layer: hidden 32, 2 heads, FFN 64, 4 tokens (untrained weights, calibrated steps).
TINY = dict(lanes=8, inputs_per_cycle=8)
# Another shape: ternary weights, 4 heads of 4, a serial adder (2 inputs a cycle), 3 tokens.
TERNARY = dict(hidden=16, heads=4, ffn=48, tokens=3, weight_kind="ternary", seed=3, lanes=4,
               inputs_per_cycle=2)


@pytest.mark.parametrize("engine", ["event", "if"])
def test_tiny_layer_with_stalls_matches_the_integer_model_on_icarus(engine, tmp_path):
    params = get_block("encoder_layer").resolve({**TINY, "engine": engine})
    vectors = make_vectors(params, 2, seed=1)            # two sentences, back to back
    result = run_bench(vectors, "icarus", valid_prob=0.7, ready_prob=0.7, seed=2,
                       build_root=tmp_path)
    assert result.passed, result.first_mismatch
    assert result.beats_out == 2 * 4 * 32


@pytest.mark.parametrize("engine", ["event", "if"])
def test_ternary_layer_matches_on_verilator_and_is_lint_clean_and_multiplier_free(engine, tmp_path):
    config = {**TERNARY, "engine": engine}
    params = get_block("encoder_layer").resolve(config)
    result = run_bench(make_vectors(params, 2, seed=4), "verilator", build_root=tmp_path)
    assert result.passed, result.first_mismatch
    a = generate("encoder_layer", config, tmp_path / "a")
    b = generate("encoder_layer", config, tmp_path / "b")
    assert a.read_bytes() == b.read_bytes()
    lint = subprocess.run(["verilator", "--lint-only", "-Wall", str(a)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stderr[-2000:]
    cells = word_level_cells(a, "encoder_layer")
    assert cells and not set(cells) & set(MULTIPLIER_CELLS), cells


def test_a_wrong_layer_is_caught(tmp_path):
    params = get_block("encoder_layer").resolve(TINY)
    vectors = make_vectors(params, 1, seed=1)
    vectors.expected[0, 2, 5] += 1                       # one value of one token
    result = run_bench(vectors, "icarus", build_root=tmp_path)
    assert not result.passed and result.mismatching_vectors == 1


@pytest.mark.parametrize("change, name", [
    (dict(lanes=5), "lanes"),
    (dict(inputs_per_cycle=64), "inputs_per_cycle"),
    (dict(heads=3), "heads"),
    (dict(steps=8), "act_bits"),
    (dict(input_exponent=-9), "input_exponent"),
    (dict(tokens=0), "tokens"),
    (dict(engine="dense"), "engine"),
])
def test_out_of_range_layer_parameters_name_the_parameter(change, name, tmp_path):
    params = {**get_block("encoder_layer").resolve(TINY), **change}
    with pytest.raises(ParameterError, match=name):
        generate("encoder_layer", params, tmp_path)
    assert not list(tmp_path.glob("*.v"))


def test_wrong_weight_shape_is_named(tmp_path):
    params = get_block("encoder_layer").resolve(TINY)
    params["output_weights"] = params["output_weights"][:, :8]
    with pytest.raises(ParameterError, match="output_weights"):
        generate("encoder_layer", params, tmp_path)


def test_layer_params_round_trip_the_shipped_layer():
    from sorbet_hw.model.checkpoint import load_packed, shipped_checkpoint
    model = load_packed(shipped_checkpoint("sst2"), "sst2")
    h = np.random.default_rng(0).integers(-128, 128, size=(2, 5, 384))
    params = layer_params(model, 3, tokens=5)
    assert np.array_equal(encoder_layer(h, params), model.layer(model.layers[3], h))


@pytest.mark.slow
def test_real_layer_replays_the_real_sentence_bit_for_bit(tmp_path):
    """Layer 0 of the shipped student (384 hidden, 12 heads, FFN 1536, 32 lanes) on the
    default sentence's 12 tokens, on the event-driven engine (the default: zero-silent events
    from block to block, event attention), on Verilator (under a minute, build included)."""
    from sorbet_hw.model.checkpoint import load_packed, shipped_checkpoint
    from sorbet_hw.model.export import DEFAULT_SENTENCE, export_vectors
    from sorbet_hw.model.vectors import load_vectors
    model = load_packed(shipped_checkpoint("sst2"), "sst2")
    export_vectors(model, DEFAULT_SENTENCE, tmp_path / "v", source="test")
    vectors = load_vectors(tmp_path / "v" / "layer0.encoder_layer.npz")
    assert vectors.inputs.shape == (1, 12, 384)
    assert get_block("encoder_layer").resolve(vectors.params)["engine"] == "event"
    result = run_bench(vectors, "verilator", build_root=tmp_path)
    assert result.passed, result.first_mismatch
