"""Bench of the event-driven attention block against :func:`model.event_attention.event_attention`.

Vectors: ``inputs[S, 3, n, H]`` a sentence's signed query, key and value levels (H = heads x
head dimension), ``expected[S, n, H]`` its signed context levels, one sentence per vector.
The declaration's event coding turns each token into its events (zeros send nothing) on
``q_stream``, ``k_stream`` and ``v_stream``, each with its own random stalls, and the
context's events back into levels.
"""
from __future__ import annotations

import sys

import numpy as np

import cocotb

from sorbet_hw.model.event_if_layer import level_range
from sorbet_hw.model.vectors import Vectors
from sorbet_hw.sim.bench import reference, replay, sparse_levels


def make_vectors(params: dict, count: int, seed: int) -> Vectors:
    """Directed sentences (silent; every level at its lowest, at its highest; the two
    extremes at random), then ``count`` random ones whose density of nonzero levels is
    itself random, from silent to dense."""
    shape = (3, params["tokens"], params["heads"] * params["head_dim"])
    lo, hi = level_range(params["act_bits"], True)
    rng = np.random.default_rng(seed)
    directed = [np.zeros(shape), np.full(shape, lo), np.full(shape, hi), rng.choice([lo, hi], size=shape)]
    sentences = [sparse_levels(rng, shape, lo, hi) for _ in range(count)]
    inputs = np.stack(directed + sentences).astype(np.int64)
    return Vectors("event_attention", dict(params), inputs, reference("event_attention", params, inputs),
                   source="random", note=f"{len(directed)} directed + {count} random sentences, seed {seed}")


def cycles_per_beat(vectors: Vectors) -> float:
    """A bound per input beat (a beat is at least a token's ``last``): per row of scores
    3 + n cycles and |q| + 1 per event, per row of contexts 3 + n and d events out."""
    p = vectors.params
    n, heads, d = p["tokens"], p["heads"], p["head_dim"]
    off = 1 << (p["act_bits"] - 1)
    rows = n * heads
    per_sentence = n * heads * d + rows * (6 + 2 * n + (off + 1) * d + d) + heads * n
    return 2 + per_sentence / (3 * n)


# Parameter sets the test suite replays on both simulators: the default and three others.
CONFIGURATIONS = {
    "default": {},
    "one-head-nearest": dict(heads=1, tokens=5, head_dim=4, rounding="nearest", score_left_shift=1,
                             context_shift=6),
    "two-bit-short": dict(heads=3, tokens=2, head_dim=2, act_bits=2, score_frac_bits=0,
                          out_frac_bits=4, context_shift=2),
    "one-token": dict(heads=2, tokens=1, head_dim=3),
}
# On Icarus only: a C++ build each dominates their time on Verilator.
ICARUS_ONLY = {"one-token", "two-bit-short"}
# A vector is a whole sentence (thousands of cycles): fewer vectors than elsewhere.
VECTORS = {"default": 40, "*": 15}


@cocotb.test()
async def event_attention_bench(dut):
    await replay(dut, sys.modules[__name__])
