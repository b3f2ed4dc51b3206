"""Bench of the rate encoder block against :func:`model.rate_encoder.rate_encode`.

Vectors: ``inputs[R, N]`` levels, ``expected[R, T, N]`` spikes (0/1), one window per vector.
"""
from __future__ import annotations

import sys

import numpy as np

import cocotb

from sorbet_hw.model.vectors import Vectors
from sorbet_hw.sim.bench import reference, replay


def make_vectors(params: dict, count: int, seed: int) -> Vectors:
    """Directed windows (all zero, all the largest level, a ramp), then random ones."""
    n, q_max = params["width"], (1 << params["level_bits"]) - 1
    rng = np.random.default_rng(seed)
    directed = [np.zeros(n), np.full(n, q_max), np.arange(n) % (q_max + 1)]
    inputs = np.concatenate([np.stack(directed), rng.integers(0, q_max + 1, (count, n))]).astype(np.int64)
    return Vectors("rate_encoder", dict(params), inputs, reference("rate_encoder", params, inputs), source="random",
                   note=f"{len(directed)} directed + {count} random windows, seed {seed}")


def cycles_per_beat(vectors: Vectors) -> float:
    return 2 + vectors.params["steps"] / vectors.params["width"]


# Parameter sets the test suite replays on both simulators: the default and three others.
CONFIGURATIONS = {
    "default": {},
    "one-channel-long": dict(width=1, steps=20, level_bits=4),
    "wide-binary": dict(width=48, steps=1, level_bits=1),
    "two-bit": dict(width=5, steps=3, level_bits=2),
}
# On Icarus only: a C++ build each dominates their time on Verilator.
ICARUS_ONLY = {"one-channel-long", "two-bit"}


@cocotb.test()
async def rate_encoder_bench(dut):
    await replay(dut, sys.modules[__name__])
