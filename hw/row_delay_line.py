"""The row delay line that PTsoftmax and its softmax baseline run their passes on, written once.

A softmax needs a figure of a whole row (its maximum, its sum) before a later pass can use the
row's scores, so each later pass reads the row back from a buffer. In a row delay line the
first pass, the *writer*, writes one word an advance, and each later pass, a *reader*, reads
the word written ``lag`` advances before (N <= lag <= depth; a reader of lag = depth reads at
the write's address, read before write): one write and one synchronous read port a reader,
block RAM on an FPGA. Rows start at a lap's start (every N advances), so the writer's place
in its row gives every reader's: one row counter, no occupancy count, no per-pass counters.

Progress: inside a row the line moves on input elements only (``i_stream.ready`` is low
while a reader's word waits); between rows it also moves without them while a row is still
in it, and to a lap's start, so that a row enters at a lap's start and without a pause. A
source must therefore not wait inside a row for the outputs of the rows before it. The line
waits while a reader's word is not taken, its read port holding it, and a port reads only
in the laps that bring it a row.

Use, inside ``elaborate``::

    line = RowDelayLine(m, self.i_stream, shape=word_shape, row_length=n, depth=n, lags={"b": n})
    m.d.comb += line.word.eq(...)              # the word of the accepted element (line.step)
    b = line.readers["b"]                      # b.data: the word read, b.first/b.last: its place
    line.build(can={"b": output.free})         # when each pass can take its word
    with m.If(b.step):                         # the pass takes it
        ...
"""
from __future__ import annotations

import operator
from functools import reduce

from amaranth import Cat, Mux, Signal
from amaranth.lib.memory import Memory

from sorbet_hw.hw.plumbing import wrapped_increment

__all__ = ["RowDelayLine", "RowReader"]


class RowReader:
    """A reader of a :class:`RowDelayLine`: a later pass.

    ``data`` is the word read at the last advance, held until taken; ``first`` and ``last``
    say where it stands in its row; ``pending`` that it is a row's and not yet taken;
    ``step`` (once the line is built) that the pass takes it this cycle."""

    def __init__(self, name: str, lag: int, data, first, last):
        self.name, self.lag, self.data, self.first, self.last = name, lag, data, first, last
        self.pending = Signal(name=f"{name}_pending")
        self.step = None


class RowDelayLine:
    """A row delay line in ``m``, fed by ``i_stream``; see the module's docstring.

    Parameters: ``shape`` of a word, ``row_length`` N, ``depth`` (words), ``lags`` (a
    reader's name: its lag, N <= lag <= depth). The writer's ``word`` is the write port's
    data, which the block drives; ``step`` says an element is accepted, ``first`` and
    ``last`` where it stands in its row; ``advance`` that the line moves (a bank clocked
    with the line enables on it). ``readers`` maps names to :class:`RowReader`. Build the
    line's control with :meth:`build` once the block knows when each pass can take a word."""

    def __init__(self, m, i_stream, *, shape, row_length: int, depth: int, lags: dict,
                 memory_name: str = "rows"):
        n = row_length
        for name, lag in lags.items():
            if not n <= lag <= depth:
                raise ValueError(f"row delay line: reader {name!r} has lag {lag}, outside "
                                 f"row_length .. depth = {n} .. {depth}")
        self._m, self._i_stream, self._n, self._depth = m, i_stream, n, depth
        m.submodules[memory_name] = rows = Memory(shape=shape, depth=depth, init=[])
        self._write = rows.write_port()
        self.word = self._write.data
        # One write address; the writer's place in its row is that address when the line
        # holds one row, else a counter of its own.
        self._ptr = ptr = Signal(range(depth), name="ptr")
        addresses = {name: ptr if lag == depth else Signal(range(depth), name=f"{name}_ptr", init=depth - lag)
                     for name, lag in lags.items()}
        self._index = index = ptr if depth == n else Signal(range(n), name="a_idx")
        self.first, self.last = index == 0, index == n - 1

        def place(i):
            return self.first if i == 0 else self.last if i == n - 1 else index == i
        self._busy = Signal(name="a_busy")      # the writer is inside a row: it takes elements only
        # Which of the last laps wrote a row, newest first. A reader of lag qN + e at place
        # i >= e reads lap q back, laps[q - 1]; at i < e one lap earlier: for e > 0 its flag
        # is taken at place e and held for the lap.
        plans = {name: divmod(lag, n) for name, lag in lags.items()}
        self._laps = laps = Signal(max(q for q, _ in plans.values()), name="laps")
        self._held = {name: Signal(name=f"{name}_row") for name, (q, e) in plans.items() if e}
        self.readers, self._reads = {}, {}
        for name, lag in lags.items():
            q, e = plans[name]
            real = Mux(index == e, laps[q - 1], self._held[name]) if e else laps[q - 1]
            read = rows.read_port()
            self._reads[name] = (read, addresses[name], real)
            self.readers[name] = RowReader(name, lag, read.data, place((lag + 1) % n), place(lag % n))
        self.step = i_stream.valid & i_stream.ready
        self.advance = Signal(name="advance")

    def build(self, can: dict) -> None:
        """The line's control, given by reader name when its pass ``can`` take a word."""
        if set(can) != set(self.readers):
            raise ValueError(f"row delay line: build needs `can` for the readers {sorted(self.readers)}, "
                             f"not {sorted(can)}")
        m, i_stream, n, depth = self._m, self._i_stream, self._n, self._depth
        ptr, index, busy, laps, advance = self._ptr, self._index, self._busy, self._laps, self.advance
        for name, reader in self.readers.items():
            reader.step = reader.pending & can[name]
        # The line moves when every word read last is taken or no row's.
        moving = reduce(operator.and_, [~r.pending | can[r.name] for r in self.readers.values()])
        # Without elements it runs while a row is in it; a held flag can fall inside a lap,
        # so with one it also runs on to the lap's start.
        held = list(self._held.values())
        rows_in = reduce(operator.or_, ([~self.first] if held else []) + [laps.any()] + held)
        m.d.comb += [i_stream.ready.eq(moving & (busy | self.first)),
                     advance.eq(self.step | (moving & ~busy & rows_in)),
                     self._write.addr.eq(ptr), self._write.en.eq(self.step)]
        for read, address, real in self._reads.values():
            m.d.comb += [read.addr.eq(address), read.en.eq(advance & real)]
        for reader in self.readers.values():
            with m.If(reader.step):
                m.d.sync += reader.pending.eq(0)
        with m.If(advance):
            m.d.sync += ptr.eq(wrapped_increment(ptr, depth))
            for read, address, real in self._reads.values():
                if address is not ptr:
                    m.d.sync += address.eq(wrapped_increment(address, depth))
            if index is not ptr:
                m.d.sync += index.eq(wrapped_increment(index, n))
            for name, (read, address, real) in self._reads.items():
                m.d.sync += self.readers[name].pending.eq(real)
                if name in self._held:
                    m.d.sync += self._held[name].eq(real)
            with m.If(self.last):
                m.d.sync += laps.eq(Cat(self.step, laps[:-1]))
        with m.If(self.step):
            m.d.sync += busy.eq(~self.last)
