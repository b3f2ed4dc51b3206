"""Bench of the baseline LayerNorm block against :func:`model.layernorm.layernorm_fixed`.

Vectors: ``inputs[K, C]`` channel values, ``expected[K, C]`` outputs, one token per vector;
the tokens are BSPN's (:func:`sim.bspn.tokens_for`).
"""
from __future__ import annotations

import sys

import cocotb
import numpy as np

from sorbet_hw.sim import bspn
from sorbet_hw.sim.bench import reference, replay
from sorbet_hw.model.vectors import Vectors


def make_vectors(params: dict, count: int, seed: int) -> Vectors:
    inputs, directed = bspn.tokens_for(params, count, seed)
    return Vectors("layernorm", dict(params), inputs, reference("layernorm", params, inputs), source="random",
                   note=f"{directed} directed + {count} random tokens, seed {seed}")


cycles_per_beat = bspn.cycles_per_beat


# Parameter sets the test suite replays on both simulators: the default and three others.
_rng = np.random.default_rng(2024)
CONFIGURATIONS = {
    "default": {},
    "narrow-affine": dict(channels=6, in_width=6, norm_frac_bits=2, out_width=6,
                          gamma=_rng.integers(-128, 128, 6), beta=_rng.integers(-32, 32, 6)),
    "wide": dict(channels=48, in_width=16, norm_frac_bits=8, out_width=16, gamma_width=12,
                 gamma_frac_bits=8, gamma=_rng.integers(-2048, 2048, 48),
                 beta=_rng.integers(-3000, 3000, 48)),
    "two-channels": dict(channels=2, in_width=4, norm_frac_bits=0, out_width=4),
}


@cocotb.test()
async def layernorm_bench(dut):
    await replay(dut, sys.modules[__name__])
