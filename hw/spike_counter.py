"""Spike counter: spike trains back to activation levels."""
from __future__ import annotations

from amaranth import Cat, Const, Module, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from sorbet_hw.hw.block import Block, Stream
from sorbet_hw.model.spike_counter import PARAMS, count_spikes

__all__ = ["SpikeCounter", "BLOCK"]

BLOCK = Block(
    "spike_counter", "spike trains back to levels: each train's spikes over a window",
    params=PARAMS,
    ports={"i_stream": Stream(In, lambda p: data.ArrayLayout(1, p.width), vector=("steps", "width")),
           "o_stream": Stream(Out, lambda p: unsigned(p.level_bits))},
    reference=count_spikes)


@BLOCK.generates
class SpikeCounter(wiring.Component):
    """Counts each of ``width`` spike trains over a window of T beats and emits the counts:
    the levels the Average-IF neurons that sent them encode, as
    :func:`model.spike_counter.count_spikes` defines it.

    Parameters
    ----------
    width : int
        Spike trains, N.
    steps : int
        Beats T per window.
    level_bits : int
        Width of a count; a train carries at most 2**level_bits - 1 spikes a window (an IF
        neuron fires at most that often), so the counters never wrap.

    Ports
    -----
    i_stream : In(stream.Signature(N)), the layout data.ArrayLayout(1, N) flat
        T beats per window; bit j is train j's spike.
    o_stream : Out(stream.Signature(unsigned(level_bits)))
        The N counts of a window, in channel order.

    Latency and throughput: T cycles to count and N to emit a window; the first count leaves
    the cycle after the window's last beat is accepted.
    """

    def __init__(self, **params):
        p = BLOCK.check(params)
        self.width, self.steps, self.level_bits = p.width, p.steps, p.level_bits
        super().__init__(BLOCK.signature(p))

    def elaborate(self, platform):
        m = Module()
        b = self.level_bits
        counts = Signal(self.width * b)
        step = Signal(range(self.steps))
        channel = Signal(range(self.width))
        emitting = Signal()
        m.d.comb += [
            self.i_stream.ready.eq(~emitting),
            self.o_stream.valid.eq(emitting),
            self.o_stream.payload.eq(counts[:b]),
        ]
        with m.If(self.i_stream.valid & self.i_stream.ready):
            m.d.sync += counts.eq(Cat((counts.word_select(j, b) + self.i_stream.payload[j])[:b]
                                      for j in range(self.width)))
            with m.If(step == self.steps - 1):
                m.d.sync += [step.eq(0), emitting.eq(1)]
            with m.Else():
                m.d.sync += step.eq(step + 1)
        # Emitting rotates the counts out at the bottom; zeros come in, so the window after
        # starts from zero with no clearing cycle.
        with m.If(self.o_stream.valid & self.o_stream.ready):
            m.d.sync += counts.eq(Cat(counts[b:], Const(0, b)))
            with m.If(channel == self.width - 1):
                m.d.sync += [channel.eq(0), emitting.eq(0)]
            with m.Else():
                m.d.sync += channel.eq(channel + 1)
        return m
