"""Bench of the baseline softmax block against :func:`model.softmax.softmax_fixed`.

Vectors: ``inputs[R, N]`` integer scores, ``expected[R, N]`` probabilities (P fractional
bits), one row per vector; the rows are PTsoftmax's (:func:`sim.ptsoftmax.score_rows`).
"""
from __future__ import annotations

import sys

import cocotb

from sorbet_hw.sim import ptsoftmax
from sorbet_hw.sim.bench import reference, replay
from sorbet_hw.model.vectors import Vectors


def make_vectors(params: dict, count: int, seed: int) -> Vectors:
    inputs, directed = ptsoftmax.score_rows(params, count, seed)
    return Vectors("softmax", dict(params), inputs, reference("softmax", params, inputs), source="random",
                   note=f"{directed} directed + {count} random rows, seed {seed}")


cycles_per_beat = ptsoftmax.cycles_per_beat


# Parameter sets the test suite replays on both simulators: the default and three others.
CONFIGURATIONS = {
    "default": {},
    "wide": dict(row_length=64, score_width=16, frac_bits=4, out_frac_bits=12),
    "one-element": dict(row_length=1, score_width=4, frac_bits=0, out_frac_bits=1),
    "coarse-table": dict(row_length=7, score_width=10, frac_bits=1, out_frac_bits=10, exp_bits=4),
    # PTsoftmax's buffer of gaps: a table of 25 steps, 5-bit gaps clamped at 31
    "gap-buffer": dict(row_length=12, score_width=12, frac_bits=2, out_frac_bits=8, gap_buffer=True),
}


@cocotb.test()
async def softmax_bench(dut):
    await replay(dut, sys.modules[__name__])
