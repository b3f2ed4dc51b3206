"""Accuracy against weight reads: activation steps made coarser after training.

    python benchmarks/coarsen_steps.py [--checkpoint student.npz] [--jobs 2]
        [--save OUT.npz --changes CHANGE] CHANGE [CHANGE ...]

Each CHANGE (``attention_input:0,1,2+ffn_input:2``: those layers' steps one power of two
coarser, :func:`model.coarsen.parse_changes`) is applied to the student
(:func:`model.coarsen.coarsen`) and evaluated on the whole SST-2 dev set as the integer model
(= the spiking model): accuracy, the weight rows the event-driven projections read as a
fraction of the dense BWN layers' (``weight_reads``), and the nonzero fraction of each
projection input by layer. ``none`` is the student unchanged. ``--save`` packs the student
of ``--changes`` with its figures in the metrics of its sidecar.
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sorbet_hw.model.checkpoint import load_packed, save_packed, shipped_checkpoint  # noqa: E402
from sorbet_hw.model.coarsen import coarsen, describe, parse_changes  # noqa: E402
from sorbet_hw.model.evaluate import evaluate_integer, event_statistics  # noqa: E402
from sorbet_hw.model.glue import dev_tsv, get_task, read_tsv  # noqa: E402

INPUTS = ("attention_input", "context", "ffn_input", "intermediate")


def dev_set():
    task = get_task("sst2")
    return task, read_tsv(task, dev_tsv(task))


def evaluate(model, text: str) -> dict:
    task, dev = dev_set()
    stats = event_statistics(model, task, dev)
    return {"changes": text, "accuracy": evaluate_integer(model, task, dev)["accuracy"],
            "weight_reads": stats["weight_reads"],
            "nonzero_by_layer": {k: stats["graded_by_layer"][k] for k in INPUTS}}


def figures(checkpoint: str, text: str) -> dict:
    """One candidate in a worker process: load, coarsen, evaluate."""
    base = load_packed(Path(checkpoint), "sst2")
    return evaluate(base if text == "none" else coarsen(base, parse_changes(text, len(base.layers))), text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("candidates", nargs="*", help="changes to evaluate ('none': the student as it is)")
    ap.add_argument("--checkpoint", type=Path, default=None, help="default: the shipped SST-2 student")
    ap.add_argument("--jobs", type=int, default=2, help="evaluations at a time (one core each)")
    ap.add_argument("--save", type=Path, default=None, help="pack the student of --changes here")
    ap.add_argument("--changes", default="", help="the changes --save applies")
    args = ap.parse_args()
    checkpoint = str(args.checkpoint or shipped_checkpoint("sst2"))
    base = load_packed(Path(checkpoint), "sst2")
    for text in args.candidates + ([args.changes] if args.save else []):
        if text != "none":
            parse_changes(text, len(base.layers))          # a typo fails before minutes of work
    if args.save and not args.changes:
        ap.error("--save needs --changes")
    started = time.time()
    print("| changes | SST-2 dev % | weight reads / dense BWN | nonzero inputs by layer: "
          + ", ".join(INPUTS) + " |\n|---|---:|---:|---|", flush=True)
    with ProcessPoolExecutor(max(1, args.jobs)) as pool:
        for r in pool.map(figures, [checkpoint] * len(args.candidates), args.candidates):
            nz = "; ".join(" ".join(f"{f:.2f}" for f in r["nonzero_by_layer"][k]) for k in INPUTS)
            print(f"| {r['changes']} | {r['accuracy']:.2f} | {r['weight_reads']:.3f} | {nz} |", flush=True)
    if args.save:
        changes = parse_changes(args.changes, len(base.layers))
        model = coarsen(base, changes)
        r = evaluate(model, args.changes)
        metrics = copy.deepcopy(base.meta.get("metrics", {}))
        label = f"steps coarsened ({describe(changes)})"
        metrics.setdefault("stages", {})[label] = {"accuracy": r["accuracy"]}
        metrics["integer"] = {"accuracy": r["accuracy"]}
        # A student coarsened again keeps the record of every earlier change, in order.
        earlier = metrics.get("coarsened", [])
        metrics["coarsened"] = [*(earlier if isinstance(earlier, list) else [earlier]),
                                {"from": Path(checkpoint).name, "changes": describe(changes),
                                 "accuracy": r["accuracy"], "weight_reads": r["weight_reads"]}]
        save_packed(model, args.save, task="sst2", metrics=metrics)
        print(f"saved {args.save}: {r['accuracy']:.2f} % SST-2 dev, weight reads {r['weight_reads']:.3f}")
    print(f"\nwall time {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
