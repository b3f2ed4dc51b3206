"""Bench of the event counter against :func:`model.event_counter.event_levels`.

Vectors: ``inputs[S, N]`` a token's levels, which the declaration's event coding sends as
events (in channel order, zeros silent); ``expected[S, N]`` the same levels, one a beat.
"""
from __future__ import annotations

import sys

import cocotb

from sorbet_hw.model.vectors import Vectors
from sorbet_hw.sim.bench import reference, replay
# The encoder's configurations: the converse converter, the same parameters.
from sorbet_hw.sim.event_encoder import CONFIGURATIONS, ICARUS_ONLY, token_levels  # noqa: F401


def make_vectors(params: dict, count: int, seed: int) -> Vectors:
    inputs = token_levels(params, count, seed)
    return Vectors("event_counter", dict(params), inputs, reference("event_counter", params, inputs),
                   source="random", note=f"directed + {count} random tokens, seed {seed}")


def cycles_per_beat(vectors: Vectors) -> float:
    """A bound per input beat (an event, or a token's last beat, which brings out the
    channels before it)."""
    return 2 + vectors.params.get("width", 16)


@cocotb.test()
async def event_counter_bench(dut):
    await replay(dut, sys.modules[__name__])
