"""Bench of the MAC layer block against :func:`model.mac_layer.mac_layer`.

Vectors: ``inputs[S, N]`` signed activations, ``expected[S, M]`` requantized outputs.
"""
from __future__ import annotations

import sys

import numpy as np

import cocotb

from sorbet_hw.model.mac_layer import mac_layer
from sorbet_hw.model.params import signed_range
from sorbet_hw.sim.bench import from_unsigned, pack_bits, replay, to_unsigned, unpack_bits
from sorbet_hw.model.vectors import Vectors


def reference(params: dict, inputs: np.ndarray) -> np.ndarray:
    return mac_layer(inputs, params["weights"], bias=params["bias"], shift=params["shift"],
                     act_width=params["act_width"], weight_width=params["weight_width"],
                     out_width=params["out_width"])


def make_vectors(params: dict, count: int, seed: int) -> Vectors:
    """Directed vectors (zeros, all minimum, all maximum), then random ones of random spread."""
    n, _ = np.shape(params["weights"])
    lo, hi = signed_range(params["act_width"])
    rng = np.random.default_rng(seed)
    rows = [np.zeros(n), np.full(n, lo), np.full(n, hi)]
    for _ in range(count):
        spread = rng.integers(1, hi + 2)
        rows.append(np.clip(rng.integers(-spread, spread + 1, size=n), lo, hi))
    inputs = np.stack(rows).astype(np.int64)
    return Vectors("mac_layer", dict(params), inputs, reference(params, inputs), source="random",
                   note=f"3 directed + {count} random vectors, seed {seed}")


def input_spec(params: dict) -> tuple[tuple, int, int]:
    """(shape of one vector, lowest, highest input value): a token's activations."""
    return (np.shape(params["weights"])[0],), *signed_range(params["act_width"])


def _words(values: np.ndarray, width: int) -> np.ndarray:
    """Rows of signed values -> bit rows (element j in bits j*width upwards)."""
    u = np.asarray(to_unsigned(values.reshape(-1), width), dtype=np.int64).reshape(values.shape)
    bits = (u[..., None] >> np.arange(width)) & 1
    return bits.reshape(*values.shape[:-1], -1)


def encode(vectors: Vectors) -> list[int]:
    return pack_bits(_words(vectors.inputs, vectors.params["act_width"]))


def output_beats(vectors: Vectors) -> int:
    return len(vectors.expected)


def decode(vectors: Vectors, beats: list[int]) -> np.ndarray:
    ow, m = vectors.params["out_width"], vectors.expected.shape[-1]
    bits = unpack_bits(beats, m * ow).reshape(-1, m, ow)
    u = (bits << np.arange(ow)).sum(-1)
    return np.asarray(from_unsigned(u.reshape(-1), ow)).reshape(vectors.expected.shape)


def cycles_per_beat(vectors: Vectors) -> float:
    n, m = np.shape(vectors.params["weights"])
    groups = m // vectors.params["lanes"]
    return 1 + groups * (n // vectors.params["inputs_per_cycle"] + 1)


@cocotb.test()
async def mac_layer_bench(dut):
    await replay(dut, sys.modules[__name__])
