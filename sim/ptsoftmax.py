"""Bench of the PTsoftmax block against :func:`model.ptsoftmax.ptsoftmax`.

Vectors: ``inputs[R, N]`` integer scores, ``expected[R, N]`` probabilities (P fractional
bits), one row per vector.
"""
from __future__ import annotations

import sys

import numpy as np

import cocotb

from sorbet_hw.model.params import signed_range
from sorbet_hw.sim.bench import reference, replay
from sorbet_hw.model.vectors import Vectors


def make_vectors(params: dict, count: int, seed: int) -> Vectors:
    """Directed edge cases, then ``count`` random rows of several distributions."""
    inputs, directed = score_rows(params, count, seed)
    return Vectors("ptsoftmax", dict(params), inputs, reference("ptsoftmax", params, inputs), source="random",
                   note=f"{directed} directed + {count} random rows, seed {seed}")


def score_rows(params: dict, count: int, seed: int) -> tuple[np.ndarray, int]:
    """Score rows for any softmax bench: edge cases, then random rows; (rows, directed count)."""
    n, width, frac = params["row_length"], params["score_width"], params["frac_bits"]
    lo, hi = signed_range(width)
    rng = np.random.default_rng(seed)
    directed = [
        np.zeros(n),                                  # zero row: all equal
        np.full(n, hi), np.full(n, lo),               # all maximum, all minimum (saturated)
        np.r_[hi, np.full(n - 1, lo)],                # one dominant, the rest at minimum
        np.r_[np.full(n - 1, lo), hi],                # dominant last
        np.r_[np.full(n - 1, hi), lo],                # all but one saturated high
        np.arange(n) << frac,                         # integer steps: a geometric row
        (np.arange(n) % 2) * (1 << frac),             # two levels one apart
        np.full(n, 1),                                # just above zero: ceil rounds up
        np.full(n, -1),                               # just below zero: ceil rounds to 0
    ]
    rows = [np.clip(np.asarray(r, dtype=np.int64), lo, hi) for r in directed]
    kinds = rng.integers(0, 5, size=count)
    for kind in kinds:
        if kind == 0:      # anything in range
            row = rng.integers(lo, hi + 1, size=n)
        elif kind == 1:    # attention-like: a few units around a random centre
            centre = rng.integers(lo, hi + 1)
            row = centre + rng.integers(-(4 << frac), (4 << frac) + 1, size=n)
        elif kind == 2:    # few distinct values, ties
            row = rng.choice(rng.integers(lo, hi + 1, size=3), size=n)
        elif kind == 3:    # spread of about 2 * out_frac_bits units: partial underflow
            span = (2 * params["out_frac_bits"]) << frac
            row = rng.integers(0, span + 1, size=n) + rng.integers(lo, hi + 1)
        else:              # a walk of steps up to P + 3 units: rises and drops of every size
            reach = params["out_frac_bits"] + 3
            row = np.cumsum(rng.integers(-(reach << frac), (reach << frac) + 1, size=n))
            row = row - row.min() + rng.integers(lo, hi + 1)
        rows.append(np.clip(row, lo, hi))
    return np.stack(rows).astype(np.int64), len(directed)


def cycles_per_beat(vectors: Vectors) -> float:
    return 1.0


# Parameter sets the test suite replays on both simulators: the default and others.
CONFIGURATIONS = {
    "default": {},
    "nearest-wide": dict(row_length=64, score_width=16, frac_bits=4, out_frac_bits=12,
                         rounding="nearest"),
    "one-element": dict(row_length=1, score_width=4, frac_bits=0, out_frac_bits=1),
    "max-widths": dict(row_length=5, score_width=32, frac_bits=8, out_frac_bits=24),
    # ceilings in -1 .. 1, k up to 6: M + k outgrows the ceiling's width
    "narrow-long": dict(row_length=40, score_width=3, frac_bits=2, out_frac_bits=6),
    # P = 3: 3-bit gaps clamped at 7, odd rows, nearest rounding
    "small-gaps": dict(row_length=7, score_width=10, frac_bits=3, out_frac_bits=3, rounding="nearest"),
}


@cocotb.test()
async def ptsoftmax_bench(dut):
    await replay(dut, sys.modules[__name__])
