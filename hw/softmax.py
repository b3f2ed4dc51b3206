"""Softmax generator: the conventional fixed-point baseline of PTsoftmax."""
from __future__ import annotations

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory

from sorbet_hw.hw.block import Block
from sorbet_hw.hw.gap_buffer import add_below, count_rises, gap_bits, gap_layout, rises_after, rises_shape
from sorbet_hw.hw.plumbing import OutputRegister, wrapped_increment
from sorbet_hw.hw.ptsoftmax import ROW_PORTS
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
    Three stages, each a pass over one row, run concurrently on three rows held in a
    circular buffer (one write and two synchronous read ports: block RAM on an FPGA), with
    the conventional arithmetic, as hls4ml and I-BERT build it: *max* stores the score while
    tracking the row maximum, *sum* looks e = EXP[m - x] up in a table and accumulates it,
    the row's reciprocal 2**(P + W) // S comes from a sequential divider
    (:class:`hw.sequential.SequentialDivider`) taking ceil((P + W + 1) / N) quotient bits a
    cycle, so that it finishes within the next row's N cycles, and *output* multiplies e by
    it: no divider in the per-element path. With the output always ready it sustains one
    element per cycle in and out; the buffer holds 2N + 2 entries plus the divider's
    cycles, ceil((P + W + 1) / steps), which also add to a row's latency.

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
        latency = unit.cycles
        # A circular buffer: the *max* stage writes a row while *sum* reads the previous one
        # and *output* the one before; a row's constant takes `latency` cycles more. Two rows
        # and that latency, plus the hand-over cycles, keep the input flowing.
        depth = 2 * n + latency + 2
        m.submodules.rows = rows = Memory(shape=word_shape, depth=depth, init=[])
        write = rows.write_port()
        # Synchronous reads, as block RAM has. A one-element row is read in the cycle after
        # it was written, hence the bypass then.
        bypass = (write,) if n == 1 else ()
        sum_read = rows.read_port(transparent_for=bypass)
        out_read = rows.read_port(transparent_for=bypass)

        ptr_shape = range(depth)
        idx_shape = range(n)
        sum_shape = unsigned(W)

        # Every stage handles the rows in order, so each walks the buffer with its own
        # pointer: no slot bases, no address adders.
        def advance(ptr):
            return wrapped_increment(ptr, depth)

        # Hand-over register from *max* to *sum*: a finished row's figure (its maximum, or
        # with the gap buffer its clamped rises; so are b_max and c_max).
        ab_full = Signal()
        ab_max = Signal(figure_shape)
        # From *sum* to *output*: a stream of (row reciprocal, row maximum) through the divider.
        m.submodules.row_constant = unit
        into, out_of = unit.i_stream, unit.o_stream

        # Stage "max": store the score, track the row maximum.
        a_ptr = Signal(ptr_shape)
        a_idx = Signal(idx_shape)
        a_max = Signal(stored_shape)
        score = Signal(stored_shape)
        m.d.comb += score.eq(self.i_stream.payload)
        row_max = Signal(stored_shape)
        rise = Signal()
        m.d.comb += [rise.eq((a_idx == 0) | (score >= a_max)), row_max.eq(Mux(rise, score, a_max))]

        # Stage "sum".
        b_busy = Signal()
        b_ptr = Signal(ptr_shape)
        b_idx = Signal(idx_shape)
        b_max = Signal(figure_shape)
        b_sum = Signal(sum_shape)
        b_cur_max = Mux(b_busy, b_max, ab_max)
        b_cur_idx = Mux(b_busy, b_idx, 0)
        b_last = b_cur_idx == n - 1
        b_active = b_busy | ab_full

        # Stage "output".
        c_busy = Signal()
        c_ptr = Signal(ptr_shape)
        c_idx = Signal(idx_shape)
        c_max = Signal(figure_shape)
        c_k = Signal(unsigned(prec + W + 1))
        c_cur_max = Mux(c_busy, c_max, out_of.payload.tag)
        c_cur_k = Mux(c_busy, c_k, out_of.payload.result)
        c_cur_idx = Mux(c_busy, c_idx, 0)
        c_last = c_cur_idx == n - 1

        output = OutputRegister(m, self.o_stream)
        out_free = output.free
        m.d.comb += out_of.ready.eq(~c_busy & out_free)
        c_step = (c_busy & out_free) | (out_of.valid & out_of.ready)
        m.d.comb += into.valid.eq(b_active & b_last)
        b_step = b_active & (~b_last | into.ready)
        b_take = ~b_busy & b_step
        a_step = self.i_stream.valid & self.i_stream.ready

        # The buffer holds every element from its write until *output* reads it.
        occupancy = Signal(range(depth + 1))
        m.d.comb += self.i_stream.ready.eq(((a_idx != n - 1) | ~ab_full | b_take) & (occupancy != depth))
        m.d.sync += occupancy.eq(occupancy + a_step - c_step)

        # The read ports are given the element each stage will work on next cycle.
        m.d.comb += [sum_read.addr.eq(Mux(b_step, advance(b_ptr), b_ptr)),
                     out_read.addr.eq(Mux(c_step, advance(c_ptr), c_ptr))]
        with m.If(b_step):
            m.d.sync += b_ptr.eq(advance(b_ptr))
        with m.If(c_step):
            m.d.sync += c_ptr.eq(advance(c_ptr))

        # -- max stage
        m.d.comb += [write.addr.eq(a_ptr), write.en.eq(a_step)]
        if self.gap_buffer:
            diff = Signal(signed(self.score_width + 1))
            m.d.comb += diff.eq(score - a_max)
            row_figure = count_rises(m, write.data, diff, rise, a_idx == 0, a_step, figure_shape)
        else:
            m.d.comb += write.data.eq(score)
            row_figure = row_max
        with m.If(b_take):
            m.d.sync += ab_full.eq(0)
        with m.If(a_step):
            m.d.sync += a_ptr.eq(advance(a_ptr))
            # The maximum changes on a rise only: no clock on the other scores.
            with m.If(rise):
                m.d.sync += a_max.eq(score)
            with m.If(a_idx == n - 1):
                m.d.sync += [a_idx.eq(0), ab_full.eq(1), ab_max.eq(row_figure)]
            with m.Else():
                m.d.sync += a_idx.eq(a_idx + 1)

        # -- sum stage
        dist = self._distance(m, sum_read.data, b_cur_max, ~b_busy, b_step, "sum")
        term = Signal(sum_shape)
        total = Signal(sum_shape)
        m.d.comb += [
            term.eq(self._exp(m, dist, "sum")),
            total.eq(Mux(b_busy, b_sum, 0) + term),
            into.payload.value.eq(total),
            into.payload.tag.eq(b_cur_max),
        ]
        with m.If(b_step):
            with m.If(b_last):
                m.d.sync += b_busy.eq(0)
            with m.Else():
                m.d.sync += [b_busy.eq(1), b_idx.eq(b_cur_idx + 1), b_sum.eq(total)]
                # A row's maximum is held from its first element on: loaded once.
                with m.If(~b_busy):
                    m.d.sync += b_max.eq(b_cur_max)

        # -- output stage
        out_dist = self._distance(m, out_read.data, c_cur_max, ~c_busy, c_step, "output")
        out_value = (self._exp(m, out_dist, "output") * c_cur_k) >> W      # EXP[d] * 2**(P+W) // S >> W
        with m.If(c_step):
            output.load(out_value)
            with m.If(c_last):
                m.d.sync += c_busy.eq(0)
            with m.Else():
                m.d.sync += [c_busy.eq(1), c_idx.eq(c_cur_idx + 1)]
                with m.If(~c_busy):
                    m.d.sync += [c_max.eq(c_cur_max), c_k.eq(c_cur_k)]
        return m
