"""Bench of the BWN layer block against :func:`model.bwn_layer.bwn_layer`.

Vectors: ``inputs[K, N]`` input levels (signed or unsigned, as ``signed_inputs``),
``expected[K, M]`` output levels, one token per vector.
"""
from __future__ import annotations

import sys

import numpy as np

import cocotb

from sorbet_hw.model.bwn_layer import level_range
from sorbet_hw.sim.bench import reference, replay
from sorbet_hw.model.vectors import Vectors


def make_vectors(params: dict, count: int, seed: int) -> Vectors:
    """Directed tokens (all zero, all minimum, all maximum, one input, alternating), then
    ``count`` random tokens whose density of nonzero levels is itself random, so that the
    zero-skipping front end sees empty, sparse and full beats."""
    n, _ = np.shape(params["weights"])
    lo, hi = level_range(params["act_bits"], bool(params["signed_inputs"]))
    rng = np.random.default_rng(seed)
    one = np.zeros(n)
    one[n - 1] = hi
    rows = [np.zeros(n), np.full(n, lo), np.full(n, hi), one, np.where(np.arange(n) % 2, lo, hi)]
    for _ in range(count):
        levels = rng.integers(lo, hi + 1, size=n)
        levels[rng.random(n) < rng.choice([0.0, 0.5, 0.9, 1.0])] = 0
        rows.append(levels)
    inputs = np.stack(rows).astype(np.int64)
    return Vectors("bwn_layer", dict(params), inputs, reference("bwn_layer", params, inputs), source="random",
                   note=f"5 directed + {count} random tokens, seed {seed}")


def cycles_per_beat(vectors: Vectors) -> float:
    n, m = np.shape(vectors.params["weights"])
    per_beat = vectors.params["inputs_per_cycle"]
    groups = m // vectors.params["lanes"]
    entries = n if vectors.params["skip_zeros"] else n // per_beat
    # A tile's read-out adds G beats a token.
    return (per_beat + groups * (entries + 1) + 4) / (n // per_beat)


# Parameter sets the test suite replays on both simulators: the default and three others.
_rng = np.random.default_rng(2024)
CONFIGURATIONS = {
    "default": {},
    "skip-ternary": dict(inputs=12, outputs=6, lanes=2, inputs_per_cycle=3, seed=5,
                         weight_kind="ternary", threshold_shift=2, skip_zeros=True,
                         bias=[5, -3, 0, 40, -40, 7]),
    "unsigned-serial": dict(inputs=5, outputs=3, act_bits=2, lanes=1, inputs_per_cycle=1,
                            threshold_shift=1, signed_inputs=False, seed=7),
    "skip-wide-bias": dict(inputs=64, outputs=8, inputs_per_cycle=16, lanes=4, threshold_shift=3,
                           skip_zeros=True, seed=9, bias=_rng.integers(-200, 200, 8)),
    # Tiles of 7 tokens: each weight word applied to 7 accumulator banks; 1,005 tokens leave
    # a partial last tile, closed by its `last` beat.
    "tiles-7-ternary": dict(inputs=12, outputs=6, lanes=2, inputs_per_cycle=3, seed=5,
                            weight_kind="ternary", threshold_shift=2, tokens_per_tile=7,
                            bias=[5, -3, 0, 40, -40, 7]),
}


@cocotb.test()
async def bwn_layer_bench(dut):
    await replay(dut, sys.modules[__name__])
