"""The two-pass group pipeline the norms (BSPN, its LayerNorm baseline) are built on.

A norm needs a statistic of a whole group (BSPN: sum |x| of a group; LayerNorm: sum x and
sum x^2 of a token) before it can emit the group's first output. :class:`TwoPass` streams
that: pass 1 writes each accepted element into a circular buffer (a memory with a
synchronous read port: block RAM) while the caller's statistics accumulate; at a group's end
they are handed over as a stream, which may pass through sequential units (LayerNorm's
square root and divider) before pass 2 takes them, reads the group back, one element a
cycle, and emits what the caller computes from it.
With the output always ready it sustains one element per cycle in and out, provided each
unit on the way takes at most a group's cycles; the buffer holds one group, the units'
``latency`` and two hand-over cycles.

Use, inside ``elaborate``::

    p = TwoPass(m, self.i_stream, self.o_stream, group=n, channels=C, latency=0)
    total = Signal(...)
    m.d.comb += total.eq(Mux(p.first, 0, acc) + p.x)   # p.x: the accepted input element
    p.accumulate(acc, total)                           # acc <= total on every accepted element
    handed = p.hand_over({"figure": (f(total), shape)})  # a stream, valid at a group's end
    figures = p.take(handed)                           # or the output of units fed by it
    m.d.comb += out.eq(p.stored ... figures.figure ...)  # p.stored: the element read back
    p.emit(out)                                        # p.channel counts output channels
    p.build()
"""
from __future__ import annotations

from amaranth import Mux, Signal
from amaranth.hdl import Shape
from amaranth.lib import data, stream
from amaranth.lib.memory import Memory

from sorbet_hw.hw.plumbing import OutputRegister, wrapped_increment


class TwoPass:
    def __init__(self, m, i_stream, o_stream, *, group: int, channels: int, latency: int = 0,
                 memory_name: str = "groups"):
        self.m, self.i_stream, self.o_stream = m, i_stream, o_stream
        self.group, self.channels = group, channels
        self.depth = group + latency + 2
        self.x = i_stream.payload
        m.submodules[memory_name] = memory = Memory(shape=Shape.cast(i_stream.payload.shape()),
                                                    depth=self.depth, init=[])
        self._write = memory.write_port()
        # A synchronous read (block RAM); a one-element group is read in the cycle after it
        # was written, hence the bypass then.
        self._read = memory.read_port(transparent_for=(self._write,) if group == 1 else ())
        # Both passes handle the groups in order: each walks the buffer with its own pointer.
        ptr, idx = range(self.depth), range(group)
        self._a_ptr, self._a_idx = Signal(ptr, name="a_ptr"), Signal(idx, name="a_idx")
        self._b_busy = Signal(name="b_busy")
        self._b_ptr, self._b_idx = Signal(ptr, name="b_ptr"), Signal(idx, name="b_idx")
        self.first = self._a_idx == 0
        self.step = i_stream.valid & i_stream.ready
        self.stored = self._read.data
        self.channel = Signal(range(channels), name="channel")
        self._accumulators, self._handed, self._source, self._out = [], None, None, None

    def accumulate(self, register, value) -> None:
        """``register`` takes ``value`` on every accepted element."""
        self._accumulators.append((register, value))

    def hand_over(self, figures: dict):
        """A stream of ``{name: (value, shape)}`` taken at each group's last element."""
        layout = data.StructLayout({name: shape for name, (_, shape) in figures.items()})
        handed = stream.Signature(layout).create(path=("ab",))
        self._handed = handed, {name: value for name, (value, _) in figures.items()}
        return handed

    def take(self, source):
        """Pass 2's figures of the group it emits, from the stream ``source``."""
        self._source = source
        layout = source.payload.shape()
        held, current = Signal(layout, name="b_figures"), Signal(layout, name="figures")
        self.m.d.comb += current.eq(Mux(self._b_busy, held, source.payload))
        self._held = held
        return current

    def emit(self, value) -> None:
        self._out = value

    def build(self) -> None:
        m, n, depth = self.m, self.group, self.depth
        a_ptr, a_idx = self._a_ptr, self._a_idx
        b_busy, b_ptr, b_idx = self._b_busy, self._b_ptr, self._b_idx
        handed, values = self._handed
        source = self._source

        def advance(ptr):
            return wrapped_increment(ptr, depth)

        cur_idx = Mux(b_busy, b_idx, 0)
        b_last = cur_idx == n - 1
        output = OutputRegister(m, self.o_stream)
        out_free = output.free
        m.d.comb += source.ready.eq(~b_busy & out_free)
        b_take = source.valid & source.ready
        b_step = (b_busy & out_free) | b_take

        # The buffer holds every element from its write until pass 2 reads it; the figures
        # of a finished group wait in the hand-over register.
        occupancy = Signal(range(depth + 1))
        handed_free = ~handed.valid | handed.ready
        m.d.comb += self.i_stream.ready.eq(((a_idx != n - 1) | handed_free) & (occupancy != depth))
        m.d.sync += occupancy.eq(occupancy + self.step - b_step)

        # Pass 1.
        m.d.comb += [self._write.addr.eq(a_ptr), self._write.data.eq(self.x),
                     self._write.en.eq(self.step)]
        with m.If(handed.ready):
            m.d.sync += handed.valid.eq(0)
        with m.If(self.step):
            m.d.sync += [register.eq(value) for register, value in self._accumulators]
            m.d.sync += a_ptr.eq(advance(a_ptr))
            with m.If(a_idx == n - 1):
                m.d.sync += [a_idx.eq(0), handed.valid.eq(1)]
                m.d.sync += [getattr(handed.payload, name).eq(value) for name, value in values.items()]
            with m.Else():
                m.d.sync += a_idx.eq(a_idx + 1)

        # Pass 2: the read port is given the element pass 2 works on next cycle.
        m.d.comb += self._read.addr.eq(Mux(b_step, advance(b_ptr), b_ptr))
        with m.If(b_step):
            output.load(self._out)
            m.d.sync += [
                self.channel.eq(wrapped_increment(self.channel, self.channels)),
                b_ptr.eq(advance(b_ptr)),
            ]
            with m.If(b_last):
                m.d.sync += b_busy.eq(0)
            with m.Else():
                m.d.sync += [b_busy.eq(1), b_idx.eq(cur_idx + 1)]
        with m.If(b_take):
            m.d.sync += self._held.eq(source.payload)
