"""The real inputs on which each spiking block and its conventional baseline are compared.

From one sentence's exported vectors (:mod:`model.export`), for energy method 2 and the
ratio benchmark; every pair sees the same numbers:

- ``ptsoftmax`` / ``softmax`` / ``softmax_gaps``: every head's attention score rows of a
  layer, at the exported PTsoftmax configuration (row length = the sentence's tokens); the
  softmax as built conventionally, and with PTsoftmax's gap buffer (``gap_buffer``);
- ``bspn`` / ``layernorm``: the residual sums entering a layer's output norm, its first 32
  channels with their gamma shifts and offsets (4 groups of 8: BSPN's configuration in
  ``benchmarks/synth_ratios.py``; the whole 384-channel LayerNorm takes Yosys over ten
  minutes); LayerNorm with identity gamma and zero beta: the arithmetic is what is compared;
- ``if_layer`` / ``bwn_layer`` / ``bwn_layer_skip`` / ``mac_layer``: the first 32 inputs and
  16 outputs of the layer's query projection (real spike trains, weights, bias, threshold),
  4 lanes, 8 inputs a cycle, the configuration of ``benchmarks/synth_ratios.py``. The BWN
  layer (dense, and with ``skip_zeros``) takes the same spike counts as the integer model's
  signed levels (count - 8, the offset folded into the bias): the same outputs exactly. The
  MAC layer multiplies the same spike counts (0..15) by 8-bit weights of the same signs
  (magnitudes as in the code below), with the bias and shift scaled to match (x 32, + 5).

- ``event_if_layer``: the same slice on zero-silent graded events of the same levels (the
  event-driven IF layer, 4 lanes, bias moved to signed levels), outputs the BWN layer's
  minus the offset.

Expected outputs come from each block's reference, so every replay is checked bit for bit.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sorbet_hw.hw.if_layer import LAYER_SYNTH
from sorbet_hw.model.vectors import Vectors, load_vectors

LAYER_SLICE = dict(inputs=32, outputs=16, **LAYER_SYNTH)
NORM_CHANNELS = 32


# (spiking, baseline) workloads compared by the ratios benchmark and the energy report.
PAIRS = (("ptsoftmax", "softmax"), ("ptsoftmax", "softmax_gaps"), ("bspn", "layernorm"), ("if_layer", "bwn_layer"),
         ("if_layer", "bwn_layer_skip"), ("if_layer", "mac_layer"),
         ("event_if_layer", "bwn_layer"), ("event_if_layer", "bwn_layer_skip"))


def softmax_vectors(pt: Vectors, note: str, gap_buffer: bool = False) -> Vectors:
    """The fair softmax baseline on PTsoftmax's score rows (the same integers)."""
    from sorbet_hw.sim.bench import reference
    sp = {k: pt.params[k] for k in ("row_length", "score_width", "frac_bits", "out_frac_bits")}
    sp["exp_bits"] = sp["out_frac_bits"]
    if gap_buffer:
        sp["gap_buffer"] = True
    return Vectors("softmax", sp, pt.inputs, reference("softmax", sp, pt.inputs), source="export", note=note)


def layernorm_vectors(norm: Vectors, note: str) -> Vectors:
    """LayerNorm on a BSPN's residual sums, its channels and widths; identity gamma, zero
    beta: the arithmetic is what is compared."""
    from sorbet_hw.hw.blocks import get_block
    from sorbet_hw.sim.bench import reference
    lp = {k: norm.params[k] for k in ("channels", "in_width", "norm_frac_bits", "out_width")}
    lp = get_block("layernorm").resolve(lp)
    return Vectors("layernorm", lp, norm.inputs, reference("layernorm", lp, norm.inputs),
                   source="export", note=note)


def mac_vectors(if_params: dict, counts: np.ndarray, note: str) -> Vectors:
    """The 8-bit MAC layer of an IF layer's weights on its spike counts (0..15), at its lanes
    and inputs a cycle. An 8-bit layer has 8-bit weights: the student's signs with
    magnitudes of a trained int8 layer's spread (|N(0, 32)|, 1..127, seeded). +-1 weights
    would let Yosys fold the multipliers away, comparing the IF layer with no conventional
    layer at all. Bias and shift scale to match (x 32, + 5)."""
    from sorbet_hw.sim.bench import reference
    weights = np.asarray(if_params["weights"])
    magnitude = np.clip(np.abs(np.random.default_rng(0).normal(0, 32, weights.shape)), 1, 127)
    weights8 = (weights * magnitude.astype(np.int64)).astype(np.int64)
    mp = {"weights": weights8, "bias": np.asarray(if_params["bias"]) * 32,
          "shift": if_params["threshold_shift"] + 5, "act_width": 8, "weight_width": 8, "out_width": 8,
          "lanes": if_params["lanes"], "inputs_per_cycle": if_params["inputs_per_cycle"]}
    return Vectors("mac_layer", mp, counts, reference("mac_layer", mp, counts), source="export", note=note)


def pairs(export_dir: Path, layer: int = 0, tokens: int = 4) -> list[tuple[Vectors, Vectors]]:
    """(spiking, baseline) vectors of :data:`PAIRS` (see :func:`workloads`)."""
    loads = workloads(export_dir, layer, tokens)
    return [(loads[s], loads[b]) for s, b in PAIRS]


def shipped_workloads(build: Path, tokens: int = 4) -> dict[str, Vectors]:
    """:func:`workloads` of the shipped SST-2 student on the default sentence, exported under
    ``build/ratios/vectors``: the inputs of the ratios and energy-breakdown benchmarks."""
    from sorbet_hw.model.checkpoint import load_packed, shipped_checkpoint
    from sorbet_hw.model.export import DEFAULT_SENTENCE, export_vectors
    vectors = Path(build) / "ratios" / "vectors"
    export_vectors(load_packed(shipped_checkpoint("sst2"), "sst2"), DEFAULT_SENTENCE, vectors,
                   source="sst2.npz")
    return workloads(vectors, tokens=tokens)


def workloads(export_dir: Path, layer: int = 0, tokens: int = 4) -> dict[str, Vectors]:
    """Every compared block's vectors for one exported layer, by label (the block's name;
    ``bwn_layer_skip``: the BWN layer with ``skip_zeros``), cut to the first ``tokens`` tokens
    (score rows of as many queries of every head): gate-level simulation runs some tens of
    cycles a second, and energy per element needs a sample, not the sentence."""
    from sorbet_hw.model.export import load_export
    from sorbet_hw.sim.bench import reference
    export_dir = Path(export_dir)
    load_export(export_dir)
    note = f"{export_dir.name}, layer {layer}"

    pt = load_vectors(export_dir / f"layer{layer}.ptsoftmax.npz")
    n_tokens = pt.params["row_length"]
    rows = (np.arange(len(pt.inputs)) % n_tokens) < tokens        # rows are head-major
    pt = Vectors("ptsoftmax", pt.params, pt.inputs[rows], pt.expected[rows], pt.source, note)
    softmax = softmax_vectors(pt, note)
    softmax_gaps = softmax_vectors(pt, note, gap_buffer=True)

    norm = load_vectors(export_dir / f"layer{layer}.output_norm.npz")
    c = NORM_CHANNELS
    bp = {**norm.params, "channels": c, "gamma_shift": np.asarray(norm.params["gamma_shift"])[:c],
          "beta": np.asarray(norm.params["beta"])[:c]}
    sums = norm.inputs[:tokens, :c]
    norm = Vectors("bspn", bp, sums, reference("bspn", bp, sums), source="export",
                   note=note + f", first {c} channels")
    layernorm = layernorm_vectors(norm, note)

    q = load_vectors(export_dir / f"layer{layer}.query.npz")
    n, m = LAYER_SLICE["inputs"], LAYER_SLICE["outputs"]
    ip = {**q.params, "weights": np.asarray(q.params["weights"])[:n, :m],
          "bias": np.asarray(q.params["bias"])[:m], "lanes": LAYER_SLICE["lanes"],
          "inputs_per_cycle": LAYER_SLICE["inputs_per_cycle"]}
    spikes = q.inputs[:tokens, :, :n]
    spiking_layer = Vectors("if_layer", ip, spikes, reference("if_layer", ip, spikes),
                            source="export", note=note + ", query projection slice")
    counts = spikes.sum(axis=-2)
    mac = mac_vectors(ip, counts, note + ", query projection slice")
    from sorbet_hw.model.bwn_layer import signed_form
    offset = 1 << (ip["act_bits"] - 1)
    bp_dense = {"weights": ip["weights"], "bias": signed_form(ip["bias"], ip["weights"], offset),
                "threshold_shift": ip["threshold_shift"], "act_bits": ip["act_bits"],
                "weight_kind": ip["weight_kind"], "signed_inputs": True, "lanes": ip["lanes"],
                "inputs_per_cycle": ip["inputs_per_cycle"], "skip_zeros": False}
    levels = counts - offset
    bwn = {}
    for label, skip in (("bwn_layer", False), ("bwn_layer_skip", True)):
        bp = {**bp_dense, "skip_zeros": skip}
        bwn[label] = Vectors("bwn_layer", bp, levels, reference("bwn_layer", bp, levels),
                             source="export", note=note + ", query projection slice, levels")
    assert np.array_equal(bwn["bwn_layer"].expected, spiking_layer.expected.sum(axis=-2))
    # The event-driven layer on the same slice: zero-silent graded events of the same levels,
    # the bias on signed levels, as many lanes (G = 4 cycles an event), one pass a token.
    from sorbet_hw.model.event_if_layer import signed_bias
    ep = {"weights": ip["weights"], "threshold_shift": ip["threshold_shift"],
          "bias": signed_bias(ip["bias"], ip["weights"], ip["threshold_shift"], offset, offset),
          "act_bits": ip["act_bits"], "weight_kind": ip["weight_kind"], "input_signed": True,
          "output_signed": True, "event_kind": "graded", "lanes": ip["lanes"]}
    event = Vectors("event_if_layer", ep, levels, reference("event_if_layer", ep, levels),
                    source="export", note=note + ", query projection slice, graded events")
    assert np.array_equal(event.expected, bwn["bwn_layer"].expected - offset)
    return {"ptsoftmax": pt, "softmax": softmax, "softmax_gaps": softmax_gaps, "bspn": norm, "layernorm": layernorm,
            "if_layer": spiking_layer, **bwn, "mac_layer": mac, "event_if_layer": event}
