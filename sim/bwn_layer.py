"""Bench of the BWN layer block against :func:`model.bwn_layer.bwn_layer`.

Vectors: ``inputs[K, N]`` input levels (signed or unsigned, as ``signed_inputs``),
``expected[K, M]`` output levels, one token per vector.
"""
from __future__ import annotations

import sys

import numpy as np

import cocotb

from sorbet_hw.model.bwn_layer import bwn_layer, level_range
from sorbet_hw.sim.bench import replay, to_unsigned
from sorbet_hw.model.vectors import Vectors


def reference(params: dict, inputs: np.ndarray) -> np.ndarray:
    return bwn_layer(inputs, params["weights"], bias=params["bias"],
                     threshold_shift=params["threshold_shift"], act_bits=params["act_bits"],
                     weight_kind=params["weight_kind"], signed_inputs=bool(params["signed_inputs"]))


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
    return Vectors("bwn_layer", dict(params), inputs, reference(params, inputs), source="random",
                   note=f"5 directed + {count} random tokens, seed {seed}")


def input_spec(params: dict) -> tuple[tuple, int, int]:
    """(shape of one vector, lowest, highest input value): a token's input levels."""
    return (np.shape(params["weights"])[0],), *level_range(params["act_bits"], bool(params["signed_inputs"]))


def encode(vectors: Vectors) -> list[int]:
    """Per token N / P beats of P levels, input c*P + p in bits p*act_bits upwards."""
    a, per_beat = vectors.params["act_bits"], vectors.params["inputs_per_cycle"]
    levels = to_unsigned(vectors.inputs, a)
    beats = []
    for start in range(0, len(levels), per_beat):
        beats.append(sum(v << (p * a) for p, v in enumerate(levels[start:start + per_beat])))
    return beats


def output_beats(vectors: Vectors) -> int:
    return vectors.expected.size // vectors.params["lanes"]


def decode(vectors: Vectors, beats: list[int]) -> np.ndarray:
    a, lanes = vectors.params["act_bits"], vectors.params["lanes"]
    mask = (1 << a) - 1
    values = [(b >> (lane * a)) & mask for b in beats for lane in range(lanes)]
    return np.asarray(values, dtype=np.int64).reshape(vectors.expected.shape)


def cycles_per_beat(vectors: Vectors) -> float:
    n, m = np.shape(vectors.params["weights"])
    per_beat = vectors.params["inputs_per_cycle"]
    groups = m // vectors.params["lanes"]
    entries = n if vectors.params["skip_zeros"] else n // per_beat
    return (per_beat + groups * entries + 4) / (n // per_beat)


@cocotb.test()
async def bwn_layer_bench(dut):
    await replay(dut, sys.modules[__name__])
