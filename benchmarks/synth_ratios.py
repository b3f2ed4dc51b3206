"""Each spiking block against its conventional baseline, synthesized side by side in one run.

    python benchmarks/synth_ratios.py [--build DIR]

Yosys generic gates (cells) and iCE40 HX8K (LUT4, carry, DFF, BRAM, logic cells, Fmax from
nextpnr) for matched parameters: PTsoftmax vs softmax (16-score rows, 12-bit scores, 8-bit
probabilities), BSPN vs LayerNorm (32 channels, 12-bit in, 8-bit out), IF layer vs 8-bit MAC
layer (32 x 16, 4 lanes, 8 inputs a cycle). The IF layer works T = 16 steps per token where
the MAC layer works once, so cycles per token and a cells x cycles product are printed too.
Energy per element from measured switching activity is not implemented yet.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synth.flow import synthesize  # noqa: E402

LAYER = dict(inputs=32, outputs=16, lanes=4, inputs_per_cycle=8)
PAIRS = [
    ("ptsoftmax", {}, "softmax", {}, 1, 1),
    ("bspn", {}, "layernorm", {}, 1, 1),
    # cycles per token: IF T * G * (N/P + 1) + 1, MAC G * (N/P + 1) + 1 (G = 4, N/P = 4)
    ("if_layer", dict(LAYER, threshold_shift=4), "mac_layer", dict(LAYER, shift=8), 16 * 4 * 5 + 1, 4 * 5 + 1),
]
FIELDS = ("cells", "luts", "carries", "dffs", "brams", "logic_cells", "fmax_mhz")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default="build")
    args = parser.parse_args()
    rows = []
    for spiking, sp, baseline, bp, s_cycles, b_cycles in PAIRS:
        figures = {}
        for block, params in ((spiking, sp), (baseline, bp)):
            generic = synthesize(block, params, "generic", build_root=Path(args.build))
            ice40 = synthesize(block, params, "ice40", build_root=Path(args.build))
            figures[block] = {"cells": generic["cells"], **{k: ice40.get(k) for k in FIELDS[1:]}}
        rows.append((spiking, baseline, figures, s_cycles, b_cycles))
    print(f"{'pair':<22} {'figure':<12} {'spiking':>10} {'baseline':>10} {'baseline/spiking':>17}")
    for spiking, baseline, f, s_cycles, b_cycles in rows:
        for k in FIELDS:
            a, b = f[spiking][k], f[baseline][k]
            ratio = f"{b / a:.2f}" if a and b is not None else "-"
            print(f"{spiking + ' / ' + baseline:<22} {k:<12} {a!s:>10} {b!s:>10} {ratio:>17}")
        if s_cycles != b_cycles:
            a = f[spiking]["cells"] * s_cycles
            b = f[baseline]["cells"] * b_cycles
            print(f"{'':<22} {'cycles/token':<12} {s_cycles:>10} {b_cycles:>10} {b_cycles / s_cycles:>17.2f}")
            print(f"{'':<22} {'cells*cycles':<12} {a:>10} {b:>10} {b / a:>17.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
