"""The two-pass group pipeline both norms are built on (BSPN and its LayerNorm baseline).

A norm needs a statistic of a whole group (BSPN: sum |x| of a group; LayerNorm: sum x and
sum x^2 of a token) before it can emit the group's first output. :class:`TwoPass` streams
that: pass 1 writes each accepted element into one of two group slots (a memory with a
synchronous read port: block RAM) while the caller's statistics accumulate; a hand-over
register holds a finished group's figures until pass 2 reads the group back, one element a
cycle, and emits what the caller computes from it.
With the output always ready it sustains one element per cycle in and out.

Use, inside ``elaborate``::

    p = TwoPass(m, self.i_stream, self.o_stream, group=n, width=w, channels=C)
    total = Signal(...)
    m.d.comb += total.eq(Mux(p.first, 0, acc) + p.x)   # p.x: the accepted input element
    p.accumulate(acc, total)                           # acc <= total on every accepted element
    figure = p.carry(some_function_of(total), shape)   # handed over at the group's end
    m.d.comb += out.eq(p.stored ... figure ...)        # p.stored: the element read back
    p.emit(out)                                        # p.channel counts output channels
    p.build()
"""
from __future__ import annotations

from amaranth import Mux, Signal
from amaranth.hdl import Shape
from amaranth.lib.memory import Memory


class TwoPass:
    def __init__(self, m, i_stream, o_stream, *, group: int, width: int, channels: int,
                 memory_name: str = "groups"):
        self.m, self.i_stream, self.o_stream = m, i_stream, o_stream
        self.group, self.channels = group, channels
        m.submodules[memory_name] = memory = Memory(shape=Shape.cast(i_stream.payload.shape()),
                                                   depth=2 * group, init=[])
        self._write = memory.write_port()
        # A synchronous read (block RAM); a one-element group is read in the cycle after it
        # was written, hence the bypass then.
        self._read = memory.read_port(transparent_for=(self._write,) if group == 1 else ())
        # Groups take the two slots in turn and both passes handle them in order: each pass
        # walks the memory with its own pointer.
        ptr, idx = range(2 * group), range(group)
        self._a_ptr, self._a_idx = Signal(ptr, name="a_ptr"), Signal(idx, name="a_idx")
        self._ab_full = Signal(name="ab_full")
        self._b_busy = Signal(name="b_busy")
        self._b_ptr, self._b_idx = Signal(ptr, name="b_ptr"), Signal(idx, name="b_idx")
        self.x = i_stream.payload
        self.first = self._a_idx == 0
        self.step = i_stream.valid & i_stream.ready
        self.stored = self._read.data
        self.channel = Signal(range(channels), name="channel")
        self._accumulators, self._carried, self._out = [], [], None

    def accumulate(self, register, value) -> None:
        """``register`` takes ``value`` on every accepted element."""
        self._accumulators.append((register, value))

    def carry(self, value, shape, name: str = "figure"):
        """``value`` at a group's last element, as seen by pass 2 while it emits that group."""
        handed, held = Signal(shape, name=f"ab_{name}"), Signal(shape, name=f"b_{name}")
        current = Mux(self._b_busy, held, handed)
        self._carried.append((value, handed, held, current))
        return current

    def emit(self, value) -> None:
        self._out = value

    def build(self) -> None:
        m, n = self.m, self.group
        a_ptr, a_idx, ab_full = self._a_ptr, self._a_idx, self._ab_full
        b_busy, b_ptr, b_idx = self._b_busy, self._b_ptr, self._b_idx

        def advance(ptr):
            return Mux(ptr == 2 * n - 1, 0, ptr + 1)

        cur_idx = Mux(b_busy, b_idx, 0)
        b_last = cur_idx == n - 1
        out_free = ~self.o_stream.valid | self.o_stream.ready
        b_take = ab_full & ~b_busy & out_free
        b_step = (b_busy & out_free) | b_take

        # Two slots: a new group starts only while fewer than two are in flight.
        in_flight = Signal(range(3))
        m.d.comb += self.i_stream.ready.eq((~ab_full | b_take) & ((a_idx != 0) | (in_flight != 2)))
        m.d.sync += in_flight.eq(in_flight + (self.step & (a_idx == 0)) - (b_step & b_last))

        # Pass 1.
        m.d.comb += [self._write.addr.eq(a_ptr), self._write.data.eq(self.x),
                     self._write.en.eq(self.step)]
        with m.If(b_take):
            m.d.sync += ab_full.eq(0)
        with m.If(self.step):
            m.d.sync += [register.eq(value) for register, value in self._accumulators]
            m.d.sync += a_ptr.eq(advance(a_ptr))
            with m.If(a_idx == n - 1):
                m.d.sync += [a_idx.eq(0), ab_full.eq(1)]
                m.d.sync += [handed.eq(value) for value, handed, _, _ in self._carried]
            with m.Else():
                m.d.sync += a_idx.eq(a_idx + 1)

        # Pass 2: the read port is given the element pass 2 works on next cycle.
        m.d.comb += self._read.addr.eq(Mux(b_step, advance(b_ptr), b_ptr))
        with m.If(out_free):
            m.d.sync += self.o_stream.valid.eq(0)
        with m.If(b_step):
            m.d.sync += [
                self.o_stream.valid.eq(1),
                self.o_stream.payload.eq(self._out),
                self.channel.eq(Mux(self.channel == self.channels - 1, 0, self.channel + 1)),
                b_ptr.eq(advance(b_ptr)),
            ]
            with m.If(b_last):
                m.d.sync += b_busy.eq(0)
            with m.Else():
                m.d.sync += [b_busy.eq(1), b_idx.eq(cur_idx + 1)]
                m.d.sync += [held.eq(current) for _, _, held, current in self._carried]
