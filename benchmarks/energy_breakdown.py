"""Where a block's energy goes, register by register, on the ratios benchmark's real inputs.

    python benchmarks/energy_breakdown.py [--blocks ptsoftmax,softmax_gaps] [--top 15] [--build DIR]

Each block of :mod:`synth.workloads` (layer 0's vectors of the shipped SST-2 student, as
``synth_ratios.py`` replays them) runs on its gate netlist in Verilator with SAIF, and
:func:`synth.activity.energy_by_register` charges every net to the registers, memory ports
and outputs its gates feed, every clock bank to its registers, and the memories' accesses:
the same total as the block's pJ an element, split where a designer can act on it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sorbet_hw.synth.activity import breakdown, elements  # noqa: E402
from sorbet_hw.synth.workloads import shipped_workloads  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", default="ptsoftmax,softmax_gaps")
    parser.add_argument("--top", type=int, default=15, help="lines a block (the rest summed)")
    parser.add_argument("--tokens", type=int, default=4, help="as synth_ratios.py")
    parser.add_argument("--build", default="build")
    args = parser.parse_args()
    build = Path(args.build)
    loads = shipped_workloads(build, tokens=args.tokens)
    unknown = [b for b in args.blocks.split(",") if b not in loads]
    if unknown:
        parser.error(f"--blocks: no workload {', '.join(unknown)}; choose from {', '.join(loads)}")
    for name in args.blocks.split(","):
        split = breakdown(loads[name], build_root=build)
        total, n = sum(split.values()), elements(loads[name])
        print(f"{name}: {total * 1e12:.1f} pJ for {n} elements, {total / n * 1e12:.3f} pJ an element")
        shown = list(split.items())[:args.top]
        for key, joules in shown:
            print(f"  {joules * 1e12:7.2f} pJ {joules / total:6.1%}  {key}")
        rest = total - sum(j for _, j in shown)
        print(f"  {rest * 1e12:7.2f} pJ {rest / total:6.1%}  ({len(split) - len(shown)} more)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
