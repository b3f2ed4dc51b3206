"""The event-driven IF layer on gates: cycles and energy per token against input events.

    python benchmarks/event_if_layer.py [--projection query] [--tokens 8]
                                        [--densities 0,0.05,0.1,0.25,0.5,0.75,1] [--build DIR]
                                        [--no-compare]

One projection of layer 0 of the shipped SST-2 student (its weights, shift and signed bias;
48 lanes), synthesized to generic gates with its RAMs and ROM as macros, replayed in
Verilator with switching activity (energy method 2, :mod:`synth.activity`, gated and
ungated clock) on:

- synthetic tokens whose fraction of nonzero levels sweeps from all-silent to dense (levels
  uniform over the nonzero signed levels, seed 0), ``--tokens`` each;
- the real default sentence (its levels as the integer model computes them), as graded
  events and as unit (+-1) events: the measured case for graded events;
- and, beside it (unless ``--no-compare``), the same projection on the same sentence as
  today's dense IF layer (offset spike trains, 16 lanes x 32 inputs a cycle) and as the BWN
  baseline, dense and with ``skip_zeros`` (16 lanes x 32 inputs a cycle).

Printed: events a token, cycles a token (the gate-level run's, no stalls), energy a token
and per input event. Results are kept under ``build/activity`` and reused.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sorbet_hw.model.checkpoint import load_packed, shipped_checkpoint  # noqa: E402
from sorbet_hw.model.event_if_layer import event_if_layer, level_range  # noqa: E402
from sorbet_hw.model.export import DEFAULT_SENTENCE, export_vectors  # noqa: E402
from sorbet_hw.model.vectors import Vectors, load_vectors  # noqa: E402
from sorbet_hw.synth.activity import measure  # noqa: E402


def synthetic(params: dict, density: float, tokens: int, seed: int = 0) -> Vectors:
    n = len(params["weights"])
    lo, hi = level_range(params["act_bits"], params["input_signed"])
    rng = np.random.default_rng(seed)
    nonzero = np.array([v for v in range(lo, hi + 1) if v != 0])
    levels = np.where(rng.random((tokens, n)) < density, rng.choice(nonzero, (tokens, n)), 0)
    ref = {k: params[k] for k in ("bias", "threshold_shift", "act_bits", "weight_kind",
                                  "input_signed", "output_signed")}
    return Vectors("event_if_layer", params, levels, event_if_layer(levels, params["weights"], **ref),
                   source="synthetic", note=f"density {density}, seed {seed}")


def row(label: str, vectors: Vectors, events: float, build: Path) -> dict:
    t0 = time.time()
    r = measure(vectors, build_root=build)
    tokens = len(vectors.inputs)
    out = {"label": label, "events": events, "cycles": r["cycles"] / tokens,
           "uJ": r["energy_j"] / tokens * 1e6, "uJ_ungated": r["energy_ungated_j"] / tokens * 1e6,
           "wall_s": time.time() - t0}
    out["pJ_per_event"] = r["energy_j"] / tokens / events * 1e12 if events else float("nan")
    print(f"| {label} | {events:.1f} | {out['cycles']:,.0f} | {out['uJ']:.4f} | "
          f"{out['uJ_ungated']:.4f} | {out['pJ_per_event']:.2f} | {out['wall_s']:.0f} s |", flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--projection", default="query")
    ap.add_argument("--tokens", type=int, default=8)
    ap.add_argument("--densities", default="0,0.05,0.1,0.25,0.5,0.75,1")
    ap.add_argument("--build", type=Path, default=Path("build"))
    ap.add_argument("--no-compare", action="store_true")
    args = ap.parse_args(argv)
    start = time.time()
    vectors_dir = args.build / "event-bench" / "vectors"
    if not (vectors_dir / "manifest.json").is_file():
        export_vectors(load_packed(shipped_checkpoint("sst2"), "sst2"), DEFAULT_SENTENCE,
                       vectors_dir, source="shipped sst2", force=True)
    real = load_vectors(vectors_dir / f"layer0.{args.projection}.event_if_layer.npz")
    params = real.params
    n, m = np.shape(params["weights"])
    print(f"layer 0 {args.projection}: {n} x {m}, {params['lanes']} lanes "
          f"(G = {m // params['lanes']} cycles an event)\n")
    print("| inputs | events a token | cycles a token | uJ a token (gated) | ungated | "
          "pJ an event | wall |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    rows = []
    for density in (float(d) for d in args.densities.split(",")):
        v = synthetic(params, density, args.tokens)
        rows.append(row(f"synthetic, {density:.0%} nonzero", v, np.count_nonzero(v.inputs) / len(v.inputs),
                        args.build))
    graded = np.count_nonzero(real.inputs) / len(real.inputs)
    rows.append(row("real sentence, graded", real, graded, args.build))
    unit = Vectors("event_if_layer", {**params, "event_kind": "unit"}, real.inputs, real.expected,
                   real.source, real.note + ", unit events")
    rows.append(row("real sentence, unit (+-1) events", unit, np.abs(real.inputs).sum() / len(real.inputs),
                    args.build))
    if not args.no_compare:
        dense_if = load_vectors(vectors_dir / f"layer0.{args.projection}.npz")
        spikes = dense_if.inputs.sum() / len(dense_if.inputs)
        rows.append(row("real sentence, dense IF (offset spikes)", dense_if, spikes, args.build))
        bwn = load_vectors(vectors_dir / f"layer0.{args.projection}.bwn_layer.npz")
        rows.append(row("real sentence, BWN dense", bwn, n, args.build))
        skip = Vectors("bwn_layer", {**bwn.params, "skip_zeros": True}, bwn.inputs, bwn.expected,
                       bwn.source, bwn.note + ", skip_zeros")
        rows.append(row("real sentence, BWN skip_zeros", skip, graded, args.build))
    # Scaling: a straight line through the synthetic points.
    synth = [r for r in rows if r["label"].startswith("synthetic")]
    x = np.array([r["events"] for r in synth])
    for key, unit_name in (("cycles", "cycles"), ("uJ", "uJ")):
        y = np.array([r[key] for r in synth])
        slope, intercept = np.polyfit(x, y, 1)
        print(f"\n{key}: {intercept:.4g} + {slope:.4g} x events a token ({unit_name}; fit over "
              f"the synthetic points, max residual {np.abs(y - (intercept + slope * x)).max():.3g})")
    print(f"\ntotal wall time {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
