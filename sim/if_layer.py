"""Bench of the IF layer block against :func:`model.if_layer.if_layer`.

Vectors: ``inputs[S, T, N]`` input spikes (0/1), ``expected[S, T, M]`` output spikes, one
window of T steps per vector.
"""
from __future__ import annotations

import sys

import numpy as np

import cocotb

from sorbet_hw.sim.bench import reference, replay
from sorbet_hw.model.vectors import Vectors


def make_vectors(params: dict, count: int, seed: int) -> Vectors:
    """Directed windows (silent, saturated, one input), then ``count`` random windows whose
    spike density is itself random, so that every output level 0 .. q_max occurs."""
    n, _ = np.shape(params["weights"])
    t = params["steps"]
    rng = np.random.default_rng(seed)
    directed = [np.zeros((t, n)), np.ones((t, n))]
    for j in sorted({0, n - 1}):
        one = np.zeros((t, n))
        one[:, j] = 1
        directed.append(one)
    windows = [w.astype(np.int64) for w in directed]
    for _ in range(count):
        density = rng.random(n) if rng.random() < 0.5 else np.full(n, rng.random())
        windows.append((rng.random((t, n)) < density).astype(np.int64))
    inputs = np.stack(windows)
    return Vectors("if_layer", dict(params), inputs, reference("if_layer", params, inputs), source="random",
                   note=f"{len(directed)} directed + {count} random windows, seed {seed}")


def cycles_per_beat(vectors: Vectors) -> float:
    n, m = np.shape(vectors.params["weights"])
    groups = m // vectors.params["lanes"]
    return 2 + groups * (n // vectors.params["inputs_per_cycle"] + 1)


# Parameter sets the test suite replays on both simulators: the default and three others.
_rng = np.random.default_rng(2024)
CONFIGURATIONS = {
    "default": {},
    "ternary-lanes": dict(inputs=12, outputs=6, lanes=2, inputs_per_cycle=3, seed=5,
                          weight_kind="ternary", threshold_shift=2,
                          bias=[5, -3, 0, 40, -40, 7]),
    "serial-short": dict(inputs=5, outputs=3, steps=7, act_bits=2, lanes=1,
                         inputs_per_cycle=1, threshold_shift=1, seed=7),
    "wide-bias": dict(inputs=64, outputs=8, inputs_per_cycle=16, lanes=4, threshold_shift=3,
                      seed=9, bias=_rng.integers(-200, 200, 8)),
}


@cocotb.test()
async def if_layer_bench(dut):
    await replay(dut, sys.modules[__name__])
