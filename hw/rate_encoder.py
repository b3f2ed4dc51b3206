"""Rate encoder: activation levels to spike trains (a thermometer code over T steps)."""
from __future__ import annotations

from amaranth import Cat, Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from sorbet_hw.model.rate_encoder import check_rate_params

__all__ = ["RateEncoder"]


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
    o_stream : Out(stream.Signature(N))
        T beats per window; bit j is channel j's spike.

    Latency and throughput: a window takes N cycles to collect and T to emit (N + T cycles a
    window with no stall); the first beat leaves the cycle after the last level is accepted.
    """

    def __init__(self, *, width: int = 16, steps: int = 16, level_bits: int = 4):
        check_rate_params(width=width, steps=steps, level_bits=level_bits)
        self.width, self.steps, self.level_bits = width, steps, level_bits
        super().__init__({
            "i_stream": In(stream.Signature(unsigned(level_bits))),
            "o_stream": Out(stream.Signature(width)),
        })

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
