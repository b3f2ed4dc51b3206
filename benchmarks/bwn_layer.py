"""The fair layer baseline on the whole model: every projection of the shipped SST-2 student
replayed bit for bit on the BWN layer, dense and with ``skip_zeros``, against the IF layer's
cycle count for the same work.

    python benchmarks/bwn_layer.py [--build DIR] [--layers 0,1,...] [--simulator verilator]

For each of the 36 projections (6 layers x Q, K, V, attention output, FFN in, FFN out) of the
default sentence: its shape, whether its inputs are signed, the fraction of input levels
that are zero, and the measured cycles per token of the BWN layer dense and zero-skipping
(16 lanes, 32 inputs a cycle, as exported), next to the IF layer's documented cost
T * G * (N / P + 1) + 1 per token at the same parallelism (its bench checks that formula).
Every replay must be bit exact; the script exits 1 otherwise.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sorbet_hw.model.checkpoint import load_packed, shipped_checkpoint  # noqa: E402
from sorbet_hw.model.export import DEFAULT_SENTENCE, export_vectors  # noqa: E402
from sorbet_hw.model.integer_model import LINEARS  # noqa: E402
from sorbet_hw.sim.runner import run_bench  # noqa: E402
from sorbet_hw.model.vectors import Vectors, load_vectors  # noqa: E402
from sorbet_hw.sim.vectors import check_vectors  # noqa: E402


def if_cycles_per_token(n: int, m: int, lanes: int, per_cycle: int, steps: int) -> int:
    return steps * (m // lanes) * (n // per_cycle + 1) + 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default="build/bench_bwn")
    parser.add_argument("--layers", default="0,1,2,3,4,5")
    parser.add_argument("--simulator", choices=["verilator", "icarus"], default="verilator")
    args = parser.parse_args()
    layers = [int(x) for x in args.layers.split(",")]
    model = load_packed(shipped_checkpoint("sst2"), "sst2")
    steps = int(model.config["time_steps"])
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        export_vectors(model, DEFAULT_SENTENCE, Path(tmp) / "v", source="sst2.npz")
        print("| projection | N x M | inputs | zero levels | BWN dense cyc/token | BWN skip cyc/token "
              "| IF cyc/token | IF / BWN dense | IF / BWN skip | bit exact |")
        print("|---|---|---|---:|---:|---:|---:|---:|---:|---|")
        failures, totals = 0, {"dense": 0, "skip": 0, "if": 0}
        for layer in layers:
            for name in LINEARS:
                path = Path(tmp) / "v" / f"layer{layer}.{name}.bwn_layer.npz"
                vectors = check_vectors(load_vectors(path), path, "bwn_layer")
                n, m = np.shape(vectors.params["weights"])
                tokens = len(vectors.inputs)
                cycles, exact = {}, True
                for mode, skip in (("dense", False), ("skip", True)):
                    v = Vectors("bwn_layer", {**vectors.params, "skip_zeros": skip}, vectors.inputs,
                                vectors.expected, vectors.source, vectors.note)
                    r = run_bench(v, args.simulator, build_root=Path(args.build), quick_build=True)
                    exact &= r.passed
                    cycles[mode] = r.cycles / tokens
                    totals[mode] += r.cycles
                lanes, per_cycle = vectors.params["lanes"], vectors.params["inputs_per_cycle"]
                if_token = if_cycles_per_token(n, m, lanes, per_cycle, steps)
                totals["if"] += if_token * tokens
                failures += not exact
                zeros = float(np.mean(vectors.inputs == 0))
                print(f"| layer{layer}.{name} | {n} x {m} | "
                      f"{'signed' if vectors.params['signed_inputs'] else 'unsigned'} | "
                      f"{zeros:.1%} | {cycles['dense']:,.0f} | {cycles['skip']:,.0f} | {if_token:,} | "
                      f"{if_token / cycles['dense']:.1f} | {if_token / cycles['skip']:.1f} | "
                      f"{'yes' if exact else 'NO'} |", flush=True)
    print(f"\nall projections: IF / BWN dense {totals['if'] / totals['dense']:.2f}x the cycles, "
          f"IF / BWN skip {totals['if'] / totals['skip']:.2f}x; {failures} not bit exact; "
          f"{time.time() - started:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
