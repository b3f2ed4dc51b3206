"""PTsoftmax generator: a streaming power-of-two softmax."""
from __future__ import annotations

from amaranth import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from sorbet_hw.hw.block import Block, Stream
from sorbet_hw.hw.gap_buffer import add_below, amount, count_rises, gap_bits, gap_layout, rises_after, rises_shape
from sorbet_hw.hw.plumbing import OutputRegister
from sorbet_hw.hw.row_delay_line import RowDelayLine
from sorbet_hw.model.ptsoftmax import PARAMS, ptsoftmax

__all__ = ["PTSoftmax", "BLOCK", "ROW_PORTS"]

# The ports of a row of scores, shared with the baseline `hw.softmax`.
ROW_PORTS = {
    "i_stream": Stream(In, lambda p: signed(p.score_width), vector=("row_length",)),
    "o_stream": Stream(Out, lambda p: unsigned(p.out_frac_bits + 1)),
}

BLOCK = Block(
    "ptsoftmax", "power-of-two softmax over rows of scores (online max and sum, ceiling, shifts)",
    params=PARAMS, ports=ROW_PORTS, reference=ptsoftmax)


@BLOCK.generates
class PTSoftmax(wiring.Component):
    """Power-of-two softmax over rows of ``row_length`` scores, as :func:`model.ptsoftmax.ptsoftmax`.

    Parameters
    ----------
    row_length : int
        Scores per row, N (1 .. 4096). Every N consecutive input elements form one row.
    score_width : int
        Width of a signed input score (2 .. 32).
    frac_bits : int
        Fractional bits of the scores (0 .. score_width - 1).
    out_frac_bits : int
        Fractional bits P of the probabilities (1 .. 24); also the depth at which a numerator
        underflows to zero in the sum.
    rounding : "up" or "nearest"
        How the row sum becomes a power of two (see :func:`model.ptsoftmax.sum_power`).

    Ports
    -----
    i_stream : In(stream.Signature(signed(score_width)))
        Scores, row after row.
    o_stream : Out(stream.Signature(unsigned(out_frac_bits + 1)))
        Probabilities p = 2**-e as fixed point with P fractional bits (0 once e > P), in the
        input order.

    Architecture, latency and throughput
    ------------------------------------
    Two passes over a row, each one element a cycle, on a row delay line of one row
    (:mod:`hw.row_delay_line`: N words, one write and one synchronous read port with a read
    enable, block RAM on an FPGA, and one address for both passes): each advance writes
    pass 1's word and reads, at the same address, the word written N advances before, pass
    2's. Pass 2 reads a row during the lap after pass 1 wrote it, while pass 1 writes the
    next; the address is also each pass's place in its row.

    Pass 1 keeps the running maximum m and sum S online from one subtraction d = c - m
    (c = ceil(x)): a score at or above m shifts S right by d and adds one, any other adds
    2**P >> -d, both through one shifter and one adder. It does not store c but the score's
    gap to the running maximum (:mod:`hw.gap_buffer`), clamped past P + 1, where a
    probability is 0 whatever k: G + 1 = bit_length(P + 1) + 1 bits a word instead of c's
    score_width - frac_bits + 1. Pass 2 recovers M - c from the gaps and emits
    2**P >> (M - c + k), k from S by leading-one detection, added once a row to the rises
    it counts down.

    The sum is clocked with the line's counter (one clock-gated bank; a row's first score
    clears what it held), the maximum and the rise count on rises only, the rise count of
    pass 2 on rises and at a row's start. The output register holds e (P + 1 for a zero),
    not p: the payload is decoded from flip-flops only. With the output always ready the
    block sustains one element per cycle in and out; a row's first probability leaves 3
    cycles after its last score is accepted.

    Progress is the line's: inside a row it moves on scores only, so pass 2's row moves as
    the next row's scores arrive; when the input pauses at a row's end, the line runs a lap
    without scores to finish pass 2's row, and the next row's first score waits for that
    lap's end (up to N - 1 cycles). A source must therefore not wait inside a row for
    probabilities of the row before (the attention blocks produce a row's scores whatever
    the output).
    """

    def __init__(self, **params):
        p = BLOCK.check(params)
        self.row_length, self.score_width, self.frac_bits = p.row_length, p.score_width, p.frac_bits
        self.out_frac_bits, self.rounding = p.out_frac_bits, p.rounding
        super().__init__(BLOCK.signature(p))

    def elaborate(self, platform):
        m = Module()
        n, prec = self.row_length, self.out_frac_bits
        one = 1 << prec
        # ceil(x) of a W-bit score with F fractional bits needs W - F + 1 signed bits.
        ceil_shape = signed(self.score_width - self.frac_bits + 1)
        ceil = Signal(ceil_shape)
        m.d.comb += ceil.eq((self.i_stream.payload + ((1 << self.frac_bits) - 1)) >> self.frac_bits)

        # The buffer keeps gaps (hw.gap_buffer): past P + 1 below M a probability is 0. A row
        # delay line of one row: pass 2 reads a row during the lap after pass 1 wrote it.
        bits = gap_bits(prec + 1)
        line = RowDelayLine(m, self.i_stream, shape=gap_layout(bits), row_length=n, depth=n, lags={"b": n})
        first, last, step, b = line.first, line.last, line.step, line.readers["b"]

        # Pass 1. At or above the maximum (d >= 0) the sum shifts right by d and one is
        # added; below it one shifts right by -d, which is (one >> 1) >> ~d (~d = -d - 1:
        # no negation), and the sum is added. A shift past the sum's width empties it.
        sum_shape = unsigned((n << prec).bit_length())
        a_max = Signal(ceil_shape)
        a_sum = Signal(sum_shape)
        new_sum = Signal(sum_shape)
        diff = Signal(signed(ceil_shape.width + 1))
        at_or_above = Signal()
        m.d.comb += [diff.eq(ceil - a_max), at_or_above.eq(first | (diff >= 0))]
        by = amount(diff, at_or_above)
        shift_bits = (sum_shape.width - 1).bit_length()
        shifted = Mux(at_or_above, a_sum, Const(one >> 1, sum_shape)) >> by[:shift_bits]
        shifted = Mux(by[shift_bits:].any() | first, 0, shifted)
        m.d.comb += new_sum.eq(shifted + Mux(at_or_above, one, a_sum))
        total_shape = rises_shape(n, bits)
        new_rises = count_rises(m, line.word, diff, at_or_above, first, step, total_shape)

        # The figures of the row pass 2 works on, taken as pass 1 ends it. Pass 2 needs them
        # only as it takes the row's first word, before the line reaches the next row's end
        # (with N = 1 after it, but every one-score row has the same figures).
        row_rises = Signal(total_shape)
        row_sum = Signal(sum_shape)
        # The output register holds e of p = 2**-e, P + 1 for 0: fewer bits than p.
        output = OutputRegister(m, self.o_stream, held=range(prec + 2), decode=lambda e: Mux(
            e <= prec, Const(one, prec + 1) >> e[:(prec + 1).bit_length()], 0))
        line.build(can={"b": output.free})
        with m.If(step):
            with m.If(at_or_above):
                m.d.sync += a_max.eq(ceil)
            with m.If(last):
                m.d.sync += [row_rises.eq(new_rises), row_sum.eq(new_sum)]
        with m.If(line.advance):
            m.d.sync += a_sum.eq(new_sum)

        # Pass 2, on the word read at the last advance: the read port holds it until taken.
        stored = b.data
        # The shift M - c + k: the count down starts at the row's rises + k, so `rest` is the
        # clamped rises after the score + k; past 2**G - 1 >= P + 1 the probability is 0.
        k = self._sum_power(m, row_sum)
        rest = rises_after(m, stored, row_rises + k, b.first, b.step, "b")
        shift = Signal(unsigned(bits + 2))
        m.d.comb += shift.eq(add_below(rest[:bits], stored))
        with m.If(b.step):
            output.load(Mux((rest[bits:] == 0) & (shift <= prec), shift, prec + 1))
        return m

    def _sum_power(self, m, total):
        """k of :func:`model.ptsoftmax.sum_power`, by leading-one detection on the row sum's
        bits from P - 1 up: S >= 2**P, so the bits below decide nothing but whether S is an
        exact power of two."""
        prec = self.out_frac_bits
        if self.rounding == "up":
            # bit_length(S - 1) - P = bit_length(ceil(S / 2**P) - 1)
            probe = Signal(len(total) - prec)
            m.d.comb += probe.eq((total >> prec) - (total[:prec] == 0))
            bits = Signal(range(len(probe) + 1))
            for i in range(len(probe)):              # priority: the highest set bit wins
                with m.If(probe[i]):
                    m.d.comb += bits.eq(i + 1)
            return bits
        # bit_length(S) - 1 - P + the bit below the lead, on T = S >> (P - 1) >= 2
        probe = total[prec - 1:]
        bits = Signal(range(len(probe)))
        for i in range(1, len(probe)):
            with m.If(probe[i]):
                m.d.comb += bits.eq(i - 1 + probe[i - 1])
        return bits
