"""Bench of the encoder layer against :func:`model.encoder_layer.encoder_layer` (the integer
student's own layer).

Vectors: ``inputs[S, tokens, H]`` the residual stream entering the layer, ``expected[S,
tokens, H]`` the stream leaving it, one sentence per vector.
"""
from __future__ import annotations

import sys

import cocotb

from sorbet_hw.model.encoder_layer import demo_inputs
from sorbet_hw.sim.bench import reference, replay
from sorbet_hw.model.vectors import Vectors


def make_vectors(params: dict, count: int, seed: int) -> Vectors:
    """``count`` sentences of random residual values over the whole input range."""
    inputs = demo_inputs(params, count, seed)
    return Vectors("encoder_layer", dict(params), inputs, reference("encoder_layer", params, inputs),
                   source="random", note=f"{count} random sentences, seed {seed}")


def cycles_per_beat(vectors: Vectors) -> float:
    from sorbet_hw.hw.encoder_layer import EncoderLayer
    layer = EncoderLayer(**vectors.params)
    return 2.0 * layer.cycles_estimate() / (layer.tokens * layer.hidden)


@cocotb.test()
async def encoder_layer_bench(dut):
    await replay(dut, sys.modules[__name__])
