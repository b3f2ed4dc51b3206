"""Bench of the baseline softmax block against :func:`model.softmax.softmax_fixed`.

Vectors: ``inputs[R, N]`` integer scores, ``expected[R, N]`` probabilities (P fractional
bits), one row per vector; the rows are PTsoftmax's (:func:`sim.ptsoftmax.score_rows`).
"""
from __future__ import annotations

import sys

import numpy as np

import cocotb

from sorbet_hw.model.softmax import softmax_fixed
from sorbet_hw.sim import ptsoftmax
from sorbet_hw.sim.bench import replay
from sorbet_hw.model.vectors import Vectors


def reference(params: dict, inputs: np.ndarray) -> np.ndarray:
    return softmax_fixed(inputs, frac_bits=params["frac_bits"], out_frac_bits=params["out_frac_bits"],
                         exp_bits=params["exp_bits"])


def make_vectors(params: dict, count: int, seed: int) -> Vectors:
    inputs, directed = ptsoftmax.score_rows(params, count, seed)
    return Vectors("softmax", dict(params), inputs, reference(params, inputs), source="random",
                   note=f"{directed} directed + {count} random rows, seed {seed}")


input_spec, encode, output_beats, decode, cycles_per_beat = (
    ptsoftmax.input_spec, ptsoftmax.encode, ptsoftmax.output_beats, ptsoftmax.decode,
    ptsoftmax.cycles_per_beat)


@cocotb.test()
async def softmax_bench(dut):
    await replay(dut, sys.modules[__name__])
