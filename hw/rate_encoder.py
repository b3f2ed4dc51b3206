"""Rate encoder: activation levels to spike trains (a thermometer code over T steps)."""
from __future__ import annotations

from amaranth import Cat, Module, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from sorbet_hw.hw.block import Block, Stream
from sorbet_hw.model.rate_encoder import PARAMS, rate_encode

__all__ = ["RateEncoder", "BLOCK"]

BLOCK = Block(
    "rate_encoder", "levels to spike trains (a thermometer code over T steps)",
    params=PARAMS,
    ports={"i_stream": Stream(In, lambda p: unsigned(p.level_bits), vector=("width",)),
           "o_stream": Stream(Out, lambda p: data.ArrayLayout(1, p.width))},
    reference=rate_encode)


@BLOCK.generates
class RateEncoder(wiring.Component):
    """Turns ``width`` levels into T beats of ``width`` spikes: input j spikes at steps
    t < level_j, as :func:`model.rate_encoder.rate_encode` defines it.

    Parameters
    ----------
    width : int
        Levels per window, N.
    steps : int
        Time steps T of a window; at least the largest level, 2**level_bits - 1.
    level_bits : int
        Width of a level.

    Ports
    -----
    i_stream : In(stream.Signature(unsigned(level_bits)))
        Levels, N per window, in channel order.
    o_stream : Out(stream.Signature(N)), the layout data.ArrayLayout(1, N) flat
        T beats per window; bit j is channel j's spike.

    Latency and throughput: a window takes N cycles to collect and T to emit (N + T cycles a
    window with no stall); the first beat leaves the cycle after the last level is accepted.
    """

    def __init__(self, **params):
        p = BLOCK.check(params)
        self.width, self.steps, self.level_bits = p.width, p.steps, p.level_bits
        super().__init__(BLOCK.signature(p))

    def elaborate(self, platform):
        m = Module()
        b = self.level_bits
        # A shift register: the level accepted last enters at the top, so channel 0 ends low.
        levels = Signal(self.width * b)
        count = Signal(range(self.width))
        step = Signal(range(self.steps))
        emitting = Signal()
        m.d.comb += [
            self.i_stream.ready.eq(~emitting),
            self.o_stream.valid.eq(emitting),
            self.o_stream.payload.eq(Cat(levels.word_select(j, b) > step for j in range(self.width))),
        ]
        with m.If(self.i_stream.valid & self.i_stream.ready):
            m.d.sync += levels.eq(Cat(levels[b:], self.i_stream.payload))
            with m.If(count == self.width - 1):
                m.d.sync += [count.eq(0), emitting.eq(1)]
            with m.Else():
                m.d.sync += count.eq(count + 1)
        with m.If(self.o_stream.valid & self.o_stream.ready):
            with m.If(step == self.steps - 1):
                m.d.sync += [step.eq(0), emitting.eq(0)]
            with m.Else():
                m.d.sync += step.eq(step + 1)
        return m
