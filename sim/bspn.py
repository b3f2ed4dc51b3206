"""Bench of the BSPN block against :func:`model.bspn.bspn`.

Vectors: ``inputs[K, C]`` integer channel values, ``expected[K, C]`` normalized outputs, one
token per vector.
"""
from __future__ import annotations

import sys

import numpy as np

import cocotb

from sorbet_hw.model.params import signed_range
from sorbet_hw.sim.bench import reference, replay
from sorbet_hw.model.vectors import Vectors


def make_vectors(params: dict, count: int, seed: int) -> Vectors:
    """Directed edge cases, then ``count`` random tokens with scales spread over the range."""
    inputs, directed = tokens_for(params, count, seed)
    return Vectors("bspn", dict(params), inputs, reference("bspn", params, inputs), source="random",
                   note=f"{directed} directed + {count} random tokens, seed {seed}")


def tokens_for(params: dict, count: int, seed: int) -> tuple[np.ndarray, int]:
    """Tokens for any norm bench: edge cases, then random ones; (tokens, directed count)."""
    c, width = params["channels"], params["in_width"]
    lo, hi = signed_range(width)
    rng = np.random.default_rng(seed)
    directed = [
        np.zeros(c),                                   # zero token: shift 0
        np.full(c, hi), np.full(c, lo),                # saturated high / low
        np.where(np.arange(c) % 2, hi, lo),            # alternating extremes
        np.r_[lo, np.zeros(c - 1)],                    # one large value
        np.full(c, 1), np.full(c, -1),                 # mean |x| = 1: the shift threshold
        np.full(c, 2), np.full(c, 3),                  # just past it
        np.arange(c) - c // 2,                         # a ramp through zero
    ]
    tokens = [np.clip(np.asarray(t, dtype=np.int64), lo, hi) for t in directed]
    for _ in range(count):
        magnitude = 1 << int(rng.integers(0, width))   # every shift value gets exercised
        token = rng.integers(-magnitude, magnitude + 1, size=c)
        if rng.random() < 0.2:
            token[rng.random(c) < 0.5] = 0             # sparse tokens
        tokens.append(np.clip(token, lo, hi))
    return np.stack(tokens).astype(np.int64), len(directed)


def cycles_per_beat(vectors: Vectors) -> float:
    return 1.0


# Parameter sets the test suite replays on both simulators: the default and three others.
_rng = np.random.default_rng(2024)
CONFIGURATIONS = {
    "default": {},
    "narrow-affine": dict(channels=6, groups=3, in_width=6, norm_frac_bits=0, out_width=4,
                          gamma_shift=_rng.integers(-3, 4, 6), beta=_rng.integers(-8, 8, 6)),
    "one-group": dict(channels=48, groups=1, in_width=16, norm_frac_bits=8, out_width=16,
                      gamma_shift=_rng.integers(-8, 9, 48), beta=_rng.integers(-300, 300, 48)),
    "max-widths": dict(channels=4, groups=2, in_width=32, norm_frac_bits=16, out_width=32,
                       gamma_shift=[8, -8, 0, 3], beta=[-(1 << 31), (1 << 31) - 1, 0, 5]),
}


@cocotb.test()
async def bspn_bench(dut):
    await replay(dut, sys.modules[__name__])
