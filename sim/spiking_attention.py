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

from sorbet_hw.model.spiking_attention import spiking_attention
from sorbet_hw.model.vectors import Vectors
from sorbet_hw.sim.bench import replay

PORTS = ("q_stream", "k_stream", "v_stream")


def reference(params: dict, inputs: np.ndarray) -> np.ndarray:
    q, k, v = (inputs[:, i] for i in range(3))
    return spiking_attention(q, k, v, heads=params["heads"], act_bits=params["act_bits"],
                             score_left_shift=params["score_left_shift"],
                             score_frac_bits=params["score_frac_bits"],
                             out_frac_bits=params["out_frac_bits"], rounding=params["rounding"],
                             context_shift=params["context_shift"])


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
    return Vectors("spiking_attention", dict(params), inputs, reference(params, inputs),
                   source="random", note=f"{len(directed)} directed + {count} random sentences, seed {seed}")


def input_spec(params: dict) -> tuple[tuple, int, int]:
    """(shape of one vector, lowest, highest input value): a sentence's q, k, v levels."""
    return (3, params["tokens"], params["heads"] * params["head_dim"]), 0, (1 << params["act_bits"]) - 1


def encode(vectors: Vectors) -> dict[str, list[int]]:
    return {port: [int(x) for x in vectors.inputs[:, i].reshape(-1)] for i, port in enumerate(PORTS)}


def output_beats(vectors: Vectors) -> int:
    return vectors.expected.size


def decode(vectors: Vectors, beats: list[int]) -> np.ndarray:
    return np.asarray(beats, dtype=np.int64).reshape(vectors.expected.shape)


def cycles_per_beat(vectors: Vectors) -> float:
    p = vectors.params
    scores = p["heads"] * p["tokens"] ** 2 * (2 * p["steps"] + 2)
    return 2 + scores / (3 * p["tokens"] * p["heads"] * p["head_dim"])


@cocotb.test()
async def spiking_attention_bench(dut):
    await replay(dut, sys.modules[__name__])
