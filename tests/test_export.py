"""The shipped checkpoint: packed format, evaluation, conversion exactness on real sentences,
and its exported vectors replayed bit for bit by the cocotb benches."""
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from sorbet_hw.model.checkpoint import load_packed, save_packed, shipped_checkpoint
from sorbet_hw.model.evaluate import tokenize
from sorbet_hw.model.export import DEFAULT_SENTENCE, export_vectors, load_export
from sorbet_hw.model.glue import Examples, get_task
from sorbet_hw.model.integer_model import LINEARS
from sorbet_hw.model.params import ModelFileError
from sorbet_hw.model.spiking import KINDS, SpikingStudent
from sorbet_hw.sim.runner import run_bench
from sorbet_hw.model.vectors import VectorFileError, load_vectors

CLI = [sys.executable, "-m", "sorbet_hw.cli"]
REAL = ["unflinchingly bleak and desperate", DEFAULT_SENTENCE,
        "the movie is a little tired , but the performances are worth the price of admission ."]


@pytest.fixture(scope="module")
def shipped():
    return load_packed(shipped_checkpoint("sst2"), "sst2")


@pytest.fixture(scope="module")
def exported(shipped, tmp_path_factory):
    out = tmp_path_factory.mktemp("vectors") / "sentence"
    manifest = export_vectors(shipped, DEFAULT_SENTENCE, out, source="test")
    return out, manifest


def test_shipped_checkpoint_is_small_and_records_its_metrics():
    path = shipped_checkpoint("sst2")
    assert path.stat().st_size <= 8 * 1024 * 1024
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["task"] == "sst2" and side["config"]["weight_kind"] == "binary"
    assert side["metrics"]["integer"]["accuracy"] > 75


def test_spiking_equals_integer_layer_by_layer_on_real_sentences(shipped):
    spiking = SpikingStudent(shipped)
    data = Examples(REAL, None, np.zeros(len(REAL), np.int64))
    for ids, types in tokenize(shipped, data):
        it, st = [], []
        assert np.array_equal(shipped.forward(ids, types, it), spiking.forward(ids, types, st))
        assert np.array_equal(it[0]["embedding_norm"], st[0]["embedding_norm"])
        for layer in range(1, len(it)):
            for kind in KINDS:
                assert np.array_equal(it[layer][kind], st[layer][kind].sum(0).numpy()), (layer, kind)
            for name in ("scores", "probs", "attention_norm", "output_norm"):
                assert np.array_equal(it[layer][name], st[layer][name]), (layer, name)


def test_zero_silent_signed_spikes_equal_integer_layer_by_layer_on_real_sentences(shipped):
    """|l| spikes of the level's sign, windows of 8 (signed) and 15 (FFN hidden) steps, zero
    silent: the same levels as the integer model, so the same logits."""
    spiking = SpikingStudent(shipped, encoding="signed")
    off = shipped.offset
    data = Examples(REAL, None, np.zeros(len(REAL), np.int64))
    for ids, types in tokenize(shipped, data):
        it, st = [], []
        assert np.array_equal(shipped.forward(ids, types, it), spiking.forward(ids, types, st))
        for layer in range(1, len(it)):
            for kind in KINDS:
                spikes = st[layer][kind]
                unsigned = kind == "intermediate"
                assert spikes.shape[0] == (15 if unsigned else 8), kind
                assert set(np.unique(spikes.numpy())) <= {-1, 0, 1}
                levels = spikes.sum(0).numpy()
                assert np.array_equal(it[layer][kind] - (0 if unsigned else off), levels), (layer, kind)
                # a zero level sends nothing at all; a level l sends |l| spikes of one sign
                assert np.array_equal(np.abs(spikes.numpy()).sum(0), np.abs(levels)), (layer, kind)
            for name in ("scores", "probs", "attention_norm", "output_norm"):
                assert np.array_equal(it[layer][name], st[layer][name]), (layer, name)


def test_a_batch_of_equal_length_sentences_equals_one_at_a_time(shipped):
    from sorbet_hw.model.glue import dev_tsv, read_tsv
    dev = read_tsv(get_task("sst2"), dev_tsv("sst2"))
    items = tokenize(shipped, dev)
    n = 12
    same = [i for i, (ids, _) in enumerate(items) if len(ids) == n][:6]
    assert len(same) == 6
    ids = np.stack([items[i][0] for i in same])
    batch_trace = []
    batch = shipped.forward(ids, np.zeros_like(ids), batch_trace)
    for j, i in enumerate(same):
        trace = []
        logits = shipped.forward(*items[i], trace)
        for layer in range(len(trace)):         # every integer quantity, bit for bit
            for name, value in trace[layer].items():
                assert np.array_equal(batch_trace[layer][name][j], value), (layer, name)
        assert np.allclose(batch[j], logits, rtol=1e-6)    # the float32 head: BLAS order


def test_packed_round_trip_and_bad_checkpoints(shipped, tmp_path):
    path = save_packed(shipped, tmp_path / "copy.npz", task="sst2")
    again = load_packed(path)
    ids = np.array([101, 2009, 1005, 1055, 1037, 11951, 3958, 102])
    assert np.array_equal(again.forward(ids), shipped.forward(ids))
    with pytest.raises(ModelFileError, match="does not exist"):
        load_packed(tmp_path / "missing.npz")
    with pytest.raises(ModelFileError, match="'sst2' model, not 'rte'"):
        load_packed(path, "rte")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match="not a packed checkpoint"):
        load_packed(tmp_path / "junk.npz")
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    manifest = json.loads(arrays["manifest"].tobytes())
    manifest["version"] = 99
    np.savez(tmp_path / "v99.npz", **{**arrays, "manifest": np.frombuffer(json.dumps(manifest).encode(), np.uint8)})
    with pytest.raises(ModelFileError, match="version 99"):
        load_packed(tmp_path / "v99.npz")
    np.savez(tmp_path / "short.npz", **{**arrays, "layers.3.key.bias": arrays["layers.3.key.bias"][:10]})
    with pytest.raises(ModelFileError, match="layers.3.key.bias"):
        load_packed(tmp_path / "short.npz")


def test_eval_command_on_a_tsv(tmp_path):
    tsv = tmp_path / "mini.tsv"
    tsv.write_text("sentence\tlabel\nunflinchingly bleak and desperate \t0\n"
                   "it 's a charming and often affecting journey . \t1\n")
    run = subprocess.run(CLI + ["eval", "--task", "sst2", "--data", str(tsv), "--json"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["examples"] == 2 and result["model"] == "integer"
    assert result["metrics"]["accuracy"] in (0.0, 50.0, 100.0)
    tsv.write_text("sentence\tlabel\ngood\t1\nbad\n")
    run = subprocess.run(CLI + ["eval", "--data", str(tsv)], capture_output=True, text=True)
    assert run.returncode == 1 and "mini.tsv:3" in run.stderr and "Traceback" not in run.stderr
    run = subprocess.run(CLI + ["eval", "--task", "qqp"], capture_output=True, text=True)
    assert run.returncode == 2 and "invalid choice: 'qqp'" in run.stderr
    tsv.write_text("sentence\tlabel\ngood\t1\n")
    run = subprocess.run(CLI + ["eval", "--spiking", "--time-steps", "4", "--data", str(tsv)],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "time_steps" in run.stderr


def test_export_manifest_and_files(exported, shipped):
    out, manifest = exported
    assert load_export(out) == manifest
    names = {i["name"] for i in manifest["instances"]}
    assert "layer0.query" in names and "layer5.ptsoftmax" in names and "embedding_norm" in names
    assert len(names) == 1 + 40 * len(shipped.layers)
    assert "layer5.output.bwn_layer" in names
    # Every instance agrees with its block's reference (layer 0's converters and attention
    # replay on gates in benchmarks/layer_on_gates.py).
    from sorbet_hw.sim.vectors import check_vectors
    for inst in manifest["instances"]:
        if inst["name"].startswith("layer0.") and inst["block"] != "encoder_layer":
            check_vectors(load_vectors(out / inst["file"]), inst["file"], inst["block"])
    q = load_vectors(out / "layer0.query.npz")
    assert q.inputs.shape == (len(manifest["token_ids"]), 16, 384)
    assert 0 <= manifest["ptsoftmax_error"]["base2"] < 1
    (out / "layer1.key.npz").rename(out / "moved.npz")
    try:
        with pytest.raises(VectorFileError, match="layer1.key"):
            load_export(out)
    finally:
        (out / "moved.npz").rename(out / "layer1.key.npz")


def test_exported_parameters_come_from_the_declarations(exported, shipped):
    """Every parameter an exported file carries is read from the student by its block's
    declared source, or is a hardware choice the declaration adds (no hand mapping), and a
    source reads what the student holds."""
    from sorbet_hw.hw.blocks import get_block
    from sorbet_hw.model.params import Param, Site, from_model
    out, manifest = exported
    hardware = {"lanes", "inputs_per_cycle", "skip_zeros", "event_kind"}
    for inst in manifest["instances"]:
        if inst["name"].startswith("layer0.") or inst["name"] == "embedding_norm":
            declared = {p.name: p for p in get_block(inst["block"]).params}
            for name in load_vectors(out / inst["file"]).params:
                assert declared[name].source is not None or name in hardware, (inst["name"], name)
    layer = shipped.layers[2]
    site = Site(shipped, layer, "intermediate", tokens=7, output_signed=False)
    declared = (Param("a", None, source="linear.threshold_shift"), Param("b", None, source="config.time_steps"),
                Param("c", None, source="layer.norms.output_norm.beta"),
                Param("d", None, source=lambda s: s.tokens + 1), Param("e", 3), Param("f", None, source="output_signed"))
    got = from_model(declared, site, a=99, lanes=4)
    assert got["a"] == 99 and got["lanes"] == 4 and got["b"] == shipped.config["time_steps"]
    assert np.array_equal(got["c"], layer.norms["output_norm"].beta) and got["c"].dtype == np.int64
    assert got["d"] == 8 and "e" not in got and got["f"] is False
    assert type(from_model(declared[:1], site)["a"]) is int


@pytest.mark.parametrize("name", ["embedding_norm", "layer0.ptsoftmax", "layer0.attention_norm",
                                  "layer3.ptsoftmax", "layer5.output_norm"])
def test_exported_vectors_replay_on_icarus(exported, name, tmp_path):
    out, _ = exported
    result = run_bench(out / f"{name}.npz", "icarus", build_root=tmp_path)
    assert result.passed, result.first_mismatch


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_rebuilt_baselines_replay_real_vectors(exported, simulator, tmp_path):
    """Softmax and LayerNorm (sequential reciprocal and square root) on layer 0's real score
    rows and residual sums (synth.workloads), bit exact on both simulators."""
    from sorbet_hw.synth.workloads import workloads
    loads = workloads(exported[0], tokens=2)
    for name in ("softmax", "layernorm"):
        result = run_bench(loads[name], simulator, build_root=tmp_path, quick_build=True)
        assert result.passed, f"{name}: {result.first_mismatch}"


def test_exported_if_layer_replays_on_verilator(exported, tmp_path):
    """The real 384 x 384 query projection of layer 0 (16 lanes, 32 inputs a cycle), its
    first three tokens (the whole real layer, IF projections included, replays in
    tests/test_encoder_layer.py)."""
    out, _ = exported
    vectors = load_vectors(out / "layer0.query.npz")
    vectors.inputs, vectors.expected = vectors.inputs[:3], vectors.expected[:3]
    result = run_bench(vectors, "verilator", build_root=tmp_path, quick_build=True)
    assert result.passed, result.first_mismatch


def test_export_command_writes_nothing_half_done(tmp_path):
    run = subprocess.run(CLI + ["export-vectors", "--sentence", "a fine film", "-o", str(tmp_path / "v")],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "v" / "manifest.json").is_file() and not list(tmp_path.glob("*.partial"))
    run = subprocess.run(CLI + ["export-vectors", "--checkpoint", str(tmp_path / "none.npz"),
                                "-o", str(tmp_path / "w")], capture_output=True, text=True)
    assert run.returncode == 1 and "does not exist" in run.stderr and not (tmp_path / "w").exists()
    shutil.rmtree(tmp_path / "v")


BWN_REPLAYS = [(name, "icarus") for name in LINEARS] + [("query", "verilator")]


@pytest.mark.parametrize("name, simulator", BWN_REPLAYS, ids=[f"{s}-{n}" for n, s in BWN_REPLAYS])
def test_exported_bwn_layers_replay_bit_for_bit(exported, name, simulator, tmp_path):
    """Layer 0's projections as the integer model computes them (the fair baseline), on the
    real sentence's levels: the BWN layer matches the spiking model's counts exactly. Icarus
    replays all six, the three shapes among them (their first token: the adder trees cost
    Icarus about 3 s a token on the FFN projections); Verilator the whole query file
    (the suite's time: each real shape is about 50 s of C++ build). All 36 of the model:
    ``python benchmarks/bwn_layer.py``."""
    from sorbet_hw.sim.vectors import check_vectors
    out, _ = exported
    path = out / f"layer0.{name}.bwn_layer.npz"
    vectors = check_vectors(load_vectors(path), path, "bwn_layer")
    assert vectors.params["signed_inputs"] == (name != "output")
    spikes = load_vectors(out / f"layer0.{name}.npz")
    assert np.array_equal(vectors.expected, spikes.expected.sum(axis=1))     # = IF spike counts
    if simulator == "icarus":
        vectors.inputs, vectors.expected = vectors.inputs[:1], vectors.expected[:1]
    result = run_bench(vectors, simulator, build_root=tmp_path, quick_build=True)
    assert result.passed and result.vectors == len(vectors.inputs), result.first_mismatch


# The three shapes on Icarus (384 x 384, 384 x 1536 signed to unsigned, 1536 x 384 unsigned
# to signed), the whole query projection on Verilator.
EVENT_REPLAYS = [(name, "icarus") for name in ("query", "intermediate", "output")] + [("query", "verilator")]


@pytest.mark.parametrize("name, simulator", EVENT_REPLAYS, ids=[f"{s}-{n}" for n, s in EVENT_REPLAYS])
def test_exported_event_layers_replay_bit_for_bit(exported, name, simulator, tmp_path):
    """Layer 0's six projections on zero-silent graded events, on the real sentence, with
    stalls: the event-driven engine gives the spiking model's levels exactly (the offset
    off). The three tokens on Icarus take its whole first drain, where a read address once
    stayed X (an `always @*` Icarus never ran)."""
    from sorbet_hw.sim.vectors import check_vectors
    out, _ = exported
    path = out / f"layer0.{name}.event_if_layer.npz"
    vectors = check_vectors(load_vectors(path), path, "event_if_layer")
    bwn = load_vectors(out / f"layer0.{name}.bwn_layer.npz")
    assert np.array_equal(vectors.inputs, bwn.inputs)          # the same levels in
    offset = 0 if name == "intermediate" else 8
    assert np.array_equal(vectors.expected, bwn.expected - offset)
    if simulator == "icarus":           # three tokens each; Verilator the whole sentence
        vectors.inputs, vectors.expected = vectors.inputs[:3], vectors.expected[:3]
    result = run_bench(vectors, simulator, build_root=tmp_path, quick_build=True,
                       valid_prob=0.8, ready_prob=0.8)
    assert result.passed and result.vectors == len(vectors.inputs), result.first_mismatch



@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_exported_event_converters_replay_bit_for_bit(exported, simulator, tmp_path):
    """The event design's converters on the real sentence, with stalls: the attention input's
    signed levels sent as events, and the FFN output's counted back (the spiking model's
    levels less the offset)."""
    from sorbet_hw.sim.vectors import check_vectors
    out, _ = exported
    counted = load_vectors(out / "layer0.spike_counter.output.npz")
    for name, block in (("attention_input", "event_encoder"), ("output", "event_counter")):
        path = out / f"layer0.{block}.{name}.npz"
        vectors = check_vectors(load_vectors(path), path, block)
        assert np.count_nonzero(vectors.inputs == 0) > 0           # silent channels to skip
        if name == "output":
            assert np.array_equal(vectors.inputs, counted.expected - 8)
        result = run_bench(vectors, simulator, build_root=tmp_path, valid_prob=0.8, ready_prob=0.8)
        assert result.passed and result.vectors == len(vectors.inputs), result.first_mismatch


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_exported_event_attention_replays_bit_for_bit(exported, simulator, tmp_path):
    """Layer 0's attention in the event design on the real sentence, with stalls: the spiking
    attention's levels less the offset (the same integers), silent channels sending nothing."""
    from sorbet_hw.sim.vectors import check_vectors
    out, _ = exported
    path = out / "layer0.event_attention.npz"
    vectors = check_vectors(load_vectors(path), path, "event_attention")
    spiking = load_vectors(out / "layer0.spiking_attention.npz")
    assert np.array_equal(vectors.inputs, spiking.inputs - 8)
    assert np.array_equal(vectors.expected, spiking.expected - 8)
    assert 0 < np.count_nonzero(vectors.inputs == 0) < vectors.inputs.size
    result = run_bench(vectors, simulator, build_root=tmp_path, valid_prob=0.8, ready_prob=0.8)
    assert result.passed and result.vectors == 1, result.first_mismatch


def test_real_layer_energy_charges_every_part_of_each_design(exported):
    """Method 2 at real size (synth.layer_energy): each design's parts of layer 0, and its
    energy against a hand count on made-up measurements."""
    from sorbet_hw.synth import layer_energy
    from sorbet_hw.synth.energy import E_MAC_INT8
    out, manifest = exported
    parts, recipe = layer_energy.design_parts(out, layer_energy.DESIGNS)
    assert set(recipe) == set(layer_energy.DESIGNS)
    assert all(label in parts for items in recipe.values() for label, _ in items)
    # The event design: six projections, the event attention, two encoders, two counters
    # and two norms; Q, K, V and the context are never counted back into levels.
    assert sorted(label for label, _ in recipe["event_driven"]) == sorted(
        [f"event_if_layer.{n}" for n in layer_energy.LINEARS] + ["event_attention", "bspn.attention_norm",
         "bspn.output_norm", "event_encoder.attention_input", "event_encoder.ffn_input",
         "event_counter.attention_output", "event_counter.output"])
    # The MAC layer is measured on the query projection and charged for all six: 4 H^2 + 2 H F
    # synapses over H^2 = 12 for H = 384, F = 1536.
    assert dict(recipe["mac8"])["mac_layer.query"] == 12.0
    assert parts["mac_layer.query"].inputs.shape == (12, 384) and parts["layernorm.output_norm"].params["channels"] == 384
    assert parts["bwn_layer_skip.query"].params["skip_zeros"] and not parts["bwn_layer.query"].params["skip_zeros"]
    measured = {label: {"energy_j": 1e-6 * (i + 1), "energy_ungated_j": 3e-6 * (i + 1)}
                for i, label in enumerate(parts)}
    attention = load_vectors(out / "layer0.spiking_attention.npz")
    energy = layer_energy.layer_energy(parts, recipe, measured, attention)
    q, v = attention.inputs[0, 0] - 8, attention.inputs[0, 2] - 8
    products = {"bwn_dense": 2 * 12 * 12 * 384, "mac8": 2 * 12 * 12 * 384,
                "bwn_skip_zeros": 12 * (np.count_nonzero(q) + np.count_nonzero(v))}
    for design, items in recipe.items():
        want = sum(w * 1e-6 * (list(parts).index(label) + 1) for label, w in items)
        assert energy[design]["joules"] == pytest.approx(want + products.get(design, 0) * E_MAC_INT8)
        assert energy[design]["ungated_joules"] == pytest.approx(3 * want + products.get(design, 0) * E_MAC_INT8)
    inference = layer_energy.per_inference({"tokens": 12, "layers": 6, "layer": energy}, 24.5)
    assert inference["mac8"] == pytest.approx(energy["mac8"]["joules"] / 12 * 24.5 * 6)
    # Layers scaled by their nonzero inputs: only the sparse designs' projections move; here
    # layer L's FFN input is (L + 1) times sparser than layer 0's, the rest as dense.
    result = {"tokens": 12, "layers": 6, "layer": energy}
    nonzero = {k: [0.5] * 6 for k in layer_energy.PROJECTION_INPUTS.values()}
    nonzero["ffn_input"] = [0.9 / (i + 1) for i in range(6)]
    scaled = layer_energy.per_inference_by_layer(result, 24.5, nonzero)
    thinner = sum(1 / (i + 1) for i in range(6))
    for design, inter in (("event_driven", "event_if_layer.intermediate"),
                          ("bwn_skip_zeros", "bwn_layer_skip.intermediate")):
        part = energy[design]["by_part"][inter]
        assert scaled[design] == pytest.approx(inference[design] - part / 12 * 24.5 * (6 - thinner))
    for design in ("bwn_dense", "mac8", "spiking"):
        assert scaled[design] == pytest.approx(inference[design])
    # Measured on layer 3 instead, the other layers scale from layer 3's fractions.
    from_three = layer_energy.per_inference_by_layer({**result, "index": 3}, 24.5, nonzero)
    part = energy["event_driven"]["by_part"]["event_if_layer.intermediate"]
    assert from_three["event_driven"] == pytest.approx(
        inference["event_driven"] - part / 12 * 24.5 * (6 - 4 * thinner))
    # Every layer measured: the layers' energies summed, none extrapolated; layer L here
    # costs L + 1 times layer 0.
    from sorbet_hw.model.params import ParameterError
    layers = [{**result, "index": i, "layer": {d: {**e, "joules": e["joules"] * (i + 1), "by_part": {
        label: j * (i + 1) for label, j in e["by_part"].items()}} for d, e in energy.items()}} for i in range(6)]
    every = layer_energy.per_inference_every_layer(layers[::-1], 24.5)
    assert every["event_driven"] == pytest.approx(energy["event_driven"]["joules"] / 12 * 24.5 * 21)
    # Rescaled to the dev set's sparsity: a sentence half as sparse as the dev set in the FFN
    # input of every layer halves each layer's sparse FFN projection.
    denser = {**nonzero, "ffn_input": [2 * f for f in nonzero["ffn_input"]]}
    rescaled = layer_energy.per_inference_every_layer(layers, 24.5, sentence_nonzero=denser, dev_nonzero=nonzero)
    for design, inter in (("event_driven", "event_if_layer.intermediate"),
                          ("bwn_skip_zeros", "bwn_layer_skip.intermediate")):
        part = energy[design]["by_part"][inter]
        assert rescaled[design] == pytest.approx(every[design] - part / 12 * 24.5 * 21 / 2)
    assert rescaled["bwn_dense"] == pytest.approx(every["bwn_dense"])
    assert "every layer measured" in layer_energy.markdown_every_layer(layers, 24.5, nonzero, denser)
    with pytest.raises(ParameterError, match=r"each of layers 0..5 measured once; got \[0, 1, 2, 3, 5\]"):
        layer_energy.per_inference_every_layer(layers[:4] + layers[5:], 24.5)
    with pytest.raises(ParameterError, match="unknown design bogus"):
        layer_energy.run(None, out, designs=["event_driven", "bogus"])
    with pytest.raises(ParameterError, match="layer 6 is out of range"):
        layer_energy.run(type("Model", (), {"layers": [None] * 6})(), out, layer=6)


# Token tiles on the real sentence: tiles of 5 (12 tokens: 5, 5 and a partial 2, closed by
# its last beat) and the whole sentence, for the dense BWN and the event engine, with stalls
# on both sides; 16 lanes keep the C++ build short (the energy benchmark replays all six
# projections at 48 lanes, at every tile, on gates).
TILE_REPLAYS = [(block, tile) for block in ("bwn_layer", "event_if_layer") for tile in (5, 0)]


@pytest.mark.parametrize("block, tile", TILE_REPLAYS, ids=[f"{b}-tile-{t or 'sentence'}" for b, t in TILE_REPLAYS])
def test_exported_projections_replay_bit_for_bit_in_tiles(exported, block, tile, tmp_path):
    from sorbet_hw.synth.layer_energy import tiled
    out, _ = exported
    vectors = tiled(load_vectors(out / f"layer0.query.{block}.npz"), tile)
    assert vectors.params["tokens_per_tile"] == (tile or len(vectors.inputs))
    vectors.params["lanes"] = 16
    result = run_bench(vectors, "verilator", build_root=tmp_path, quick_build=True,
                       valid_prob=0.8, ready_prob=0.7, seed=2)
    assert result.passed and result.vectors == len(vectors.inputs), result.first_mismatch


def test_exported_unsigned_projection_replays_in_tiles_on_icarus(exported, tmp_path):
    """The FFN output projection (1536 unsigned ReLU levels in) in a tile of 3 tokens, on
    the event engine, on Icarus."""
    from sorbet_hw.synth.layer_energy import tiled
    out, _ = exported
    vectors = load_vectors(out / "layer0.output.event_if_layer.npz")
    vectors.inputs, vectors.expected = vectors.inputs[:3], vectors.expected[:3]
    result = run_bench(tiled(vectors, 3), "icarus", build_root=tmp_path, valid_prob=0.8, ready_prob=0.8)
    assert result.passed and result.vectors == 3, result.first_mismatch
