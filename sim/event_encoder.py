"""Bench of the event encoder against :func:`model.event_encoder.event_levels`.

Vectors: ``inputs[S, N]`` a token's levels, ``expected[S, N]`` the same levels, which the
declaration's event coding turns into the events expected (in channel order, zeros silent)
and back, exactly.
"""
from __future__ import annotations

import sys

import numpy as np

import cocotb

from sorbet_hw.model.event_if_layer import level_range
from sorbet_hw.model.vectors import Vectors
from sorbet_hw.sim.bench import reference, replay, sparse_levels


def token_levels(params: dict, count: int, seed: int) -> np.ndarray:
    """Directed tokens (silent, all at the lowest and at the highest level, one channel alone
    at each end), then ``count`` random ones whose density of nonzero levels is itself random.
    Shared with the counter's bench (:mod:`sim.event_counter`)."""
    n = params["width"]
    lo, hi = level_range(params["act_bits"], params["signed"])
    rng = np.random.default_rng(seed)
    tokens = [np.zeros(n), np.full(n, lo), np.full(n, hi)]
    for j in sorted({0, n - 1}):
        for level in {lo, hi} - {0}:
            one = np.zeros(n)
            one[j] = level
            tokens.append(one)
    tokens += [sparse_levels(rng, n, lo, hi) for _ in range(count)]
    return np.stack(tokens).astype(np.int64)


def make_vectors(params: dict, count: int, seed: int) -> Vectors:
    inputs = token_levels(params, count, seed)
    return Vectors("event_encoder", dict(params), inputs, reference("event_encoder", params, inputs),
                   source="random", note=f"directed + {count} random tokens, seed {seed}")


def cycles_per_beat(vectors: Vectors) -> float:
    """A bound per input level: one cycle, |l| for unit events, and the token's last beat."""
    p = vectors.params
    unit = p.get("event_kind", "graded") == "unit"
    return 2 + (1 << p.get("act_bits", 4) if unit else 0) + 1 / p.get("width", 16)


# The configurations the test suite replays on both simulators.
CONFIGURATIONS = {
    "default": {},
    "one-channel": dict(width=1),
    "unit-unsigned": dict(width=7, event_kind="unit", signed=False),
    "unit-one-bit": dict(width=5, act_bits=1, event_kind="unit"),
}
ICARUS_ONLY = {"one-channel", "unit-one-bit"}


@cocotb.test()
async def event_encoder_bench(dut):
    await replay(dut, sys.modules[__name__])
