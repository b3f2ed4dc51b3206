"""Layer 0 of the shipped SST-2 student on gates: energy per token, per sentence and per
inference, every design measured as built (:mod:`synth.layer_energy`, method 2 at real size).

    python benchmarks/layer_on_gates.py [--build DIR] [--jobs 2] [--sentences 50]
                                        [--designs event_driven,bwn_dense,bwn_skip_zeros,mac8,spiking]
                                        [--checkpoint student.npz] [--layers 0 | 4 | all]

Default designs: the event-driven layer, BWN dense and skipping zeros, the 8-bit MAC layer;
``spiking`` adds today's dense IF layer (its netlists are the largest: about 20 minutes
more). Each measurement is kept under ``build/activity`` and reused; the wall time is
printed (reused measurements count as zero).

``--layers`` measures other encoder layers than layer 0 (``all``: every layer, then the
energy per inference with nothing extrapolated from one layer to another, beside the
layer-0 estimates). A layer's Verilator builds take about 4 GB under ``BUILD/sim``; they
may be deleted once its measurements are under ``BUILD/activity``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sorbet_hw.model.checkpoint import load_packed, shipped_checkpoint  # noqa: E402
from sorbet_hw.model.evaluate import event_statistics  # noqa: E402
from sorbet_hw.model.export import DEFAULT_SENTENCE  # noqa: E402
from sorbet_hw.model.glue import get_task  # noqa: E402
from sorbet_hw.operations import checkpoint_source, dev_sample, mean_tokens  # noqa: E402
from sorbet_hw.synth import layer_energy  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default="build")
    parser.add_argument("--jobs", type=int, default=2, help="measurements at a time")
    parser.add_argument("--sentences", type=int, default=50,
                        help="SST-2 dev sentences whose mean length the per-inference figures take")
    parser.add_argument("--designs", default=",".join(layer_energy.DEFAULT_DESIGNS),
                        help=f"of {', '.join(layer_energy.DESIGNS)}")
    parser.add_argument("--layers", default="0",
                        help="comma-separated encoder layers to measure, or 'all' (default 0; "
                        "another single layer: the per-inference columns extrapolate from it)")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="a packed SST-2 student (default: the shipped one)")
    from sorbet_hw.results import add_record_argument
    add_record_argument(parser)
    args = parser.parse_args()
    checkpoint = args.checkpoint or shipped_checkpoint("sst2")
    model = load_packed(checkpoint, "sst2")
    every = list(range(len(model.layers)))
    try:
        layers = every if args.layers == "all" else [int(x) for x in args.layers.split(",")]
    except ValueError:
        parser.error(f"--layers {args.layers}: give layer numbers separated by commas, or 'all'")
    if not layers or not set(layers) <= set(every):
        parser.error(f"--layers {args.layers}: the student has layers 0..{every[-1]}")
    started = time.time()
    results = [layer_energy.run(model, Path(args.build), designs=[d for d in args.designs.split(",") if d],
                                source=checkpoint_source(checkpoint) if args.checkpoint else "sst2.npz",
                                jobs=args.jobs, layer=layer) for layer in layers]
    wall = time.time() - started
    sample = dev_sample(get_task("sst2"), args.sentences)
    dev_tokens = mean_tokens(model, sample)
    nonzero = event_statistics(model, get_task("sst2"), sample)["graded_by_layer"]
    for result in results[1:]:
        print(layer_energy.markdown(result, dev_tokens, nonzero))
    if sorted(layers) == every:
        from sorbet_hw.model.glue import Examples
        sentence = event_statistics(model, get_task("sst2"), Examples([DEFAULT_SENTENCE], None, [0]))
        print(layer_energy.markdown_every_layer(results, dev_tokens, nonzero, sentence["graded_by_layer"]))
    result = results[0]
    print(layer_energy.markdown(result, dev_tokens, nonzero))
    print("wall time by part (s): " + ", ".join(f"{label} {r['wall_s']:.0f}"
                                               for label, r in result["measured"].items()))
    energy = {d: r["joules"] for d, r in result["layer"].items()}
    scaled = layer_energy.per_inference_by_layer(result, dev_tokens, nonzero)
    print("nonzero input fractions by layer (dev): " + "; ".join(
        f"{k} " + " ".join(f"{f:.3f}" for f in nonzero[k]) for k in dict.fromkeys(layer_energy.PROJECTION_INPUTS.values())))
    for a, b in (("event_driven", "bwn_dense"), ("event_driven", "bwn_skip_zeros")):
        if a in scaled and b in scaled:
            print(f"{a} / {b}, sparse layers scaled by their nonzero inputs: {scaled[a] / scaled[b]:.3f}x")
    for a, b in (("event_driven", "bwn_dense"), ("event_driven", "bwn_skip_zeros"),
                 ("event_driven", "mac8"), ("event_driven", "spiking"), ("spiking", "bwn_dense")):
        if a in energy and b in energy:
            print(f"{a} / {b}: {energy[a] / energy[b]:.3f}x")
    print(f"\nwall time {wall:.0f} s with {args.jobs} at a time (measurements reused from "
          f"{args.build}/activity count as zero)")
    inference = layer_energy.per_inference(result, dev_tokens)
    from sorbet_hw.results import save
    save("layer_on_gates", {
        "checkpoint": checkpoint_source(checkpoint), "layer": result.get("index", 0),
        "layers": result["layers"], "sentence": DEFAULT_SENTENCE, "sentence_tokens": result["tokens"],
        "dev_sentences": len(sample.labels), "dev_mean_tokens": round(dev_tokens, 2),
        "designs": {d: {"layer_uJ": r["joules"] * 1e6, "layer_ungated_uJ": r["ungated_joules"] * 1e6,
                        "nJ_per_token": r["joules"] / result["tokens"] * 1e9,
                        "per_inference_uJ": inference[d] * 1e6,
                        "per_inference_scaled_uJ": scaled[d] * 1e6,
                        "by_part_uJ": {k: v * 1e6 for k, v in r["by_part"].items()}}
                    for d, r in result["layer"].items()},
        "parts": {label: {"block": result["parts"][label].block, "cycles": r["cycles"],
                          "cells": r["cells"], "uJ": r["energy_j"] * 1e6,
                          "ungated_uJ": r["energy_ungated_j"] * 1e6,
                          "pJ_per_element": r["energy_per_element_j"] * 1e12}
                  for label, r in result["measured"].items()},
        "nonzero_fraction_by_layer": nonzero, "wall_s": round(wall)},
        shipped=args.record, build=Path(args.build))
    return 0


if __name__ == "__main__":
    sys.exit(main())
