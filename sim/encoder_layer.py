"""Bench of the encoder layer against :func:`model.encoder_layer.encoder_layer` (the integer
student's own layer).

Vectors: ``inputs[S, tokens, H]`` the residual stream entering the layer, ``expected[S,
tokens, H]`` the stream leaving it, one sentence per vector.
"""
from __future__ import annotations

import sys

import numpy as np

import cocotb

from sorbet_hw.model.encoder_layer import demo_inputs, encoder_layer
from sorbet_hw.sim.bench import from_unsigned, replay, to_unsigned
from sorbet_hw.model.vectors import Vectors


def reference(params: dict, inputs: np.ndarray) -> np.ndarray:
    return encoder_layer(inputs, params)


def make_vectors(params: dict, count: int, seed: int) -> Vectors:
    """``count`` sentences of random residual values over the whole input range."""
    inputs = demo_inputs(params, count, seed)
    return Vectors("encoder_layer", dict(params), inputs, reference(params, inputs),
                   source="random", note=f"{count} random sentences, seed {seed}")


def input_spec(params: dict) -> tuple[tuple, int, int]:
    """(shape of one vector, lowest, highest input value): a sentence's residual stream."""
    width = int(params["norm_out_width"])
    return ((int(params["tokens"]), np.shape(params["query_weights"])[0]),
            -(1 << (width - 1)), (1 << (width - 1)) - 1)


def encode(vectors: Vectors) -> list[int]:
    return to_unsigned(vectors.inputs, vectors.params["norm_out_width"])


def output_beats(vectors: Vectors) -> int:
    return vectors.expected.size


def decode(vectors: Vectors, beats: list[int]) -> np.ndarray:
    return from_unsigned(beats, vectors.params["norm_out_width"]).reshape(vectors.expected.shape)


def cycles_per_beat(vectors: Vectors) -> float:
    from sorbet_hw.hw.encoder_layer import EncoderLayer
    layer = EncoderLayer(**vectors.params)
    return 2.0 * layer.cycles_estimate() / (layer.tokens * layer.hidden)


@cocotb.test()
async def encoder_layer_bench(dut):
    await replay(dut, sys.modules[__name__])
