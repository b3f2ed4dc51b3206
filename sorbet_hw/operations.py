"""What the command line and the main job both do: the library the CLI calls, never the
reverse (`sorbet_hw.flow` runs its stages through these, not through `sorbet_hw.cli`)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sorbet_hw.model.params import ParameterError

if TYPE_CHECKING:
    from sorbet_hw.executor import Pending

# Random vectors are built in memory before a simulation starts: their count is bounded, and
# so is their total size (int64 elements), checked before anything is allocated.
MAX_COUNT = 1_000_000
MAX_VECTOR_ELEMENTS = 1 << 25


def check_run_options(count: int | None, seed: int) -> None:
    if count is not None and not 1 <= count <= MAX_COUNT:
        raise ParameterError(f"--count = {count} is out of range; allowed: 1..{MAX_COUNT:,}")
    check_seed(seed)


def check_seed(seed: int) -> None:
    if not 0 <= seed < 2 ** 32:
        raise ParameterError(f"--seed = {seed} is out of range; allowed: 0..{2 ** 32 - 1}")


def make_random_vectors(block: str, params: dict, count: int, seed: int):
    """The bench's random vectors for ``params``, once the parameters and the vectors' size
    are known to be acceptable (nothing is allocated before)."""
    import importlib
    from sorbet_hw.hw.blocks import get_block
    check_run_options(count, seed)
    resolved = get_block(block).resolve(params)
    shape, _, _ = get_block(block).input_spec(get_block(block).check(resolved))
    bench = importlib.import_module(f"sorbet_hw.sim.{block}")
    elements = (count + 16) * int(np.prod(shape, dtype=np.float64))
    if elements > MAX_VECTOR_ELEMENTS:
        raise ParameterError(f"--count {count} vectors of shape {tuple(shape)} would take "
                             f"{elements:,} values, over the limit of {MAX_VECTOR_ELEMENTS:,}: "
                             f"lower --count")
    return bench.make_vectors(resolved, count, seed)


def simulate_random(block: str, params: dict, simulator: str, count: int, seed: int, build: Path,
           stall: bool):
    """Random vectors for ``params`` replayed on ``simulator`` (random stalls if ``stall``)."""
    from sorbet_hw.sim.runner import check_build_path, run_bench
    check_build_path(build, simulator)
    vectors = make_random_vectors(block, params, count, seed)
    prob = 0.8 if stall else 1.0
    return run_bench(vectors, simulator, build_root=build, valid_prob=prob, ready_prob=prob, seed=seed)


def energy_report(task, model, checkpoint: Path, build: Path, *, sentences: int, method: str,
                  sample_tokens: int, sentence: str | None = None, progress: bool = True,
                  measurements=None, tile: int = 1, layers: list[int] | None = None) -> dict:
    """Both energy methods for ``model``; writes build/energy/energy.{json,md}, returns the
    report (also the main job's energy stage). ``measurements``: the gate-level runs as
    :func:`submit_measurements` sent them off ahead (the main job's, on Dask); without it
    they run here, one after another."""
    import json
    from sorbet_hw.model.evaluate import evaluate_spiking
    from sorbet_hw.synth import energy
    check_energy_options(sentences, method, sample_tokens, build)
    sample = dev_sample(task, sentences)
    n = len(sample.labels)
    tokens = round(mean_tokens(model, sample))
    shapes = (energy.MINILM, energy.BERT_BASE)
    report: dict = {"sentences": n, "tokens": tokens}
    text = ""
    if method in ("activity", "both") and measurements is None:
        measurements = submit_measurements(model, checkpoint, build, sample_tokens=sample_tokens,
                                           sentence=sentence, progress=progress)
    if method in ("ops", "both", "layer"):
        spiking = evaluate_spiking(model, task, sample, progress=progress)
        rates = {"offset": energy.mean_rates(spiking["spike_rates"]),
                 "+-1 spikes": energy.mean_rates(spiking["signed_spike_rates"])}
        results = [{**energy.inference_energy(shape, tokens, r, spiking["time_steps"]), "encoding": enc}
                   for shape in shapes for enc, r in rates.items()]
        nonzero = energy.mean_rates(spiking["nonzero_levels"])
        integer = {shape.name: energy.integer_designs(shape, tokens, rates["offset"], nonzero,
                                                      spiking["time_steps"]) for shape in shapes}
        report["ops"] = {"rates": rates, "rates_per_layer": spiking["spike_rates"],
                         "signed_rates_per_layer": spiking["signed_spike_rates"],
                         "nonzero_levels": nonzero, "nonzero_levels_per_layer": spiking["nonzero_levels"],
                         "integer_designs": integer, "results": results}
        # Per synapse and inference: the events an input sends each synapse it drives, by
        # encoding, and the work each design does per synapse (accumulates, or the dense IF
        # layer's scans of every input at every step).
        report["events_per_synapse"] = {
            kind: {"offset_spikes": rates["offset"][kind] * spiking["time_steps"] * tokens,
                   "signed_spikes": rates["+-1 spikes"][kind] * spiking["time_steps"] * tokens,
                   "unit_events": rates["+-1 spikes"][kind] * spiking["time_steps"] * tokens,
                   "graded_events": nonzero[kind] * tokens,
                   "nonzero_levels": nonzero[kind] * tokens, "dense": tokens,
                   "accumulates": {"dense_if_scans": spiking["time_steps"] * tokens,
                                   "event_driven": nonzero[kind] * tokens,
                                   "bwn_dense": tokens, "bwn_skip_zeros": nonzero[kind] * tokens}}
            for kind in rates["offset"]}
        text += energy.markdown(results, rates) + energy.integer_markdown(integer)
        text += events_markdown(report["events_per_synapse"], tokens)
    if method in ("activity", "both"):
        names, pending = measurements
        measured = dict(zip(names, pending.result()))
        per_element = {b: r["energy_per_element_j"] for b, r in measured.items()}
        results = [energy.activity_inference_energy(shape, tokens, per_element) for shape in shapes]
        report["activity"] = {"measured": measured, "results": results}
        text += ("\n" if text else "# Energy per inference\n\n") + energy.activity_markdown(measured, results)
    if method == "layer":
        report["layer"] = layer_report(task, model, checkpoint, build, sample, tile=tile,
                                       layers=layers, sentence=sentence, progress=progress)
        text += "\n" + report["layer"].pop("markdown")
    from sorbet_hw.files import atomic_write
    out = Path(build) / "energy"
    if "layer" in report:
        report["per_inference_uJ"] = report["layer"]["per_inference_uJ"]
        report["per_inference_method"] = report["layer"]["per_inference_method"]
        report["tile"] = report["layer"]["tile"]
        report["weight_bits_read"] = report["layer"]["weight_bits_read"]
    elif "activity" in report:
        report["per_inference_uJ"] = {d: report["activity"]["results"][0][d]["joules"] * 1e6
                                      for d in energy.DESIGNS}
        report["per_inference_method"] = "activity (gate-level switching, method 2)"
    else:
        report["per_inference_uJ"] = {d: j * 1e6 for d, j in
                                      report["ops"]["integer_designs"][energy.MINILM.name].items()}
        report["per_inference_method"] = "ops (integer operation counts, method 1)"
    report["shape"] = energy.MINILM.name
    atomic_write(out / "energy.json", json.dumps(report, indent=2))
    atomic_write(out / "energy.md", text)
    report["markdown"] = text
    return report


def typical_sentence(model, sample) -> str:
    """The first sentence of ``sample`` whose token count is the sample's mean, rounded:
    what real-size measurements replay, so that nothing is extrapolated from a short one."""
    from sorbet_hw.model.evaluate import tokenize
    lengths = [len(ids) for ids, _ in tokenize(model, sample)]
    target = round(sum(lengths) / len(lengths))
    best = min(range(len(lengths)), key=lambda i: (abs(lengths[i] - target), i))
    return sample.text_a[best]


def layer_report(task, model, checkpoint: Path, build: Path, sample, *, tile: int = 1,
                 layers: list[int] | None = None, sentence: str | None = None,
                 progress: bool = True, designs=None) -> dict:
    """Method 2 at real size: ``layers`` (default 0) of every design measured whole on gates,
    on a dev sentence of the sample's mean length, the event and dense BWN projections in
    tiles of ``tile`` tokens (0: the whole sentence). Per inference: every layer measured,
    each rescaled to the sample's sparsity; or, when not every layer is, the first measured
    layer for all six, its sparse projections scaled by each layer's nonzero inputs."""
    from sorbet_hw.model.evaluate import event_statistics
    from sorbet_hw.model.glue import Examples
    from sorbet_hw.synth import layer_energy
    layers = sorted(set(range(len(model.layers)) if layers == [] else layers or [0]))
    if not set(layers) <= set(range(len(model.layers))):
        raise ParameterError(f"--layers: the student has layers 0..{len(model.layers) - 1}")
    sentence = sentence or typical_sentence(model, sample)
    if progress:
        print(f"layers {', '.join(map(str, layers))} of every design on gates, tiles of "
              f"{tile or 'a whole sentence'} (method 2 at real size; about an hour a layer from "
              "scratch, measurements reused)...", flush=True)
    results = [layer_energy.run(model, build, designs=designs or layer_energy.DEFAULT_DESIGNS, sentence=sentence,
                                source=checkpoint_source(checkpoint), layer=layer, tile=tile)
               for layer in layers]
    dev_tokens = mean_tokens(model, sample)
    nonzero = event_statistics(model, task, sample)["graded_by_layer"]
    every = layers == list(range(len(model.layers)))
    moved = [layer_energy.traffic(r) for r in results]
    if every:
        sentence_nonzero = event_statistics(model, task, Examples([sentence], None, [0]))["graded_by_layer"]
        joules = layer_energy.per_inference_every_layer(results, dev_tokens, sentence_nonzero=sentence_nonzero,
                                                        dev_nonzero=nonzero)
        scale = dev_tokens / results[0]["tokens"]
        how = ("every layer of every design measured whole on gates on a dev sentence of the mean "
               "length, each rescaled to the dev sentences' sparsity")
    else:
        joules = layer_energy.per_inference_by_layer(results[0], dev_tokens, nonzero)
        scale = dev_tokens / results[0]["tokens"] * len(model.layers)
        how = (f"layer {layers[0]} of every design measured whole on gates on a dev sentence of the "
               f"mean length, x {len(model.layers)} layers, sparse projections scaled by each "
               "layer's nonzero inputs")
    first = results[0]
    weight_bits = {d: sum(m[d]["weight_bits_read"] for m in moved) * scale for d in moved[0]}
    return {"tile": first["tile"], "sentence": sentence, "tokens": first["tokens"], "layers": layers,
            "dev_mean_tokens": round(dev_tokens, 2), "per_inference_method": how,
            "per_inference_uJ": {d: j * 1e6 for d, j in joules.items()},
            "weight_bits_read": {d: round(b) for d, b in weight_bits.items()},
            "by_layer": [{"layer": r["index"], "tile": r["tile"],
                          "uJ": {d: x["joules"] * 1e6 for d, x in r["layer"].items()},
                          "by_part_uJ": {d: {k: v * 1e6 for k, v in x["by_part"].items()}
                                         for d, x in r["layer"].items()},
                          "traffic": m, "measured": r["measured"]} for r, m in zip(results, moved)],
            "markdown": "".join(layer_energy.markdown(r, dev_tokens, nonzero) for r in results)}


def dev_sample(task, sentences: int):
    """The first ``sentences`` examples of the task's dev set (all, if it has fewer)."""
    from sorbet_hw.model.glue import Examples, dev_tsv, read_tsv
    dev = read_tsv(task, dev_tsv(task))
    n = min(sentences, len(dev))
    return Examples(dev.text_a[:n], dev.text_b[:n] if dev.text_b else None, dev.labels[:n])


def mean_tokens(model, sample) -> float:
    """The mean tokens an example of ``sample`` takes in ``model``'s tokenizer."""
    from sorbet_hw.model.evaluate import tokenize
    return sum(len(ids) for ids, _ in tokenize(model, sample)) / len(sample.labels)


def checkpoint_source(checkpoint: Path) -> str:
    """How exported vectors name the checkpoint they came from: its name and content."""
    from sorbet_hw.files import file_digest
    return f"{Path(checkpoint).name} sha256:{file_digest(checkpoint)[:16]}"


def submit_measurements(model, checkpoint: Path, build: Path, *, sample_tokens: int,
                        sentence: str | None = None, progress: bool = True,
                        submit=None, priority: int = 0) -> tuple[list[str], "Pending"]:
    """Method 2's gate-level runs of every design, on the sentence's vectors, sent to
    ``submit`` (:meth:`sorbet_hw.executor.Executor.submit`; default: run when asked for):
    (the designs, their pending results)."""
    from sorbet_hw.executor import serial_submit
    from sorbet_hw.model.export import DEFAULT_SENTENCE, export_vectors
    from sorbet_hw.synth.workloads import workloads
    vectors = Path(build) / "energy" / "vectors"
    export_vectors(model, sentence or DEFAULT_SENTENCE, vectors,
                   source=checkpoint_source(checkpoint))
    loads = workloads(vectors, tokens=sample_tokens)
    print(f"gate-level activity of {', '.join(loads)}...", flush=True,
          file=sys.stdout if progress else sys.stderr)         # --json keeps stdout clean
    pending = (submit or serial_submit)(_measure, list(loads.values()), [str(build)] * len(loads),
                                        priority=priority)
    return list(loads), pending


def events_markdown(events: dict, tokens: int) -> str:
    """Events and accumulates per synapse per inference, by layer kind (the kind of the
    activation a projection takes in, or the attention's operands)."""
    lines = ["", f"Events per synapse per inference ({tokens} tokens), by the activation that "
             "travels: as offset spikes (today's dense IF), as zero-silent unit (+-1) events, as "
             "graded events (one per nonzero level: the event-driven layer's accumulates, and "
             "the zero-skipping BWN layer's); the dense IF layer scans every input at every "
             "step, the dense BWN layer adds every input once:", "",
             "| activation | offset spikes | unit events | graded events | dense IF scans | "
             "BWN dense adds |", "|---|---:|---:|---:|---:|---:|"]
    for kind, e in events.items():
        lines.append(f"| {kind} | {e['offset_spikes']:.1f} | {e['unit_events']:.1f} | "
                     f"{e['graded_events']:.1f} | {e['accumulates']['dense_if_scans']} | "
                     f"{e['accumulates']['bwn_dense']} |")
    return "\n".join(lines) + "\n"


def _measure(vectors, build: str) -> dict:
    from sorbet_hw.synth.activity import measure
    return measure(vectors, build_root=Path(build))


def check_energy_options(sentences: int, method: str, sample_tokens: int, build: Path) -> None:
    if not 1 <= sentences <= 100_000:
        raise ParameterError(f"--sentences = {sentences} is out of range; allowed: 1..100000")
    if not 1 <= sample_tokens <= 64:
        raise ParameterError(f"--sample-tokens = {sample_tokens} is out of range; allowed: 1..64")
    if method in ("activity", "both", "layer"):
        from sorbet_hw.sim.runner import check_build_path
        check_build_path(build, "verilator")
