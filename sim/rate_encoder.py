"""Bench of the rate encoder block against :func:`model.rate_encoder.rate_encode`.

Vectors: ``inputs[R, N]`` levels, ``expected[R, T, N]`` spikes (0/1), one window per vector.
"""
from __future__ import annotations

import sys

import numpy as np

import cocotb

from sorbet_hw.model.rate_encoder import rate_encode
from sorbet_hw.model.vectors import Vectors
from sorbet_hw.sim.bench import replay, unpack_bits


def reference(params: dict, inputs: np.ndarray) -> np.ndarray:
    return rate_encode(inputs, params["steps"])


def make_vectors(params: dict, count: int, seed: int) -> Vectors:
    """Directed windows (all zero, all the largest level, a ramp), then random ones."""
    n, q_max = params["width"], (1 << params["level_bits"]) - 1
    rng = np.random.default_rng(seed)
    directed = [np.zeros(n), np.full(n, q_max), np.arange(n) % (q_max + 1)]
    inputs = np.concatenate([np.stack(directed), rng.integers(0, q_max + 1, (count, n))]).astype(np.int64)
    return Vectors("rate_encoder", dict(params), inputs, reference(params, inputs), source="random",
                   note=f"{len(directed)} directed + {count} random windows, seed {seed}")


def input_spec(params: dict) -> tuple[tuple, int, int]:
    """(shape of one vector, lowest, highest input value): a window's levels."""
    return (params["width"],), 0, (1 << params["level_bits"]) - 1


def encode(vectors: Vectors) -> list[int]:
    return [int(v) for v in vectors.inputs.reshape(-1)]


def output_beats(vectors: Vectors) -> int:
    return int(np.prod(vectors.expected.shape[:-1]))


def decode(vectors: Vectors, beats: list[int]) -> np.ndarray:
    return unpack_bits(beats, vectors.expected.shape[-1]).reshape(vectors.expected.shape)


def cycles_per_beat(vectors: Vectors) -> float:
    return 2 + vectors.params["steps"] / vectors.params["width"]


@cocotb.test()
async def rate_encoder_bench(dut):
    await replay(dut, sys.modules[__name__])
