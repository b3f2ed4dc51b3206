"""Event encoder generator: a token's levels as zero-silent events."""
from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from sorbet_hw.hw.block import Block, Stream
from sorbet_hw.hw.events import EventCoding, event_layout
from sorbet_hw.hw.plumbing import OutputRegister, wrapped_increment
from sorbet_hw.model.event_encoder import PARAMS, event_levels
from sorbet_hw.model.event_if_layer import level_range

__all__ = ["EventEncoder", "BLOCK", "LEVEL_PORT", "EVENT_PORT"]


def event_level_bits(p) -> int:
    """An event's level field: +-1 (unit), or any level, signed or not (graded)."""
    return 2 if p.event_kind == "unit" else p.act_bits + 1


def event_fields(p) -> tuple[int, int]:
    """(index bits, level bits) of the converters' events."""
    layout = event_layout(p.width, event_level_bits(p))
    return layout["index"].width, layout["level"].width


# The two sides of the converters, shared with `hw.event_counter`: a token's levels one a
# beat, and its events.
LEVEL_PORT = lambda direction: Stream(                                          # noqa: E731
    direction, lambda p: (signed if p.signed else unsigned)(p.act_bits),
    vector=("width",) if direction is In else ())
EVENT_PORT = lambda direction: Stream(                                          # noqa: E731
    direction, lambda p: event_layout(p.width, event_level_bits(p)),
    vector=("width",) if direction is In else (),
    coding=EventCoding(lambda p: level_range(p.act_bits, p.signed), lambda p: p.event_kind))

BLOCK = Block(
    "event_encoder", "a token's levels as zero-silent events, zero sending nothing (the event "
    "design's rate encoder)",
    params=PARAMS, ports={"i_stream": LEVEL_PORT(In), "o_stream": EVENT_PORT(Out)},
    reference=event_levels)


@BLOCK.generates
class EventEncoder(wiring.Component):
    """Levels to events, as :func:`model.event_if_layer.events_of`.

    Parameters
    ----------
    width : int
        Levels a token, N (1 .. 65536).
    act_bits : int
        Level width (1 .. 8).
    signed : bool
        Signed levels, or unsigned (the FFN hidden layer's).
    event_kind : "graded" or "unit"
        A nonzero level l leaves as one event (j, l), or as |l| events (j, +-1).

    Ports
    -----
    i_stream : In(stream.Signature(signed(act_bits) or unsigned(act_bits)))
        Levels, channel 0 to N - 1, token after token.
    o_stream : Out(stream.Signature(event_layout(width, act_bits + 1 or 2)))
        Per token its events in channel order, then a beat with ``last`` set and no event.

    Latency and throughput
    ----------------------
    One level a cycle: an event leaves one cycle after its level is taken; a unit-event
    level l holds the input |l| cycles. A token takes N + 1 cycles (graded) or
    N + 1 + sum(max(|l| - 1, 0)) (unit) with the output always ready; nothing but the
    channel counter, a unit-event counter and the output register.
    """

    def __init__(self, **params):
        p = BLOCK.check(params)
        self.width, self.act_bits, self.signed, self.event_kind = p.width, p.act_bits, p.signed, p.event_kind
        self._index_bits, self._level_bits = event_fields(p)
        super().__init__(BLOCK.signature(p))

    def _last_beat(self):
        return Const(1 << (self._index_bits + self._level_bits), self._index_bits + self._level_bits + 1)

    def elaborate(self, platform):
        m = Module()
        n, inp = self.width, self.i_stream
        output = OutputRegister(m, self.o_stream)
        index = Signal(range(n))
        ending = Signal()                 # all the token's levels are in: its `last` is due
        level = Signal(signed(self.act_bits + 1))
        m.d.comb += level.eq(inp.payload)
        nonzero = level != 0
        # The event's fields at their layout's widths (`eq` extends by signedness).
        event_index, event_level = Signal(self._index_bits), Signal(signed(self._level_bits))
        m.d.comb += event_index.eq(index)
        if self.event_kind == "graded":
            done_with_level = Const(1)
            m.d.comb += event_level.eq(level)
        else:
            sent = Signal(range(1 << self.act_bits))     # unit events of this level sent
            magnitude = Mux(level < 0, -level, level)
            done_with_level = ~nonzero | (sent + 1 == magnitude)
            m.d.comb += event_level.eq(Mux(level < 0, -1, 1))
        m.d.comb += inp.ready.eq(~ending & output.free & done_with_level)

        with m.If(ending):
            with m.If(output.free):
                output.load(self._last_beat())
                m.d.sync += ending.eq(0)
        with m.Elif(inp.valid & output.free & nonzero):
            output.load(Cat(event_index, event_level, Const(0, 1)))
            if self.event_kind == "unit":
                m.d.sync += sent.eq(Mux(done_with_level, 0, sent + 1))
        with m.If(inp.valid & inp.ready):
            m.d.sync += index.eq(wrapped_increment(index, n))
            with m.If(index == n - 1):
                m.d.sync += ending.eq(1)
        return m

