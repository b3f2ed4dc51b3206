"""Layer 0 of the shipped SST-2 student on gates: energy per token and per sentence.

    python benchmarks/layer_on_gates.py [--build DIR] [--blocks if_layer,bwn_layer,...]

Every block of layer 0 that has a bench, each synthesized to generic gates (memories as
macros) and replayed on the default sentence, all its tokens, at the exported parallelism
(16 lanes, 32 inputs a cycle), with switching activity from Verilator's SAIF
(:mod:`synth.activity`, energy method 2, gated and ungated clock):

- the six projections (query, key, value, attention output, FFN in, FFN out) as IF layers
  (the spiking design) and as BWN layers, dense and with ``skip_zeros`` (the fair baseline);
- PTsoftmax on every head's score rows and BSPN on both norms' 384 channels, which the BWN
  design of the same model shares.

The spiking layer = IF projections + PTsoftmax + 2 BSPN; the BWN layer = BWN projections +
PTsoftmax + 2 BSPN. Not on gates: the attention products Q.K and P.V (spiking attention has
no bench of its own yet) and the spike encoders and counters between blocks; their share is
printed from the operation counts of :mod:`synth.energy` for scale.

Each measurement is kept under ``build/activity`` and reused; wall times are printed.
"""
from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sorbet_hw.model.checkpoint import load_packed, shipped_checkpoint  # noqa: E402
from sorbet_hw.model.export import DEFAULT_SENTENCE, export_vectors  # noqa: E402
from sorbet_hw.model.integer_model import LINEARS  # noqa: E402
from sorbet_hw.model.vectors import Vectors, load_vectors  # noqa: E402
from sorbet_hw.synth.activity import measure  # noqa: E402

DESIGNS = ("if_layer", "bwn_layer", "bwn_layer_skip")


def loads(vectors: Path, layer: int = 0) -> dict[tuple[str, str], Vectors]:
    """(design, part) -> the part's vectors for the whole sentence."""
    out = {}
    for name in LINEARS:
        out[("if_layer", name)] = load_vectors(vectors / f"layer{layer}.{name}.npz")
        bwn = load_vectors(vectors / f"layer{layer}.{name}.bwn_layer.npz")
        out[("bwn_layer", name)] = bwn
        skip = {**bwn.params, "skip_zeros": True}
        out[("bwn_layer_skip", name)] = Vectors("bwn_layer", skip, bwn.inputs, bwn.expected,
                                                bwn.source, bwn.note + ", skip_zeros")
    out[("shared", "ptsoftmax")] = load_vectors(vectors / f"layer{layer}.ptsoftmax.npz")
    for norm in ("attention_norm", "output_norm"):
        out[("shared", norm)] = load_vectors(vectors / f"layer{layer}.{norm}.npz")
    return out


def _timed_measure(vectors: Vectors, build: Path) -> dict:
    t0 = time.time()
    return {**measure(vectors, build_root=build), "wall_s": time.time() - t0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default="build")
    parser.add_argument("--jobs", type=int, default=2, help="measurements at a time")
    parser.add_argument("--designs", default=",".join(DESIGNS),
                        help="which projection designs to measure (the shared blocks always are)")
    args = parser.parse_args()
    build = Path(args.build)
    designs = [d for d in args.designs.split(",") if d]
    vectors = build / "layer-gates" / "vectors"
    manifest = export_vectors(load_packed(shipped_checkpoint("sst2"), "sst2"), DEFAULT_SENTENCE,
                              vectors, source="sst2.npz")
    tokens = len(manifest["token_ids"])
    parts = loads(vectors)
    started = time.time()
    todo = {key: v for key, v in parts.items() if key[0] in designs or key[0] == "shared"}
    # Yosys and the simulation are single-threaded: one measurement a core.
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = {key: pool.submit(_timed_measure, v, build) for key, v in todo.items()}
        measured = {key: f.result() for key, f in futures.items()}
    print(f"layer 0, default sentence ({tokens} tokens), gates (method 2), {args.jobs} at a time")
    print(f"{'design':<15} {'part':<17} {'cycles':>10} {'gated uJ':>9} {'ungated uJ':>10} "
          f"{'pJ/element':>10} {'wall s':>7}")
    for (design, part), r in measured.items():
        print(f"{design:<15} {part:<17} {r['cycles']:>10,} {r['energy_j'] * 1e6:>9.3f} "
              f"{r['energy_ungated_j'] * 1e6:>10.3f} {r['energy_per_element_j'] * 1e12:>10.4f} "
              f"{r['wall_s']:>7.1f}")
    shared = [r for (d, _), r in measured.items() if d == "shared"]
    print("\nper layer 0 (projections + PTsoftmax + 2 BSPN; attention products not on gates):")
    print(f"{'design':<15} {'gated uJ/sentence':>18} {'gated nJ/token':>15} {'ungated uJ/sentence':>20}")
    totals = {}
    for design in designs:
        rs = [r for (d, _), r in measured.items() if d == design] + shared
        gated = sum(r["energy_j"] for r in rs)
        ungated = sum(r["energy_ungated_j"] for r in rs)
        totals[design] = gated
        print(f"{design:<15} {gated * 1e6:>18.3f} {gated * 1e9 / tokens:>15.1f} {ungated * 1e6:>20.3f}")
    if "if_layer" in totals:
        for design in designs[1:]:
            print(f"spiking / {design}: {totals['if_layer'] / totals[design]:.2f}x")
    print(f"\nwall time {time.time() - started:.0f} s (measurements reused from {build}/activity "
          f"count as zero)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
