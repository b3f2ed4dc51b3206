"""Layer 0 of the shipped SST-2 student on gates: energy per token and per sentence.

    python benchmarks/layer_on_gates.py [--build DIR] [--blocks if_layer,bwn_layer,...]

Every block of layer 0 that has a bench, each synthesized to generic gates (memories as
macros) and replayed on the default sentence, all its tokens, at the exported parallelism
(16 lanes, 32 inputs a cycle), with switching activity from Verilator's SAIF
(:mod:`synth.activity`, energy method 2, gated and ungated clock):

- the six projections (query, key, value, attention output, FFN in, FFN out) as IF layers
  (the spiking design), as BWN layers, dense and with ``skip_zeros`` (the fair baseline),
  and as event-driven IF layers on zero-silent graded events (48 lanes, one pass a token);
- the spiking design's attention (Q.K and P.V on spikes, PTsoftmax inside: the
  ``spiking_attention`` block on the sentence's real levels), its three rate encoders and
  five spike counters;
- the event-driven design's attention on zero-silent events (``event_attention``, PTsoftmax
  inside), its two event encoders (the residual stream into the attention and into the FFN)
  and two event counters (the attention output and the FFN output back into the residual
  stream): Q, K, V and the context travel as events from block to block, uncounted;
- PTsoftmax on every head's score rows (the BWN design's softmax) and BSPN on both norms'
  384 channels, which every design shares.

The spiking layer = IF projections + spiking attention + encoders + counters + 2 BSPN. The
event-driven layer = event projections + event attention + its converters + 2 BSPN, all on
gates. The BWN layer = BWN projections + PTsoftmax + 2 BSPN + its attention products Q.K and
P.V (4-bit levels times 4-bit levels), which have no block here: they are charged by
operation count (:data:`synth.energy.E_MAC_INT8` a product, Horowitz's int8 figure, generous
to 4 bits, and without the buffers an attention block needs: this favours the BWN layer; a
dense 110,592 products a sentence, 0.03 uJ). No design's residual adders and buffers are on
gates.

Each measurement is kept under ``build/activity`` and reused; wall times are printed.
"""
from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sorbet_hw.model.checkpoint import load_packed, shipped_checkpoint  # noqa: E402
from sorbet_hw.model.export import COUNTED, DEFAULT_SENTENCE, RATE_ENCODED, export_vectors  # noqa: E402
from sorbet_hw.model.integer_model import LINEARS  # noqa: E402
from sorbet_hw.model.vectors import Vectors, load_vectors  # noqa: E402
from sorbet_hw.synth.activity import measure  # noqa: E402
from sorbet_hw.synth.energy import E_MAC_INT8  # noqa: E402

DESIGNS = ("if_layer", "bwn_layer", "bwn_layer_skip", "event_if_layer")
# Parts of one design only, besides its projections ("shared" parts belong to every design).
SPIKING, BWN, EVENT = "spiking", "bwn", "event"
# Where the event design converts between levels and events: the residual stream into the
# attention and the FFN, and the two projections whose outputs join it.
EVENT_ENCODED, EVENT_COUNTED = ("attention_input", "ffn_input"), ("attention_output", "output")


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
        out[("event_if_layer", name)] = load_vectors(vectors / f"layer{layer}.{name}.event_if_layer.npz")
    out[(SPIKING, "spiking_attention")] = load_vectors(vectors / f"layer{layer}.spiking_attention.npz")
    for name in RATE_ENCODED:
        out[(SPIKING, f"rate_encoder.{name}")] = load_vectors(vectors / f"layer{layer}.rate_encoder.{name}.npz")
    for name in COUNTED:
        out[(SPIKING, f"spike_counter.{name}")] = load_vectors(vectors / f"layer{layer}.spike_counter.{name}.npz")
    out[(EVENT, "event_attention")] = load_vectors(vectors / f"layer{layer}.event_attention.npz")
    for block, names in (("event_encoder", EVENT_ENCODED), ("event_counter", EVENT_COUNTED)):
        for name in names:
            out[(EVENT, f"{block}.{name}")] = load_vectors(vectors / f"layer{layer}.{block}.{name}.npz")
    out[(BWN, "ptsoftmax")] = load_vectors(vectors / f"layer{layer}.ptsoftmax.npz")
    for norm in ("attention_norm", "output_norm"):
        out[("shared", norm)] = load_vectors(vectors / f"layer{layer}.{norm}.npz")
    return out


def attention_products(vectors: Vectors, skip_zeros: bool) -> float:
    """Joules of the BWN design's Q.K and P.V, by operation count: one int8 multiply-accumulate
    a product of two levels, none for a zero level when ``skip_zeros``."""
    p = vectors.params
    q, k, v = (vectors.inputs[0, i] - (1 << (p["act_bits"] - 1)) for i in range(3))
    heads, n = p["heads"], p["tokens"]
    per_head = lambda t: t.reshape(n, heads, -1)  # noqa: E731
    if skip_zeros:       # a query's nonzero levels meet every key; every value level, every query
        products = np.count_nonzero(per_head(q)) * n + np.count_nonzero(per_head(v)) * n
    else:
        products = 2 * n * n * q.shape[-1]
    return products * E_MAC_INT8


def mean_dev_tokens(model, sentences: int) -> float:
    """Mean tokens of the first ``sentences`` SST-2 dev sentences (as `sorbet-hw energy`)."""
    from sorbet_hw.model.evaluate import tokenize
    from sorbet_hw.model.glue import Examples, get_task, glue_dir, read_tsv
    task = get_task("sst2")
    dev = read_tsv(task, glue_dir() / task.folder / "dev.tsv")
    sample = Examples(dev.text_a[:sentences], None, dev.labels[:sentences])
    return float(np.mean([len(ids) for ids, _ in tokenize(model, sample)]))


def _cost(vectors: Vectors) -> tuple:
    """An order of measurements by expected time: spiking layers by size, then replays by
    length (a gate-level replay costs its cycles times its netlist's size)."""
    from sorbet_hw.synth.activity import expected_cycles
    weights = vectors.params.get("weights")
    size = int(np.size(weights)) if vectors.block in ("if_layer", "event_if_layer") else 0
    return size, expected_cycles(vectors)


def _timed_measure(vectors: Vectors, build: Path) -> dict:
    t0 = time.time()
    return {**measure(vectors, build_root=build), "wall_s": time.time() - t0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default="build")
    parser.add_argument("--jobs", type=int, default=2, help="measurements at a time")
    parser.add_argument("--sentences", type=int, default=50,
                        help="SST-2 dev sentences whose mean length the per-inference figures take")
    parser.add_argument("--designs", default=",".join(DESIGNS),
                        help="which projection designs to measure (the shared blocks always are)")
    args = parser.parse_args()
    build = Path(args.build)
    designs = [d for d in args.designs.split(",") if d]
    vectors = build / "layer-gates" / "vectors"
    model = load_packed(shipped_checkpoint("sst2"), "sst2")
    manifest = export_vectors(model, DEFAULT_SENTENCE, vectors, source="sst2.npz")
    tokens = len(manifest["token_ids"])
    parts = loads(vectors)
    started = time.time()
    wanted = {*designs, "shared"} | ({SPIKING} if "if_layer" in designs else set()) \
        | ({BWN} if any(d.startswith("bwn_layer") for d in designs) else set()) \
        | ({EVENT} if "event_if_layer" in designs else set())
    todo = {key: v for key, v in parts.items() if key[0] in wanted}
    # Yosys and the simulation are single-threaded: one measurement a core, the longest
    # first (the IF layers' netlists, biggest first, then by replay length), so that the
    # cores finish together instead of one running the FFN layer alone at the end.
    order = sorted(todo, key=lambda key: _cost(todo[key]), reverse=True)
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = {key: pool.submit(_timed_measure, todo[key], build) for key in order}
        measured = {key: futures[key].result() for key in todo}
    print(f"layer 0, default sentence ({tokens} tokens), gates (method 2), {args.jobs} at a time")
    print(f"{'design':<15} {'part':<17} {'cycles':>10} {'gated uJ':>9} {'ungated uJ':>10} "
          f"{'pJ/element':>10} {'wall s':>7}")
    for (design, part), r in measured.items():
        print(f"{design:<15} {part:<17} {r['cycles']:>10,} {r['energy_j'] * 1e6:>9.3f} "
              f"{r['energy_ungated_j'] * 1e6:>10.3f} {r['energy_per_element_j'] * 1e12:>10.4f} "
              f"{r['wall_s']:>7.1f}")
    # The BWN designs' Q.K and P.V, by operation count (no block).
    products = {design: attention_products(parts[(SPIKING, "spiking_attention")], design.endswith("skip"))
                for design in designs if design.startswith("bwn_layer")}
    for design, joules in products.items():
        print(f"{design:<15} {'Q.K + P.V (ops)':<17} {'':>10} {joules * 1e6:>9.3f} {joules * 1e6:>10.3f}")
    print("\nper layer 0 (spiking: IF + attention + converters + 2 BSPN; event-driven: its "
          "projections + event attention + event converters + 2 BSPN; all on gates; BWN: its "
          "projections + PTsoftmax + 2 BSPN on gates, Q.K and P.V by operation count):")
    print(f"{'design':<15} {'gated uJ/sentence':>18} {'gated nJ/token':>15} {'ungated uJ/sentence':>20}")
    totals = {}
    for design in designs:
        own = {"if_layer": (SPIKING,), "event_if_layer": (EVENT,)}.get(design, (BWN,))
        rs = [r for (d, _), r in measured.items() if d in (design, *own, "shared")]
        gated = sum(r["energy_j"] for r in rs) + products.get(design, 0.0)
        ungated = sum(r["energy_ungated_j"] for r in rs) + products.get(design, 0.0)
        totals[design] = gated
        print(f"{design:<15} {gated * 1e6:>18.3f} {gated * 1e9 / tokens:>15.1f} {ungated * 1e6:>20.3f}")
    for a, b in (("if_layer", "bwn_layer"), ("if_layer", "bwn_layer_skip"),
                 ("event_if_layer", "bwn_layer"), ("event_if_layer", "bwn_layer_skip"),
                 ("event_if_layer", "if_layer")):
        if a in totals and b in totals:
            print(f"{a} / {b}: {totals[a] / totals[b]:.3f}x")
    # Per SST-2 inference at real size: every layer charged as layer 0 per token (its activity
    # stands for the others'), over the dev set's mean sentence, against the slice-based
    # figures of `sorbet-hw energy`.
    dev_tokens = mean_dev_tokens(model, args.sentences)
    layers = len(model.layers)
    print(f"\nper SST-2 inference, extrapolated from layer 0 ({layers} layers x {dev_tokens:.1f} "
          f"tokens, the mean of the first {args.sentences} dev sentences, x layer 0's energy a token):")
    for design, joules in totals.items():
        print(f"{design:<15} {joules / tokens * dev_tokens * layers * 1e6:>10.2f} uJ")
    print(f"\nwall time {time.time() - started:.0f} s (measurements reused from {build}/activity "
          f"count as zero)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
