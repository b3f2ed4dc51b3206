"""Energy method 2 at real size: a student's whole layer 0 on gates, every design, on one
sentence, and per SST-2 inference from it.

The slice method (:func:`synth.energy.activity_inference_energy`) charges a whole model at
the energy per element of a 32 x 16 slice of one projection; at real size a synapse costs
2 to 6 times more (a weight ROM of 384 x 384 bits costs more a bit than one of 32 x 16), and
the verdict between designs can flip. Here every part of layer 0 is measured as built, on
the exported sentence, all its tokens (:func:`synth.activity.measure`: Verilator SAIF on the
Yosys netlist, memories charged per access, the clock gated per enable or not):

- ``event_driven``: the six projections as event-driven IF layers (48 lanes), the event
  attention (PTsoftmax inside), two event encoders (the residual stream into the attention
  and into the FFN) and two event counters (the attention output and the FFN output back to
  levels), both BSPN norms: the event engine of :mod:`hw.encoder_layer`, part by part;
- ``bwn_dense`` / ``bwn_skip_zeros``: the six projections as BWN layers (16 lanes x 32
  inputs a cycle; with ``skip_zeros``), PTsoftmax on every head's rows, both BSPN norms, and
  the attention products Q.K and P.V (4-bit levels times 4-bit levels) by operation count
  (:data:`synth.energy.E_MAC_INT8` each, Horowitz's int8 figure, and none of the buffers an
  attention block needs: both favour these designs);
- ``mac8``: the query projection as an 8-bit MAC layer (16 lanes x 32 inputs a cycle; the
  student's signs, int8 magnitudes: :func:`synth.workloads.mac_vectors`), every projection
  charged at its energy per synapse and token (the FFN's 4x larger ROMs would cost more a
  bit: this favours the MAC design), the fair softmax on every head's rows, LayerNorm on
  both norms' sums (all 384 channels), the attention products by operation count;
- ``spiking`` (only when asked: the largest netlists, about 20 minutes more): today's dense
  IF layer, its spiking attention, three rate encoders, five spike counters, both norms.

No design's residual adders and buffers are on gates. Per inference: each design's layer-0
energy per token x the layers x the mean tokens of the dev sentences (layer 0's activity
stands for the others').
"""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from sorbet_hw.model.integer_model import LINEARS, PROJECTION_INPUTS
from sorbet_hw.model.vectors import Vectors, load_vectors

DESIGNS = ("event_driven", "bwn_dense", "bwn_skip_zeros", "mac8", "spiking")
# Equal footing: the event and the BWN projections compute as many outputs a cycle (16: a
# whole sentence's tile of 24 tokens at 48 lanes makes netlists of 160k cells, whose
# gate-level replays take most of an hour each).
LANES = 16
DEFAULT_DESIGNS = DESIGNS[:4]
# The event design's converters between levels and events, and the dense IF design's.
EVENT_ENCODED, EVENT_COUNTED = ("attention_input", "ffn_input"), ("attention_output", "output")
RATE_ENCODED = ("attention_input", "context", "ffn_input")
COUNTED = ("query", "key", "value", "attention_output", "output")
NORMS = ("attention_norm", "output_norm")


def tiled(vectors: Vectors, tile: int) -> Vectors:
    """A projection's vectors for its block in tiles of ``tile`` tokens (0: the whole
    sentence; :mod:`hw.tiles`); an event layer's buffer then holds a tile. Every design's
    projections compute :data:`LANES` outputs at a time."""
    tokens = len(vectors.inputs)
    tile = tokens if tile == 0 else min(tile, tokens)
    params = {k: v for k, v in vectors.params.items() if k != "batch"}
    params["tokens_per_tile"] = tile
    params["lanes"] = int(np.gcd(LANES, np.shape(params["weights"])[1]))
    if vectors.block == "event_if_layer" and tile == 1:
        params["batch"] = vectors.params.get("batch")
    return Vectors(vectors.block, params, vectors.inputs, vectors.expected, vectors.source,
                   vectors.note + (f", tiles of {tile}" if tile > 1 else ""))


def design_parts(vectors: Path, designs=DEFAULT_DESIGNS, layer: int = 0, tile: int = 1) -> tuple[dict, dict]:
    """(label -> Vectors of every part to measure, design -> [(label, weight)]): a design's
    energy is the sum of its parts' measured energies times their weights. ``tile``: tokens
    that share a weight read in the projections (0: the whole sentence); BWN skipping zeros
    in tiles is the event engine's projections (:mod:`hw.tiles`)."""
    from sorbet_hw.synth.workloads import layernorm_vectors, mac_vectors, softmax_vectors
    vectors = Path(vectors)

    loaded: dict[str, Vectors] = {}

    def load(name: str) -> Vectors:        # each file once: several designs read the same
        if name not in loaded:
            loaded[name] = load_vectors(vectors / f"layer{layer}.{name}.npz")
        return loaded[name]

    parts, recipe = {}, {}
    norms = [(f"bspn.{n}", 1.0) for n in NORMS]
    for n in NORMS:
        parts[f"bspn.{n}"] = load(n)
    if "event_driven" in designs:
        for name in LINEARS:
            parts[f"event_if_layer.{name}"] = tiled(load(f"{name}.event_if_layer"), tile)
        parts["event_attention"] = load("event_attention")
        converters = [f"event_encoder.{n}" for n in EVENT_ENCODED] + [f"event_counter.{n}" for n in EVENT_COUNTED]
        for label in converters:
            parts[label] = load(label)
        recipe["event_driven"] = [(f"event_if_layer.{n}", 1.0) for n in LINEARS] + \
            [("event_attention", 1.0)] + [(c, 1.0) for c in converters] + norms
    if {"bwn_dense", "bwn_skip_zeros"} & set(designs):
        parts["ptsoftmax"] = load("ptsoftmax")
    for design, label in (("bwn_dense", "bwn_layer"), ("bwn_skip_zeros", "bwn_layer_skip")):
        if design == "bwn_skip_zeros" and design in designs and tile != 1:
            # In tiles, a zero-skipping BWN is the event engine's datapath: a beat is one input
            # index with the tile's levels there, a row read once, an add per nonzero level.
            # One implementation serves both: the same measured projections.
            for name in LINEARS:
                parts[f"event_if_layer.{name}"] = tiled(load(f"{name}.event_if_layer"), tile)
            recipe[design] = [(f"event_if_layer.{n}", 1.0) for n in LINEARS] + [("ptsoftmax", 1.0)] + norms
            continue
        if design in designs:
            for name in LINEARS:
                bwn = load(f"{name}.bwn_layer")
                skip = design == "bwn_skip_zeros"
                params = {**bwn.params, "skip_zeros": skip}
                part = Vectors("bwn_layer", params, bwn.inputs, bwn.expected, bwn.source, bwn.note + f", {label}")
                parts[f"{label}.{name}"] = tiled(part, 1 if skip else tile)
            recipe[design] = [(f"{label}.{n}", 1.0) for n in LINEARS] + [("ptsoftmax", 1.0)] + norms
    if "mac8" in designs:
        query = load("query")
        synapses = {n: np.size(load(f"{n}.bwn_layer").params["weights"]) for n in LINEARS}
        parts["mac_layer.query"] = mac_vectors(query.params, query.inputs.sum(axis=-2),
                                               query.note + ", 8-bit MAC layer")
        parts["softmax"] = softmax_vectors(load("ptsoftmax"), "every head's score rows")
        for n in NORMS:
            parts[f"layernorm.{n}"] = layernorm_vectors(load(n), f"{n}, all channels")
        recipe["mac8"] = [("mac_layer.query", sum(synapses.values()) / synapses["query"]),
                          ("softmax", 1.0)] + [(f"layernorm.{n}", 1.0) for n in NORMS]
    if "spiking" in designs:
        for name in LINEARS:
            parts[f"if_layer.{name}"] = load(name)
        parts["spiking_attention"] = load("spiking_attention")
        converters = [f"rate_encoder.{n}" for n in RATE_ENCODED] + [f"spike_counter.{n}" for n in COUNTED]
        for label in converters:
            parts[label] = load(label)
        recipe["spiking"] = [(f"if_layer.{n}", 1.0) for n in LINEARS] + [("spiking_attention", 1.0)] + \
            [(c, 1.0) for c in converters] + norms
    return parts, recipe


def attention_products(attention: Vectors, skip_zeros: bool) -> float:
    """Joules of a non-spiking design's Q.K and P.V by operation count: one int8
    multiply-accumulate a product of two levels, none for a zero level when ``skip_zeros``."""
    from sorbet_hw.synth.energy import E_MAC_INT8
    p = attention.params
    q, v = (attention.inputs[0, i] - (1 << (p["act_bits"] - 1)) for i in (0, 2))
    n = p["tokens"]
    if skip_zeros:       # a query's nonzero levels meet every key; every value level, every query
        products = np.count_nonzero(q) * n + np.count_nonzero(v) * n
    else:
        products = 2 * n * n * q.shape[-1]
    return products * E_MAC_INT8


def _cost(vectors: Vectors) -> tuple:
    """An order of measurements by expected time: projections by size, then by replay
    length (a gate-level replay costs its cycles times its netlist's size)."""
    from sorbet_hw.synth.activity import expected_cycles
    weights = vectors.params.get("weights")
    size = int(np.size(weights)) if weights is not None else 0
    return size, expected_cycles(vectors)


def _timed_measure(group: list, build: str) -> list[dict]:
    import time
    from sorbet_hw.synth.activity import measure
    out = []
    for vectors in group:
        t0 = time.time()
        out.append({**measure(vectors, build_root=Path(build)), "wall_s": time.time() - t0})
    return out


def measure_parts(parts: dict, build: Path, jobs: int = 2) -> dict:
    """label -> measurement, ``jobs`` at a time, the longest first so that the cores finish
    together (Yosys and the simulations are single-threaded); reused from build/activity.
    Parts of one configuration (the two norms' LayerNorms, the spike counters) share a
    netlist and its folder: they run one after another in one task, so that no worker
    waits on another's lock."""
    from sorbet_hw.hw.blocks import get_block
    from sorbet_hw.sim.runner import config_key
    groups: dict[tuple, list[str]] = {}
    for label, v in parts.items():
        key = (v.block, config_key(v.block, get_block(v.block).resolve(v.params)))
        groups.setdefault(key, []).append(label)
    order = sorted(groups.values(), key=lambda labels: max(_cost(parts[x]) for x in labels), reverse=True)
    from sorbet_hw.interrupts import ignore_in_child, start_resource_tracker
    start_resource_tracker(Path(build) / "logs" / "workers.log")
    pool = ProcessPoolExecutor(max_workers=jobs, initializer=ignore_in_child)
    try:
        futures = [(labels, pool.submit(_timed_measure, [parts[x] for x in labels], str(build)))
                   for labels in order]
        measured = {label: r for labels, f in futures for label, r in zip(labels, f.result())}
    except BaseException:
        # An interruption or a failed part: queued parts are not started, and none is waited
        # for (the command stops the running ones with its process tree).
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return {label: measured[label] for label in parts}


def layer_energy(parts: dict, recipe: dict, measured: dict, attention: Vectors) -> dict:
    """Per design: joules of layer 0 on the sentence, gated and ungated clock, by part."""
    out = {}
    for design, items in recipe.items():
        by_part = {label: weight * measured[label]["energy_j"] for label, weight in items}
        ungated = sum(weight * measured[label]["energy_ungated_j"] for label, weight in items)
        if design in ("bwn_dense", "bwn_skip_zeros", "mac8"):
            ops = attention_products(attention, design == "bwn_skip_zeros")
            by_part["Q.K + P.V (operation count)"] = ops
            ungated += ops
        out[design] = {"joules": sum(by_part.values()), "ungated_joules": ungated, "by_part": by_part}
    return out


def run(model, build: Path, *, designs=DEFAULT_DESIGNS, sentence: str | None = None,
        source: str = "student", jobs: int = 2, layer: int = 0, tile: int = 1) -> dict:
    """Export the sentence's vectors, measure every part of layer ``layer`` (0: the one the
    per-inference figures extrapolate) for ``designs``; the layer's energy per design, with
    the measurements and the sentence's tokens."""
    from sorbet_hw.model.export import DEFAULT_SENTENCE, export_vectors
    from sorbet_hw.model.params import ParameterError
    unknown = sorted(set(designs) - set(DESIGNS))
    if unknown or not designs:
        raise ParameterError(f"unknown design {', '.join(unknown) or '(none)'}; choose from "
                             f"{', '.join(DESIGNS)}")
    if not 0 <= layer < len(model.layers):
        raise ParameterError(f"layer {layer} is out of range; the student has layers 0..{len(model.layers) - 1}")
    vectors = Path(build) / "layer-gates" / "vectors"
    manifest = export_vectors(model, sentence or DEFAULT_SENTENCE, vectors, source=source)
    parts, recipe = design_parts(vectors, designs, layer, tile)
    measured = measure_parts(parts, build, jobs)
    attention = load_vectors(vectors / f"layer{layer}.spiking_attention.npz")
    tokens = len(manifest["token_ids"])
    return {"tokens": tokens, "layers": len(model.layers), "index": layer,
            "tile": tokens if tile == 0 else min(tile, tokens), "recipe": recipe,
            "useful_ops": useful_ops(parts),
            "parts": parts, "measured": measured, "layer": layer_energy(parts, recipe, measured, attention)}


def useful_ops(parts: dict) -> int:
    """Synaptic operations that change a sum: a nonzero input level times each output it
    drives, over the six projections (the same work for every design)."""
    seen = {}
    for label, v in parts.items():
        block, _, name = label.partition(".")
        if block in ("event_if_layer", "bwn_layer") and name in LINEARS and name not in seen:
            seen[name] = int(np.count_nonzero(v.inputs)) * int(np.shape(v.params["weights"])[1])
    return sum(seen.values())


def traffic(result: dict) -> dict[str, dict]:
    """Per design, on the measured layer and sentence: weight-memory bits read (every
    memory named ``weights``: projection ROMs; the MAC design's scaled as its energy is),
    all memory bits read and written, the projections' cycles one after another (one
    engine), the useful synaptic operations and the energy per one (pJ)."""
    out = {}
    for design, items in result["recipe"].items():
        weight_bits = memory_bits = cycles = 0.0
        for label, weight in items:
            measured = result["measured"][label]
            memories = measured.get("memories") or {}
            weight_bits += weight * sum(m["read_bits"] for name, m in memories.items() if name == "weights")
            memory_bits += weight * sum(m["read_bits"] + m["written_bits"] for m in memories.values())
            if label.partition(".")[0] in ("event_if_layer", "bwn_layer", "bwn_layer_skip", "mac_layer"):
                cycles += weight * measured["cycles"]
        joules = result["layer"][design]["joules"]
        # The same accesses if every memory were one macro (the figure beside the banked one).
        monolithic = joules + sum(weight * (result["measured"][label].get("energy_monolithic_j", 0.0)
                                            - result["measured"][label]["energy_j"])
                                  for label, weight in items if "energy_monolithic_j" in result["measured"][label])
        out[design] = {"weight_bits_read": round(weight_bits), "memory_bits": round(memory_bits),
                       "projection_cycles": round(cycles),
                       "pJ_per_useful_op": joules / result["useful_ops"] * 1e12,
                       "monolithic_over_banked": monolithic / joules}
    return out


def per_inference(result: dict, dev_tokens: float) -> dict[str, float]:
    """Joules per inference of each design: layer 0's energy a token x layers x tokens."""
    return {design: r["joules"] / result["tokens"] * dev_tokens * result["layers"]
            for design, r in result["layer"].items()}


# The projections whose work follows nonzero inputs, by design (BWN skipping zeros in tiles
# is the event engine's datapath: see design_parts).
SPARSE_PROJECTIONS = {"event_driven": ("event_if_layer",), "bwn_skip_zeros": ("bwn_layer_skip", "event_if_layer")}


def per_inference_by_layer(result: dict, dev_tokens: float, nonzero: dict) -> dict[str, float]:
    """As :func:`per_inference`, but layer L's projections in the designs that work per
    nonzero input (event-driven, BWN skipping zeros) cost the measured layer's (``index``,
    0 unless :func:`run` was given another) times the ratio of their input's nonzero fraction
    in layer L to the measured layer's (``nonzero[kind][layer]``, on the dev sentences):
    layer 0 is the densest, and a penalty may thin some layers only. Everything
    else, and the dense designs, as layer 0 in every layer. Proportional to the nonzero
    levels: both designs' fixed cost per token (under 2 % of the event layer's at real
    size) is scaled with them."""
    out = {}
    for design, r in result["layer"].items():
        prefixes = SPARSE_PROJECTIONS.get(design, ())
        total = 0.0
        for label, joules in r["by_part"].items():
            block, _, name = label.partition(".")
            if block in prefixes and name in PROJECTION_INPUTS:
                fractions = nonzero[PROJECTION_INPUTS[name]]
                total += joules * sum(f / fractions[result.get("index", 0)] for f in fractions)
            else:
                total += joules * result["layers"]
        out[design] = total / result["tokens"] * dev_tokens
    return out


def per_inference_every_layer(results: list[dict], dev_tokens: float, *, sentence_nonzero: dict | None = None,
                              dev_nonzero: dict | None = None) -> dict[str, float]:
    """Joules per inference of each design with every encoder layer measured on gates (one
    :func:`run` result a layer): the sum of the layers' energies a token x the mean tokens.
    Nothing extrapolates from one layer to another. Given the nonzero input fractions of the
    measured sentence and of the dev sentences (``[kind][layer]``), each layer's sparse
    projections (as in :func:`per_inference_by_layer`) are rescaled from the sentence's
    sparsity to the dev set's, layer by layer."""
    from sorbet_hw.model.params import ParameterError
    layers = results[0]["layers"] if results else 0
    if sorted(r.get("index", 0) for r in results) != list(range(layers)) or not layers:
        raise ParameterError(f"per inference from every layer needs each of layers 0..{layers - 1} "
                             f"measured once; got {sorted(r.get('index', 0) for r in results)}")
    designs = [d for d in results[0]["layer"] if all(d in r["layer"] for r in results)]
    out = {}
    for design in designs:
        total = 0.0
        for r in results:
            layer = r.get("index", 0)
            for label, joules in r["layer"][design]["by_part"].items():
                block, _, name = label.partition(".")
                if dev_nonzero and block in SPARSE_PROJECTIONS.get(design, ()) and name in PROJECTION_INPUTS:
                    kind = PROJECTION_INPUTS[name]
                    joules *= dev_nonzero[kind][layer] / sentence_nonzero[kind][layer]
                total += joules / r["tokens"]
        out[design] = total * dev_tokens
    return out


def markdown_every_layer(results: list[dict], dev_tokens: float, nonzero: dict,
                         sentence_nonzero: dict) -> str:
    """Each layer's energy per design on the sentence, and per inference: every layer
    measured (as measured, and rescaled to the dev set's sparsity layer by layer), layer 0
    for all (:func:`per_inference`), and layer 0 scaled by the layers' nonzero inputs
    (:func:`per_inference_by_layer`)."""
    results = sorted(results, key=lambda r: r.get("index", 0))
    every = per_inference_every_layer(results, dev_tokens)
    designs = list(every)
    pair = "bwn_dense" in designs and "event_driven" in designs
    lines = ["## Every layer on gates", "",
             f"Each encoder layer of the student measured as built on the sentence's "
             f"{results[0]['tokens']} tokens (gated clock, uJ / sentence); the nonzero fraction "
             "of each projection input kind, on the sentence / on the dev sentences.", "",
             "| layer | " + " | ".join(designs) + (" | event / BWN dense" if pair else "") + " | " +
             " | ".join(dict.fromkeys(PROJECTION_INPUTS.values())) + " |",
             "|---:|" + "---:|" * (len(designs) + pair + len(set(PROJECTION_INPUTS.values())))]
    for r in results:
        index = r.get("index", 0)
        row = [f"{r['layer'][d]['joules'] * 1e6:.3f}" for d in designs]
        if pair:
            row.append(f"{r['layer']['event_driven']['joules'] / r['layer']['bwn_dense']['joules']:.3f}")
        row += [f"{sentence_nonzero[k][index]:.2f} / {nonzero[k][index]:.2f}"
                for k in dict.fromkeys(PROJECTION_INPUTS.values())]
        lines.append(f"| {index} | " + " | ".join(row) + " |")
    columns = {"every layer measured": every,
               "every layer, rescaled to the dev sparsity": per_inference_every_layer(
                   results, dev_tokens, sentence_nonzero=sentence_nonzero, dev_nonzero=nonzero),
               f"layer 0 x {results[0]['layers']}": per_inference(results[0], dev_tokens),
               "layer 0 scaled by the dev sparsity": per_inference_by_layer(results[0], dev_tokens, nonzero)}
    lines += ["", f"uJ per inference ({dev_tokens:.1f} tokens), and / BWN dense:", "",
              "| design | " + " | ".join(f"{c} | /" for c in columns) + " |",
              "|---|" + "---:|---:|" * len(columns)]
    for d in designs:
        cells = []
        for figures in columns.values():
            ratio = f"{figures[d] / figures['bwn_dense']:.3f}" if "bwn_dense" in figures else ""
            cells += [f"{figures[d] * 1e6:.2f}", ratio]
        lines.append(f"| {d} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def markdown(result: dict, dev_tokens: float, nonzero: dict | None = None) -> str:
    """The measurements, the measured layer (0 unless :func:`run` was given another) per
    design, and per inference."""
    tokens, measured = result["tokens"], result["measured"]
    index = result.get("index", 0)
    lines = [f"## Method 2 at real size: layer {index}, whole, on gates", "",
             f"Every part of layer {index} of the student as built, on the sentence's {tokens} tokens "
             "(Verilator SAIF on the Yosys netlist; memories per access; clock gated per enable, "
             "or not). Attention products of the non-spiking designs by operation count.", "",
             "| part | block | cycles | cells | gated uJ | ungated uJ | pJ / element |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for label, r in measured.items():
        lines.append(f"| {label} | {result['parts'][label].block} | {r['cycles']:,} | {r['cells']:,} | "
                     f"{r['energy_j'] * 1e6:.3f} | {r['energy_ungated_j'] * 1e6:.3f} | "
                     f"{r['energy_per_element_j'] * 1e12:.4f} |")
    inference = per_inference(result, dev_tokens)
    scaled = per_inference_by_layer(result, dev_tokens, nonzero) if nonzero else None
    base = result["layer"].get("bwn_dense", {}).get("joules")
    extra = (" uJ / inference, sparse layers scaled by their nonzero inputs | / BWN dense |"
             if scaled else "")
    lines += ["", f"| design | layer {index}, gated uJ / sentence | nJ / token | ungated uJ / sentence | "
              f"uJ / inference ({result['layers']} layers x {dev_tokens:.1f} tokens) | / BWN dense |" + extra,
              "|---|---:|---:|---:|---:|---:|" + ("---:|---:|" if scaled else "")]
    for design, r in result["layer"].items():
        ratio = f"{r['joules'] / base:.3f}" if base else ""
        line = (f"| {design} | {r['joules'] * 1e6:.3f} | {r['joules'] / tokens * 1e9:.1f} | "
                f"{r['ungated_joules'] * 1e6:.3f} | {inference[design] * 1e6:.2f} | {ratio} |")
        if scaled:
            scaled_ratio = f"{scaled[design] / scaled['bwn_dense']:.3f}" if "bwn_dense" in scaled else ""
            line += f" {scaled[design] * 1e6:.2f} | {scaled_ratio} |"
        lines.append(line)
    return "\n".join(lines) + "\n"
