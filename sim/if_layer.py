"""Bench of the IF layer block against :func:`model.if_layer.if_layer`.

Vectors: ``inputs[S, T, N]`` input spikes (0/1), ``expected[S, T, M]`` output spikes, one
window of T steps per vector.
"""
from __future__ import annotations

import sys

import numpy as np

import cocotb

from sorbet_hw.model.if_layer import if_layer
from sorbet_hw.sim.bench import pack_bits, replay, unpack_bits
from sorbet_hw.model.vectors import Vectors


def reference(params: dict, inputs: np.ndarray) -> np.ndarray:
    return if_layer(inputs, params["weights"], bias=params["bias"],
                    threshold_shift=params["threshold_shift"], act_bits=params["act_bits"],
                    weight_kind=params["weight_kind"])


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
    return Vectors("if_layer", dict(params), inputs, reference(params, inputs), source="random",
                   note=f"{len(directed)} directed + {count} random windows, seed {seed}")


def input_spec(params: dict) -> tuple[tuple, int, int]:
    """(shape of one vector, lowest, highest input value): a window of spikes."""
    return (params["steps"], np.shape(params["weights"])[0]), 0, 1


def encode(vectors: Vectors) -> list[int]:
    return pack_bits(vectors.inputs)


def output_beats(vectors: Vectors) -> int:
    return int(np.prod(vectors.expected.shape[:-1]))


def decode(vectors: Vectors, beats: list[int]) -> np.ndarray:
    return unpack_bits(beats, vectors.expected.shape[-1]).reshape(vectors.expected.shape)


def cycles_per_beat(vectors: Vectors) -> float:
    n, m = np.shape(vectors.params["weights"])
    groups = m // vectors.params["lanes"]
    return 2 + groups * (n // vectors.params["inputs_per_cycle"] + 1)


@cocotb.test()
async def if_layer_bench(dut):
    await replay(dut, sys.modules[__name__])
