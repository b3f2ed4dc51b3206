"""Softmax generator: the conventional fixed-point baseline of PTsoftmax."""
from __future__ import annotations

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory

from sorbet_hw.hw.block import Block
from sorbet_hw.hw.gap_buffer import add_below, count_rises, gap_bits, gap_layout, rises_after, rises_shape
from sorbet_hw.hw.plumbing import OutputRegister
from sorbet_hw.hw.ptsoftmax import ROW_PORTS
from sorbet_hw.hw.row_delay_line import RowDelayLine
from sorbet_hw.hw.sequential import SequentialDivider, steps_per_cycle
from sorbet_hw.model.params import Param
from sorbet_hw.model.softmax import PARAMS, exp_table, softmax_fixed, sum_width

__all__ = ["Softmax", "BLOCK"]

BLOCK = Block(
    "softmax", "conventional fixed-point softmax (exponential table, one reciprocal a row)",
    params=PARAMS + (Param("gap_buffer", False, "store each score's clamped gap to the running "
                           "maximum instead of the score (PTsoftmax's buffer)", flag=True),),
    ports=ROW_PORTS, reference=softmax_fixed, baseline_of="ptsoftmax", multiplies=True,
    complete=lambda p: {**p, "exp_bits": p["out_frac_bits"] if p["exp_bits"] is None else p["exp_bits"]})


@BLOCK.generates
class Softmax(wiring.Component):
    """Fixed-point softmax over rows of ``row_length`` scores, as :func:`model.softmax.softmax_fixed`.

    Parameters
    ----------
    row_length, score_width, frac_bits, out_frac_bits : int
        As :class:`hw.ptsoftmax.PTSoftmax` (the same row ports).
    exp_bits : int
        Fractional bits E of the exponential table's entries. Default: ``out_frac_bits``.
    gap_buffer : bool
        Store, as :class:`hw.ptsoftmax.PTSoftmax` does, how each score stood to the running
        maximum when it arrived (a rise, or a distance below, clamped at the table's length)
        instead of the score, and recover m - x in both later stages by counting the rises
        down: narrower buffer words for three counters. Off by default: the conventional
        design.

    Ports
    -----
    i_stream : In(stream.Signature(signed(score_width)))
    o_stream : Out(stream.Signature(unsigned(out_frac_bits + 1)))

    Architecture, latency and throughput
    ------------------------------------
    Three stages, each a pass over one row, run concurrently on three rows held in a row
    delay line (:mod:`hw.row_delay_line`, the one PTsoftmax runs on, for a fair comparison:
    one write and two synchronous read ports, block RAM on an FPGA), with the
    conventional arithmetic, as hls4ml and I-BERT build it: *max* stores the score while
    tracking the row maximum, *sum* looks e = EXP[m - x] up in a table and accumulates it,
    the row's reciprocal 2**(P + W) // S comes from a sequential divider
    (:class:`hw.sequential.SequentialDivider`) taking ceil((P + W + 1) / N) quotient bits a
    cycle, so that it finishes within the next row's N cycles, and *output* multiplies e by
    it: no divider in the per-element path. The line holds 2N + L words, L = the divider's
    cycles - 1: each advance writes *max*'s word, *sum* reads the word written N advances
    before and *output* the word written 2N + L advances before, at the write's address
    (read before write), so *output* starts a row as its reciprocal is due: one row counter
    and the two read addresses. With the output always ready it sustains one element
    per cycle in and out; a row's first probability leaves about N + L cycles after its
    last score. Progress as PTsoftmax's: inside a row the line moves on scores only; when
    the scores pause at a row's end it runs without them until the rows in it are out, and
    the next row's first score waits for a lap's start (up to N - 1 cycles).

    Why three passes when PTsoftmax needs two: finding the maximum and the sum in one pass
    (Softermax) rescales the running sum by e**-(rise) whenever the maximum rises, a
    multiply in the sum's path, where PTsoftmax shifts.
    """

    def __init__(self, **params):
        p = BLOCK.check(params)
        self.row_length, self.score_width = p.row_length, p.score_width
        self.frac_bits, self.out_frac_bits, self.exp_bits = p.frac_bits, p.out_frac_bits, p.exp_bits
        self.gap_buffer = p.gap_buffer
        self._table = exp_table(p.frac_bits, p.exp_bits)
        self._W = sum_width(p.row_length, p.exp_bits)
        super().__init__(BLOCK.signature(p))

    def _exp(self, m, dist, stage: str):
        """EXP[dist], zero past the table's end (its last entry is the last non-zero one)."""
        port = self._lookups[stage]
        m.d.comb += port.addr.eq(dist)
        return Mux(dist < len(self._table), port.data, 0)

    def _distance(self, m, word, figure, first, step, stage: str):
        """m - x of the element ``word`` a stage reads, from its row's ``figure``: the row
        maximum less the score, or from a gap word (:mod:`hw.gap_buffer`)."""
        if not self.gap_buffer:
            dist = Signal(unsigned(len(figure)), name=f"{stage}_dist")
            m.d.comb += dist.eq((figure - word).as_unsigned())
            return dist
        rest = rises_after(m, word, figure, first, step, stage)
        dist = Signal(max(len(figure), len(word.gap)) + 1, name=f"{stage}_dist")
        m.d.comb += dist.eq(add_below(rest, word))
        return dist

    def elaborate(self, platform):
        m = Module()
        n, W, prec = self.row_length, self._W, self.out_frac_bits
        m.submodules.exp_table = table = Memory(
            shape=unsigned(self.exp_bits + 1), depth=len(self._table), init=self._table)
        self._lookups = {stage: table.read_port(domain="comb") for stage in ("sum", "output")}
        stored_shape = signed(self.score_width)
        # What the buffer keeps of a score, and the row's figure the later stages take: the
        # score and the row maximum, or the gap word and the sum of the row's clamped rises.
        if self.gap_buffer:
            bits = gap_bits(len(self._table))                  # past the table, e = 0
            word_shape, figure_shape = gap_layout(bits), rises_shape(n, bits)
        else:
            word_shape, figure_shape = stored_shape, stored_shape
        # One reciprocal a row, within the row's own N cycles: a sequential divider taking
        # as few quotient bits a cycle as keep up with the rows.
        unit = SequentialDivider(numerator=1 << (prec + W), divisor_width=W, tag_shape=figure_shape,
                                 steps_per_cycle=steps_per_cycle(prec + W + 1, n))
        m.submodules.row_constant = unit
        into, out_of = unit.i_stream, unit.o_stream
        # A row delay line (hw.row_delay_line) of D = 2N + L words, L = the divider's cycles
        # - 1: *sum* reads the word written N advances before, *output* the word written D
        # advances before, so *output* starts a row L advances after *sum* ends it, when its
        # reciprocal is due.
        extra = unit.cycles - 1
        depth = 2 * n + extra
        line = RowDelayLine(m, self.i_stream, shape=word_shape, row_length=n, depth=depth,
                            lags={"sum": n, "output": depth})
        a_first, a_last, a_step = line.first, line.last, line.step
        b, c = line.readers["sum"], line.readers["output"]
        b_first, b_last, c_first = b.first, b.last, c.first

        # Stage "max": store the score, track the row maximum.
        a_max = Signal(stored_shape)
        score = Signal(stored_shape)
        m.d.comb += score.eq(self.i_stream.payload)
        row_max = Signal(stored_shape)
        rise = Signal()
        m.d.comb += [rise.eq(a_first | (score >= a_max)), row_max.eq(Mux(rise, score, a_max))]
        # Hand-over register from *max* to *sum*: a finished row's figure (its maximum, or
        # with the gap buffer its clamped rises; so are b_max and c_max).
        ab_max = Signal(figure_shape)

        # Stage "sum".
        sum_shape = unsigned(W)
        b_max = Signal(figure_shape)
        b_sum = Signal(sum_shape)
        b_cur_max = Mux(b_first, ab_max, b_max)
        if n == 1 and not self.gap_buffer:
            # *max* overwrites the hand-over register at the next score, before *sum* takes
            # the word read with it; a one-score row's maximum is that score.
            b_cur_max = b.data

        # Stage "output".
        c_max = Signal(figure_shape)
        c_k = Signal(unsigned(prec + W + 1))
        c_cur_max = Mux(c_first, out_of.payload.tag, c_max)
        c_cur_k = Mux(c_first, out_of.payload.result, c_k)

        output = OutputRegister(m, self.o_stream)
        # A stage takes its word when it can: *sum* its row's last once the divider takes
        # the row, *output* when its register is free and, at a row's first, the reciprocal
        # has come.
        line.build(can={"sum": ~b_last | into.ready, "output": output.free & (~c_first | out_of.valid)})
        m.d.comb += [into.valid.eq(b.pending & b_last), out_of.ready.eq(c.step & c_first)]

        # -- max stage
        if self.gap_buffer:
            diff = Signal(signed(self.score_width + 1))
            m.d.comb += diff.eq(score - a_max)
            row_figure = count_rises(m, line.word, diff, rise, a_first, a_step, figure_shape)
        else:
            m.d.comb += line.word.eq(score)
            row_figure = row_max
        with m.If(a_step):
            # The maximum changes on a rise only: no clock on the other scores.
            with m.If(rise):
                m.d.sync += a_max.eq(score)
            with m.If(a_last):
                m.d.sync += ab_max.eq(row_figure)

        # -- sum stage
        dist = self._distance(m, b.data, b_cur_max, b_first, b.step, "sum")
        term = Signal(sum_shape)
        total = Signal(sum_shape)
        m.d.comb += [
            term.eq(self._exp(m, dist, "sum")),
            total.eq(Mux(b_first, 0, b_sum) + term),
            into.payload.value.eq(total),
            into.payload.tag.eq(b_cur_max),
        ]
        with m.If(b.step):
            m.d.sync += b_sum.eq(total)
            # A row's maximum is held from its first element on: loaded once.
            with m.If(b_first):
                m.d.sync += b_max.eq(b_cur_max)

        # -- output stage
        out_dist = self._distance(m, c.data, c_cur_max, c_first, c.step, "output")
        out_value = (self._exp(m, out_dist, "output") * c_cur_k) >> W      # EXP[d] * 2**(P+W) // S >> W
        with m.If(c.step):
            output.load(out_value)
            with m.If(c_first):
                m.d.sync += [c_max.eq(c_cur_max), c_k.eq(c_cur_k)]
        return m
