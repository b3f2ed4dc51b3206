"""The real inputs on which each spiking block and its conventional baseline are compared.

From one sentence's exported vectors (:mod:`model.export`), for energy method 2 and the
ratio benchmark; every pair sees the same numbers:

- ``ptsoftmax`` / ``softmax``: every head's attention score rows of a layer, at the
  exported PTsoftmax configuration (row length = the sentence's tokens);
- ``bspn`` / ``layernorm``: the residual sums entering a layer's output norm, its first 32
  channels with their gamma shifts and offsets (4 groups of 8: BSPN's configuration in
  ``benchmarks/synth_ratios.py``; the whole 384-channel LayerNorm takes Yosys over ten
  minutes); LayerNorm with identity gamma and zero beta: the arithmetic is what is compared;
- ``if_layer`` / ``mac_layer``: the first 32 inputs and 16 outputs of the layer's query
  projection (real spike trains, weights, bias, threshold), 4 lanes, 8 inputs a cycle, the
  configuration of ``benchmarks/synth_ratios.py``; the MAC layer multiplies the same spike
  counts (0..15) by 8-bit weights of the same signs (magnitudes as in the code below), with
  the bias and shift scaled to match (x 32, + 5).

Expected outputs come from each block's reference, so every replay is checked bit for bit.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hw.blocks import LAYER_SYNTH
from sim.vectors import Vectors, load_vectors

LAYER_SLICE = dict(inputs=32, outputs=16, **LAYER_SYNTH)
NORM_CHANNELS = 32


def pairs(export_dir: Path, layer: int = 0, tokens: int = 4) -> list[tuple[Vectors, Vectors]]:
    """(spiking, baseline) vectors of the three block kinds for one exported layer, cut to
    the first ``tokens`` tokens (score rows of as many queries of every head): gate-level
    simulation runs some tens of cycles a second, and energy per element needs a sample,
    not the sentence."""
    from model.export import load_export
    from sim import bspn as bspn_bench, if_layer as if_bench, layernorm as layernorm_bench
    from sim import mac_layer as mac_bench, softmax as softmax_bench
    export_dir = Path(export_dir)
    load_export(export_dir)
    note = f"{export_dir.name}, layer {layer}"

    pt = load_vectors(export_dir / f"layer{layer}.ptsoftmax.npz")
    n_tokens = pt.params["row_length"]
    rows = (np.arange(len(pt.inputs)) % n_tokens) < tokens        # rows are head-major
    pt = Vectors("ptsoftmax", pt.params, pt.inputs[rows], pt.expected[rows], pt.source, note)
    sp = {k: pt.params[k] for k in ("row_length", "score_width", "frac_bits", "out_frac_bits")}
    sp["exp_bits"] = sp["out_frac_bits"]
    softmax = Vectors("softmax", sp, pt.inputs, softmax_bench.reference(sp, pt.inputs),
                      source="export", note=note)

    norm = load_vectors(export_dir / f"layer{layer}.output_norm.npz")
    c = NORM_CHANNELS
    bp = {**norm.params, "channels": c, "gamma_shift": np.asarray(norm.params["gamma_shift"])[:c],
          "beta": np.asarray(norm.params["beta"])[:c]}
    sums = norm.inputs[:tokens, :c]
    norm = Vectors("bspn", bp, sums, bspn_bench.reference(bp, sums), source="export",
                   note=note + f", first {c} channels")
    lp = {k: bp[k] for k in ("channels", "in_width", "norm_frac_bits", "out_width")}
    from hw.blocks import get_block
    lp = get_block("layernorm").resolve(lp)
    layernorm = Vectors("layernorm", lp, norm.inputs, layernorm_bench.reference(lp, norm.inputs),
                        source="export", note=note)

    q = load_vectors(export_dir / f"layer{layer}.query.npz")
    n, m = LAYER_SLICE["inputs"], LAYER_SLICE["outputs"]
    ip = {**q.params, "weights": np.asarray(q.params["weights"])[:n, :m],
          "bias": np.asarray(q.params["bias"])[:m], "lanes": LAYER_SLICE["lanes"],
          "inputs_per_cycle": LAYER_SLICE["inputs_per_cycle"]}
    spikes = q.inputs[:tokens, :, :n]
    spiking_layer = Vectors("if_layer", ip, spikes, if_bench.reference(ip, spikes),
                            source="export", note=note + ", query projection slice")
    # An 8-bit layer has 8-bit weights: the student's signs with magnitudes of a trained
    # int8 layer's spread (|N(0, 32)|, 1..127, seeded). +-1 weights would let Yosys fold the
    # multipliers away, comparing the IF layer with no conventional layer at all.
    magnitude = np.clip(np.abs(np.random.default_rng(0).normal(0, 32, ip["weights"].shape)), 1, 127)
    weights8 = (ip["weights"] * magnitude.astype(np.int64)).astype(np.int64)
    mp = {"weights": weights8, "bias": ip["bias"] * 32, "shift": ip["threshold_shift"] + 5,
          "act_width": 8, "weight_width": 8, "out_width": 8, "lanes": ip["lanes"],
          "inputs_per_cycle": ip["inputs_per_cycle"]}
    counts = spikes.sum(axis=-2)
    mac = Vectors("mac_layer", mp, counts, mac_bench.reference(mp, counts), source="export",
                  note=note + ", query projection slice")
    return [(pt, softmax), (norm, layernorm), (spiking_layer, mac)]
