"""The shipped students on the shipped GLUE dev sets: the integer model's dev metrics.

    python benchmarks/accuracy.py [--tasks sst2,mrpc] [--record]

The integer model equals the spiking one bit for bit (the test suite checks it layer by
layer), so these are the spiking students' figures too; ``sorbet-hw eval --spiking``
measures them on the spike-level simulation (about ten minutes for SST-2).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sorbet_hw.model.checkpoint import load_packed, shipped_checkpoint  # noqa: E402
from sorbet_hw.model.evaluate import evaluate_integer  # noqa: E402
from sorbet_hw.model.glue import dev_tsv, get_task, read_tsv  # noqa: E402
from sorbet_hw.operations import checkpoint_source  # noqa: E402
from sorbet_hw.results import save  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="sst2,mrpc", help="tasks with a shipped student")
    parser.add_argument("--build", default="build")
    from sorbet_hw.results import add_record_argument
    add_record_argument(parser)
    args = parser.parse_args()
    figures = {}
    for name in args.tasks.split(","):
        task = get_task(name)
        path = shipped_checkpoint(task.name)
        model = load_packed(path, task.name)
        dev = read_tsv(task, dev_tsv(task))
        started = time.time()
        metrics = evaluate_integer(model, task, dev, progress=False)
        teacher = (model.meta.get("metrics") or {}).get("teacher") or {}
        figures[task.name] = {"checkpoint": checkpoint_source(path), "examples": len(dev),
                              "metrics": metrics, "teacher": teacher,
                              "seconds": round(time.time() - started, 1)}
        print(f"{task.name}: " + ", ".join(f"{k} {v:.2f}" for k, v in metrics.items()) +
              f" on {len(dev)} dev examples (teacher: " +
              ", ".join(f"{k} {v:.2f}" for k, v in teacher.items()) + ")", flush=True)
    save("accuracy", figures, shipped=args.record, build=Path(args.build))
    return 0


if __name__ == "__main__":
    sys.exit(main())
