"""Measured cycles per element of every block, from simulation at full speed.

Runs each block's bench on Verilator with the input always valid and the output always ready,
and prints cycles per input beat over the busy period (first input accepted to last output).

    python benchmarks/throughput.py [--vectors 500] [--simulator verilator]
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sorbet_hw.hw.blocks import get_block  # noqa: E402
from sorbet_hw.sim.runner import BuildError, run_bench  # noqa: E402

CONFIGS = [
    ("ptsoftmax", {}, "score"),
    ("ptsoftmax", dict(row_length=64), "score"),
    ("bspn", {}, "channel value"),
    ("bspn", dict(channels=384, groups=8), "channel value"),
    ("if_layer", {}, "time step"),
    ("if_layer", dict(inputs_per_cycle=8), "time step"),
    ("if_layer", dict(inputs_per_cycle=1), "time step"),
    ("if_layer", dict(lanes=4, inputs_per_cycle=8), "time step"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, default=500)
    parser.add_argument("--simulator", default="verilator", choices=["verilator", "icarus"])
    args = parser.parse_args()
    print(f"{'block':<10} {'config':<36} {'element':<14} {'cycles/elem':>11} "
          f"{'cycles/vector':>13} {'sim s':>6}")
    for block, overrides, element in CONFIGS:
        params = get_block(block).resolve(overrides)
        bench = importlib.import_module(f"sorbet_hw.sim.{block}")
        vectors = bench.make_vectors(params, args.vectors, seed=1)
        start = time.time()
        try:
            result = run_bench(vectors, args.simulator)
        except BuildError as e:
            print(f"throughput: {e}", file=sys.stderr)
            return 1
        seconds = time.time() - start
        if not result.passed:
            print(f"{block}: bench failed: {result.first_mismatch}", file=sys.stderr)
            return 1
        shown = ", ".join(f"{k}={v}" for k, v in overrides.items()) or "default"
        print(f"{block:<10} {shown:<36} {element:<14} {result.cycles_per_beat:>11.3f} "
              f"{result.active_cycles / len(vectors):>13.1f} {seconds:>6.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
