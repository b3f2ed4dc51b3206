"""Each spiking block against its conventional baseline, synthesized and measured side by side.

    python benchmarks/synth_ratios.py [--build DIR] [--tokens 4] [--pairs ptsoftmax,bspn]

The configurations and inputs are real (:mod:`synth.workloads`): the shipped SST-2 student's
vectors for the default sentence, layer 0 — PTsoftmax vs softmax on its attention score rows
(12 scores a row), BSPN vs LayerNorm on 32 channels of its residual stream, the IF layer vs
the BWN layer (the integer model's own layer as a non-spiking accelerator, dense and with
``skip_zeros``) and an 8-bit MAC layer on a 32 x 16 slice of its query projection (4 lanes,
8 inputs a cycle).
Per block: Yosys generic cells (memories as macros) and memory bits, iCE40 HX8K LUT4 / carry /
DFF / BRAM / logic cells and Fmax from nextpnr, ECP5 LFE5U-85F LUT4 / DFF / DSP / Fmax, and
energy per element from the switching activity of its gates replaying the vectors
(:mod:`synth.activity`). The IF layer works T = 16 steps per token where the MAC
layer works once, so the measured cycles per token and a cells x cycles product are printed.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sorbet_hw.synth.activity import measure  # noqa: E402
from sorbet_hw.synth.flow import synthesize  # noqa: E402
from sorbet_hw.synth.workloads import PAIRS, shipped_workloads  # noqa: E402

ICE40 = ("luts", "carries", "dffs", "brams", "logic_cells", "fmax_mhz")
FIELDS = ("cells", "memory_bits", *ICE40, "ecp5_luts", "ecp5_dffs", "ecp5_dsps", "ecp5_fmax_mhz",
          "pJ/element")


def figures(vectors, build: Path) -> dict:
    generic = synthesize(vectors.block, vectors.params, "generic", build_root=build)
    ice40 = synthesize(vectors.block, vectors.params, "ice40", build_root=build)
    ecp5 = synthesize(vectors.block, vectors.params, "ecp5", build_root=build)
    activity = measure(vectors, build_root=build)
    out = {"cells": generic["cells"], "memory_bits": generic["memory_bits"],
           **{k: ice40.get(k) for k in ICE40},
           **{f"ecp5_{k}": ecp5.get(k) for k in ("luts", "dffs", "dsps", "fmax_mhz")},
           "pJ/element": round(activity["energy_per_element_j"] * 1e12, 3),
           "cycles/vector": activity["cycles"] / activity["vectors"]}
    for prefix, r in (("", ice40), ("ecp5_", ecp5)):
        if not r.get("fits", True):
            out[f"{prefix}fmax_mhz"] = "no fit"
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default="build")
    parser.add_argument("--tokens", type=int, default=4, help="tokens replayed for the energy")
    parser.add_argument("--pairs", default="", help="comma-separated spiking blocks whose pairs to "
                        f"measure (default: all; of {', '.join(dict(PAIRS))})")
    from sorbet_hw.results import add_record_argument
    add_record_argument(parser)
    args = parser.parse_args()
    chosen = [name for name in args.pairs.split(",") if name] or [s for s, _ in PAIRS]
    unknown = sorted(set(chosen) - {s for s, _ in PAIRS})
    if unknown:
        parser.error(f"--pairs: no pair for {', '.join(unknown)}; choose from {', '.join(dict(PAIRS))}")
    pairs = [(s, b) for s, b in PAIRS if s in chosen]
    build = Path(args.build)
    loads = shipped_workloads(build, tokens=args.tokens)
    measured = {label: figures(loads[label], build) for label in dict.fromkeys(x for pair in pairs for x in pair)}
    print(f"{'pair':<28} {'figure':<13} {'spiking':>10} {'baseline':>10} {'baseline/spiking':>17}")
    for s_name, b_name in pairs:
        s, b = measured[s_name], measured[b_name]
        pair = f"{s_name} / {b_name}"
        for k in FIELDS:
            ratio = f"{b[k] / s[k]:.2f}" if all(isinstance(x, (int, float)) and x for x in (s[k], b[k])) else "-"
            print(f"{pair:<28} {k:<13} {s[k]!s:>10} {b[k]!s:>10} {ratio:>17}")
        if s_name == "if_layer":
            sc, bc = s["cycles/vector"], b["cycles/vector"]
            print(f"{'':<28} {'cycles/token':<13} {sc:>10.0f} {bc:>10.0f} {bc / sc:>17.2f}")
            print(f"{'':<28} {'cells*cycles':<13} {s['cells'] * sc:>10.0f} {b['cells'] * bc:>10.0f} "
                  f"{b['cells'] * bc / (s['cells'] * sc):>17.2f}")
    from sorbet_hw.results import save
    save("synth_ratios", {"tokens": args.tokens, "blocks": measured,
                          "pairs": [{"spiking": s, "baseline": b,
                                     "cells_baseline_over_spiking": measured[b]["cells"] / measured[s]["cells"],
                                     "energy_baseline_over_spiking": measured[b]["pJ/element"] / measured[s]["pJ/element"]}
                                    for s, b in pairs]},
         shipped=args.record, build=build)
    return 0


if __name__ == "__main__":
    sys.exit(main())
