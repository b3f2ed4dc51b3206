"""Bench of the spike counter block against :func:`model.spike_counter.count_spikes`.

Vectors: ``inputs[R, T, N]`` spikes (0/1), at most 2**level_bits - 1 a train, ``expected[R, N]``
counts, one window per vector.
"""
from __future__ import annotations

import sys

import numpy as np

import cocotb

from sorbet_hw.model.vectors import Vectors
from sorbet_hw.sim.bench import reference, replay


def make_vectors(params: dict, count: int, seed: int) -> Vectors:
    """Directed windows (silent; every train at its largest count), then random trains: each
    keeps up to 2**level_bits - 1 of its spikes, at random steps."""
    n, t, q_max = params["width"], params["steps"], (1 << params["level_bits"]) - 1
    rng = np.random.default_rng(seed)
    full = np.zeros((t, n), np.int64)
    full[:min(q_max, t)] = 1
    windows = [np.zeros((t, n), np.int64), full]
    for _ in range(count):
        w = (rng.random((t, n)) < rng.random()).astype(np.int64)
        w[np.cumsum(w, axis=0) > q_max] = 0
        windows.append(w)
    inputs = np.stack(windows)
    return Vectors("spike_counter", dict(params), inputs, reference("spike_counter", params, inputs), source="random",
                   note=f"2 directed + {count} random windows, seed {seed}")


def cycles_per_beat(vectors: Vectors) -> float:
    return 2 + vectors.params["width"] / vectors.params["steps"]


# Parameter sets the test suite replays on both simulators: the default and three others.
CONFIGURATIONS = {
    "default": {},
    "one-channel-long": dict(width=1, steps=20, level_bits=4),
    "wide-binary": dict(width=48, steps=1, level_bits=1),
    "short-counters": dict(width=5, steps=9, level_bits=2),
}
# On Icarus only: a C++ build each dominates their time on Verilator.
ICARUS_ONLY = {"one-channel-long", "short-counters"}


@cocotb.test()
async def spike_counter_bench(dut):
    await replay(dut, sys.modules[__name__])
