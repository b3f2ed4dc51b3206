"""Bench of the event-driven IF layer against :func:`model.event_if_layer.event_if_layer`.

Vectors: ``inputs[S, N]`` one token's input levels, ``expected[S, M]`` its output levels;
the declaration's event coding turns them into events (zeros send nothing) and back.
"""
from __future__ import annotations

import sys

import numpy as np

import cocotb

from sorbet_hw.model.event_if_layer import level_range
from sorbet_hw.model.vectors import Vectors
from sorbet_hw.sim.bench import reference, replay, sparse_levels


def make_vectors(params: dict, count: int, seed: int) -> Vectors:
    """Directed tokens (all silent, all at the lowest and at the highest level, one input
    alone at each end, every input on the same weight row twice in a row), then ``count``
    random tokens whose density of nonzero levels is itself random, from silent to dense."""
    n, _ = np.shape(params["weights"])
    lo, hi = level_range(params["act_bits"], params["input_signed"])
    rng = np.random.default_rng(seed)
    directed = [np.zeros(n), np.full(n, lo), np.full(n, hi)]
    for j in sorted({0, n - 1}):
        for level in (lo, hi):
            one = np.zeros(n)
            one[j] = level
            directed.append(one)
    tokens = [t.astype(np.int64) for t in directed]
    tokens += [sparse_levels(rng, n, lo, hi) for _ in range(count)]
    inputs = np.stack(tokens)
    return Vectors("event_if_layer", dict(params), inputs, reference("event_if_layer", params, inputs),
                   source="random", note=f"{len(directed)} directed + {count} random tokens, seed {seed}")


def cycles_per_beat(vectors: Vectors) -> float:
    """A bound per input beat: an event costs 1 + G cycles; a pass 4 G more, and a token's
    last one its M outputs."""
    m = np.shape(vectors.params["weights"])[1]
    groups = m // vectors.params["lanes"]
    tile = vectors.params.get("tokens_per_tile", 1)    # a tile's store and read-out: 2 G a token
    return 2 + groups * (1 + 2 * (tile > 1)) + (6 * groups + m) / min(vectors.params.get("batch") or 1, 1 + np.count_nonzero(
        vectors.inputs) / len(vectors.inputs))


# The configurations the test suite replays on both simulators: one pass a token (the
# default: batch = inputs, one lane group), and several passes a token (a batch of one or five
# events: each group written back and read again, the membrane RAM's read-after-write).
_rng = np.random.default_rng(2026)
CONFIGURATIONS = {
    "default": {},
    "two-groups-batch-1": dict(inputs=9, outputs=4, lanes=2, batch=1, seed=3, threshold_shift=1,
                               bias=[3, -2, 0, 9]),
    "ternary-unsigned-in": dict(inputs=20, outputs=6, lanes=2, seed=5, weight_kind="ternary",
                                input_signed=False, output_signed=True, threshold_shift=3,
                                bias=[5, -30, 0, 40, -40, 7]),
    "unit-events-relu-batch-5": dict(inputs=12, outputs=9, lanes=3, batch=5, seed=8,
                                     event_kind="unit", output_signed=False, threshold_shift=2,
                                     bias=_rng.integers(-20, 20, 9)),
    # Tiles of 6 tokens, unit events (a row's run mixes tokens and repeats); 1,007 tokens
    # leave a partial last tile.
    "tiles-6-unit": dict(inputs=10, outputs=6, lanes=2, seed=4, event_kind="unit",
                         threshold_shift=2, tokens_per_tile=6, bias=_rng.integers(-20, 20, 6)),
}


@cocotb.test()
async def event_if_layer_bench(dut):
    await replay(dut, sys.modules[__name__])
