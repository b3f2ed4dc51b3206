"""Bench of the baseline LayerNorm block against :func:`model.layernorm.layernorm_fixed`.

Vectors: ``inputs[K, C]`` channel values, ``expected[K, C]`` outputs, one token per vector;
the tokens are BSPN's (:func:`sim.bspn.tokens_for`).
"""
from __future__ import annotations

import sys

import numpy as np

import cocotb

from sorbet_hw.model.layernorm import layernorm_fixed
from sorbet_hw.sim import bspn
from sorbet_hw.sim.bench import replay
from sorbet_hw.model.vectors import Vectors


def reference(params: dict, inputs: np.ndarray) -> np.ndarray:
    return layernorm_fixed(inputs, gamma=params["gamma"], beta=params["beta"],
                           in_width=params["in_width"], norm_frac_bits=params["norm_frac_bits"],
                           out_width=params["out_width"], gamma_width=params["gamma_width"],
                           gamma_frac_bits=params["gamma_frac_bits"])


def make_vectors(params: dict, count: int, seed: int) -> Vectors:
    inputs, directed = bspn.tokens_for(params, count, seed)
    return Vectors("layernorm", dict(params), inputs, reference(params, inputs), source="random",
                   note=f"{directed} directed + {count} random tokens, seed {seed}")


input_spec, encode, output_beats, decode, cycles_per_beat = (
    bspn.input_spec, bspn.encode, bspn.output_beats, bspn.decode, bspn.cycles_per_beat)


@cocotb.test()
async def layernorm_bench(dut):
    await replay(dut, sys.modules[__name__])
