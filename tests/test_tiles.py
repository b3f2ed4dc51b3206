"""Token tiles: how tiles travel on a stream, the rules that refuse what is not built, and the
energy model's banks and traffic figures."""
import numpy as np
import pytest

from sorbet_hw.hw.blocks import get_block
from sorbet_hw.hw.tiles import tiles
from sorbet_hw.model.params import ParameterError
from tests.test_hostile import one_line_error, sorbet


def test_tiles_partition_tokens_in_order():
    assert tiles(7, 3) == [range(0, 3), range(3, 6), range(6, 7)]
    assert tiles(4, 4) == [range(0, 4)]
    assert tiles(2, 8) == [range(0, 2)]


def test_level_tiles_mark_the_last_beat_of_each_tile():
    block = get_block("bwn_layer")
    p = block.check(block.resolve(dict(inputs=6, outputs=2, inputs_per_cycle=3, tokens_per_tile=2)))
    levels = np.arange(-5, 13).reshape(3, 6) % 7 - 3          # 3 tokens: tiles of 2 and 1
    beats = block.encode(p, levels)["i_stream"]
    last = 1 << (3 * 4)                                       # above three 4-bit levels
    assert [bool(b & last) for b in beats] == [False, False, False, True, False, True]
    untiled = block.encode(block.check(block.resolve(dict(inputs=6, outputs=2, inputs_per_cycle=3))), levels)
    assert [b & (last - 1) for b in beats] == untiled["i_stream"]


def _decode_tiles(beats, p, layout):
    """An independent reading of tiled event beats: per tile, the sum of each token's levels
    at each index; checks indices never go down within a tile."""
    index_bits = layout["index"].width
    level_bits = layout["levels"].shape.elem_shape.width
    tile = layout["levels"].shape.length
    last_at = index_bits + level_bits * tile
    out, current, previous = [], np.zeros((tile, p.inputs), np.int64), -1
    for beat in beats:
        if beat >> last_at & 1:
            count = (beat >> (last_at + 1)) + 1
            out.extend(current[:count])
            current, previous = np.zeros((tile, p.inputs), np.int64), -1
            continue
        index = beat & ((1 << index_bits) - 1)
        assert index >= previous
        previous = index
        for t in range(tile):
            level = (beat >> (index_bits + t * level_bits)) & ((1 << level_bits) - 1)
            current[t, index] += level - (1 << level_bits) if level >> (level_bits - 1) else level
    return np.array(out)


@pytest.mark.parametrize("kind", ["graded", "unit"])
def test_event_tiles_carry_every_token_of_an_index_in_one_beat(kind):
    block = get_block("event_if_layer")
    p = block.check(block.resolve(dict(inputs=10, outputs=4, lanes=2, tokens_per_tile=3, event_kind=kind)))
    rng = np.random.default_rng(1)
    levels = rng.integers(-8, 8, size=(7, 10))
    levels[rng.random(levels.shape) < 0.5] = 0
    layout = block.ports["i_stream"].layout(p)
    beats = block.encode(p, levels)["i_stream"]
    assert np.array_equal(_decode_tiles(beats, p, layout), levels)
    nonzero_rows = sum(len(np.flatnonzero(np.abs(levels[t.start:t.stop]).max(axis=0))) for t in tiles(7, 3))
    if kind == "graded":          # one beat per row some token of the tile uses, a last per tile
        assert len(beats) == nonzero_rows + 3


def test_tiles_not_built_are_refused_in_one_line():
    with pytest.raises(ParameterError, match="tokens_per_tile > 1 needs skip_zeros=0"):
        get_block("bwn_layer").check(dict(inputs=8, outputs=4, skip_zeros=True, tokens_per_tile=2))
    with pytest.raises(ParameterError, match="cannot hold a tile"):
        get_block("event_if_layer").check(dict(inputs=8, outputs=4, tokens_per_tile=2, batch=4))
    with pytest.raises(ParameterError, match="tokens_per_tile"):
        get_block("bwn_layer").check(dict(inputs=8, outputs=4, tokens_per_tile=0))


def test_memories_are_charged_per_bank():
    from sorbet_hw.synth.activity import BANK_BITS, memory_bit_energy
    assert memory_bit_energy(4 * BANK_BITS, banked=True) == memory_bit_energy(BANK_BITS)
    assert memory_bit_energy(4 * BANK_BITS) == pytest.approx(2 * memory_bit_energy(BANK_BITS))
    assert memory_bit_energy(1024, banked=True) == memory_bit_energy(1024)


def test_traffic_counts_weight_reads_and_energy_per_useful_operation():
    from sorbet_hw.synth.layer_energy import traffic
    result = {
        "recipe": {"a": [("event_if_layer.query", 1.0), ("bspn.x", 1.0)], "b": [("mac_layer.query", 3.0)]},
        "measured": {"event_if_layer.query": {"cycles": 100, "memories": {
                         "weights": {"bits": 64, "read_bits": 40, "written_bits": 0},
                         "events": {"bits": 8, "read_bits": 5, "written_bits": 5}}},
                     "bspn.x": {"cycles": 7, "memories": {}},
                     "mac_layer.query": {"cycles": 10, "memories": {
                         "weights": {"bits": 64, "read_bits": 64, "written_bits": 0}}}},
        "layer": {"a": {"joules": 2e-12}, "b": {"joules": 6e-12}}, "useful_ops": 4}
    t = traffic(result)
    assert t["a"] == {"weight_bits_read": 40, "memory_bits": 50, "projection_cycles": 100,
                      "pJ_per_useful_op": pytest.approx(0.5), "monolithic_over_banked": 1.0}
    assert t["b"]["weight_bits_read"] == 192 and t["b"]["projection_cycles"] == 30


def test_the_measured_sentence_has_the_mean_length():
    from sorbet_hw.model.checkpoint import load_packed, shipped_checkpoint
    from sorbet_hw.model.evaluate import tokenize
    from sorbet_hw.model.glue import Examples, get_task
    from sorbet_hw.operations import dev_sample, mean_tokens, typical_sentence
    model = load_packed(shipped_checkpoint("sst2"), "sst2")
    sample = dev_sample(get_task("sst2"), 50)
    sentence = typical_sentence(model, sample)
    (ids, _), = tokenize(model, Examples([sentence], None, [0]))
    assert len(ids) == round(mean_tokens(model, sample))


@pytest.mark.parametrize("args, fragment", [
    (["--tile", "4"], "--tile and --layers apply to --method layer only"),
    (["--method", "layer", "--tile", "-1"], "--tile = -1 is out of range"),
    (["--method", "layer", "--layers", "one"], "--layers one: give layer numbers"),
    (["--method", "layer", "--layers", "9"], "the student has layers 0..5"),
])
def test_energy_tile_options_are_checked_in_one_line(args, fragment, tmp_path):
    one_line_error(sorbet("energy", "--build", tmp_path / "b", *args), 2, fragment)


def test_exported_tiles_replay_through_the_cli(tmp_path):
    """`export-vectors --tile N` writes the projections in tiles; `simulate --vectors` replays
    one (the FFN output projection, 1536 ReLU levels in, on Icarus, bit for bit)."""
    import json
    from sorbet_hw.model.vectors import load_vectors
    out = tmp_path / "v"
    r = sorbet("export-vectors", "--tile", "5", "-o", out)
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "manifest.json").read_text())["tile"] == 5
    assert load_vectors(out / "layer3.value.bwn_layer.npz").params["tokens_per_tile"] == 5
    path = out / "layer0.output.event_if_layer.npz"
    assert load_vectors(path).params["tokens_per_tile"] == 5
    r = sorbet("simulate", "event_if_layer", "--vectors", path, "--simulator", "icarus",
               "--build", tmp_path / "b", timeout=900)
    assert r.returncode == 0, r.stderr
    assert "pass" in r.stdout and "FAIL" not in r.stdout


def test_the_row_union_counts_a_row_once_a_tile():
    import torch
    from sorbet_hw.model.distill import tile_union
    soft = torch.zeros(1, 5, 3)
    soft[0, 0, 0] = soft[0, 1, 0] = 1.0      # row 0 used twice in tile 0: read once
    soft[0, 2, 1] = 0.5                      # tile 1, row 1: half a chance
    soft[0, 4, 2] = 1.0                      # a padding token's use counts nothing
    mask = torch.tensor([[1, 1, 1, 1, 0]])
    used, tiles = tile_union(soft, mask, tile=2)      # tiles {0, 1}, {2, 3}, {4 (padding)}
    assert float(used) == 1.5 and float(tiles) == 2
    soft.requires_grad_(True)
    used, _ = tile_union(soft, mask, tile=2)
    used.backward()
    assert soft.grad[0, 2, 1] > 0 and soft.grad[0, 4, 2] == 0
