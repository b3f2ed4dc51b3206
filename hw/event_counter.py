"""Event counter generator: zero-silent events back into a token's levels."""
from __future__ import annotations

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from sorbet_hw.hw.block import Block
from sorbet_hw.hw.event_encoder import EVENT_PORT, LEVEL_PORT, event_fields
from sorbet_hw.hw.plumbing import OutputRegister
from sorbet_hw.model.event_counter import PARAMS, event_levels

__all__ = ["EventCounter", "BLOCK"]

BLOCK = Block(
    "event_counter", "a token's zero-silent events counted back into its levels, channel by "
    "channel (the event design's spike counter)",
    params=PARAMS, ports={"i_stream": EVENT_PORT(In), "o_stream": LEVEL_PORT(Out)},
    reference=event_levels)


@BLOCK.generates
class EventCounter(wiring.Component):
    """Events to levels, the converse of :class:`hw.event_encoder.EventEncoder`.

    Parameters
    ----------
    width, act_bits, signed, event_kind
        As the encoder's.

    Ports
    -----
    i_stream : In(stream.Signature(event_layout(width, act_bits + 1 or 2)))
        Per token its events in channel order (a channel's unit events one after another),
        then a ``last`` beat.
    o_stream : Out(stream.Signature(signed(act_bits) or unsigned(act_bits)))
        The token's N levels, channel 0 to N - 1.

    Architecture, latency and throughput
    ------------------------------------
    No memory: since events come in channel order, one accumulator holds the channel being
    counted. An event of that channel adds into it (no output); an event of a later channel,
    or the ``last`` beat, first emits the counted channel and the silent ones before it, one
    a cycle. A token takes N + E + 1 cycles for E events with the output always ready.
    """

    def __init__(self, **params):
        p = BLOCK.check(params)
        self.width, self.act_bits, self.signed, self.event_kind = p.width, p.act_bits, p.signed, p.event_kind
        self._index_bits, self._level_bits = event_fields(p)
        super().__init__(BLOCK.signature(p))

    def elaborate(self, platform):
        m = Module()
        n, inp = self.width, self.i_stream
        ib, lb = self._index_bits, self._level_bits
        index = inp.payload[:ib]
        level = inp.payload[ib:ib + lb].as_signed()
        last = inp.payload[ib + lb]
        output = OutputRegister(m, self.o_stream)
        channel = Signal(range(n + 1))                   # the channel being counted
        count = Signal(signed(self.act_bits + 2))        # its events so far
        counted = Signal()                               # it has had an event
        current = Mux(counted, count, 0)

        with m.If(inp.valid):
            with m.If(~last & (index == channel)):       # one more event of this channel
                m.d.comb += inp.ready.eq(1)
                m.d.sync += [count.eq(current + level), counted.eq(1)]
            with m.Elif(channel == n):                   # every level out: take the `last`
                m.d.comb += inp.ready.eq(1)
                m.d.sync += channel.eq(0)
            with m.Elif(output.free):                    # the channel is complete: out with it
                output.load(current)
                m.d.sync += [channel.eq(channel + 1), counted.eq(0)]
        return m
