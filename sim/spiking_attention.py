"""Bench of the spiking attention block against :func:`model.spiking_attention.spiking_attention`.

Vectors: ``inputs[S, 3, n, H]`` a sentence's query, key and value levels (H = heads x head
dimension), ``expected[S, n, H]`` its context levels, one sentence per vector. The three
inputs go to their own stream ports (``q_stream``, ``k_stream``, ``v_stream``), each with
its own random stalls.
"""
from __future__ import annotations

import sys

import numpy as np

import cocotb

from sorbet_hw.model.vectors import Vectors
from sorbet_hw.sim.bench import reference, replay

def make_vectors(params: dict, count: int, seed: int) -> Vectors:
    """Directed sentences (every level at the offset: zero scores; every level at its
    extremes), then random ones."""
    shape = (3, params["tokens"], params["heads"] * params["head_dim"])
    q_max = (1 << params["act_bits"]) - 1
    rng = np.random.default_rng(seed)
    directed = [np.full(shape, 1 << (params["act_bits"] - 1)), np.full(shape, q_max),
                rng.choice([0, q_max], size=shape)]
    inputs = np.concatenate([np.stack(directed), rng.integers(0, q_max + 1, (count, *shape))])
    inputs = inputs.astype(np.int64)
    return Vectors("spiking_attention", dict(params), inputs, reference("spiking_attention", params, inputs),
                   source="random", note=f"{len(directed)} directed + {count} random sentences, seed {seed}")


def cycles_per_beat(vectors: Vectors) -> float:
    p = vectors.params
    scores = p["heads"] * p["tokens"] ** 2 * (2 * p["steps"] + 2)
    return 2 + scores / (3 * p["tokens"] * p["heads"] * p["head_dim"])


# Parameter sets the test suite replays on both simulators: the default and three others.
CONFIGURATIONS = {
    "default": {},
    "one-head-nearest": dict(heads=1, tokens=5, head_dim=4, rounding="nearest", score_left_shift=1,
                             context_shift=6),
    "two-bit-short": dict(heads=3, tokens=2, head_dim=2, act_bits=2, steps=3, score_frac_bits=0,
                          out_frac_bits=4, context_shift=2),
    "one-token": dict(heads=2, tokens=1, head_dim=3, steps=20),
}
# On Icarus only: a C++ build each dominates their time on Verilator.
ICARUS_ONLY = {"one-token", "two-bit-short"}
# A vector is a whole sentence (thousands of cycles): fewer vectors than elsewhere.
VECTORS = {"default": 40, "*": 15}


@cocotb.test()
async def spiking_attention_bench(dut):
    await replay(dut, sys.modules[__name__])
