"""Accuracy against events: the shipped student fine-tuned with the event penalty.

    python benchmarks/event_penalty.py [--weights 0,0.3,1,3] [--epochs 0.1] [--lr 1e-4]
                                       [--count unit|graded] [--teacher build/teacher/sst2/teacher.pt]

For each penalty weight W, ``sorbet-hw distill --stages bspn --init model/checkpoints/sst2.npz
--event-penalty W --event-count COUNT`` (resumable: a finished run is reused) into
``build/event-penalty/W`` (``build/event-penalty/graded/W`` for ``--count graded``),
then its packed student's SST-2 dev accuracy (the integer model = the spiking one) and its
zero-silent events (:func:`model.evaluate.event_statistics` on the whole dev set): graded
events (nonzero levels) and unit events (sum of |l|), per neuron and token and per synapse
and inference, and the weight rows the event-driven projections read as a fraction of the
dense BWN layers' (:func:`model.evaluate.event_statistics`, ``weight_reads``). W = 0 is the
same fine-tuning without the penalty (the control). Writes ``curve.json`` beside the runs
and prints the table.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sorbet_hw.model.checkpoint import load_packed, shipped_checkpoint  # noqa: E402
from sorbet_hw.model.evaluate import evaluate_integer, event_statistics  # noqa: E402
from sorbet_hw.model.glue import dev_tsv, get_task, read_tsv  # noqa: E402


def row(label: str, path: Path, task, dev) -> dict:
    model = load_packed(path, task.name)
    stats = event_statistics(model, task, dev)
    acc = evaluate_integer(model, task, dev)["accuracy"]
    r = {"label": label, "checkpoint": str(path), "accuracy": acc, **stats}
    print(f"| {label} | {acc:.2f} | {stats['mean']['graded']:.3f} | {stats['mean']['unit']:.3f} | "
          f"{stats['mean']['graded'] * stats['tokens']:.1f} | {stats['mean']['unit'] * stats['tokens']:.1f} | "
          f"{stats['graded']['intermediate']:.3f} | {stats['graded']['ffn_input']:.3f} | "
          f"{stats['weight_reads']:.3f} |", flush=True)
    return r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default="0,0.3,1,3")
    ap.add_argument("--epochs", default="0.1")
    ap.add_argument("--lr", default="1e-4")
    ap.add_argument("--teacher", default="build/teacher/sst2/teacher.pt")
    ap.add_argument("--count", choices=["unit", "graded"], default="unit",
                    help="what the penalty counts (distill --event-count)")
    ap.add_argument("--data", default=None,
                    help="the GLUE folder holding SST-2/train.tsv (default: $SORBET_GLUE)")
    ap.add_argument("--out", type=Path, default=None,
                    help="default build/event-penalty, or build/event-penalty/graded")
    args = ap.parse_args()
    args.out = args.out or Path("build/event-penalty") / ("graded" if args.count == "graded" else "")
    task = get_task("sst2")
    dev = read_tsv(task, dev_tsv(task))
    start = time.time()
    for w in args.weights.split(","):
        out = args.out / w
        if not (out / "student.npz").is_file():
            t0 = time.time()
            cmd = [sys.executable, "-m", "sorbet_hw.cli", "distill", "--task", "sst2", "--stages", "bspn",
                   "--init", str(shipped_checkpoint("sst2")), "--epochs", args.epochs, "--lr", args.lr,
                   "--seed", "2", "--event-penalty", w, "--event-count", args.count,
                   "--teacher", args.teacher, "-o", str(out),
                   *(["--data", args.data] if args.data else [])]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            print(f"W = {w}: trained in {time.time() - t0:.0f} s", flush=True)
    print("\n| student | SST-2 dev % | graded events / neuron / token | unit events | graded / "
          "synapse / inference | unit / synapse / inference | FFN hidden nonzero | FFN input nonzero "
          "| weight reads / BWN |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = [row("shipped", shipped_checkpoint("sst2"), task, dev)]
    rows += [row(f"W = {w}", args.out / w / "student.npz", task, dev) for w in args.weights.split(",")]
    (args.out / "curve.json").write_text(json.dumps({"epochs": args.epochs, "lr": args.lr,
                                                     "count": args.count, "rows": rows}, indent=2))
    print(f"\ntotal wall time {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
