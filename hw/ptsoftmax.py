"""PTsoftmax generator: a streaming power-of-two softmax."""
from __future__ import annotations

from amaranth import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from sorbet_hw.hw.block import Block, Stream
from sorbet_hw.hw.plumbing import OutputRegister
from sorbet_hw.hw.two_pass import TwoPass
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
    The two passes of :class:`hw.two_pass.TwoPass` over one row each, on a circular buffer
    of N + 3 entries with one write and one synchronous read port (block RAM on an FPGA).
    Pass 1 stores c = ceil(x) and keeps the running maximum m and sum S online: a score
    at or above m shifts S right by c - m and adds one, any other adds 2**P >> (m - c), both
    through one shifter and one adder. A register
    stage between the passes turns the row's (M, S) into M + k (leading-one detection).
    Pass 2 reads the row back and emits 2**P >> (M + k - c). With the output always ready
    it sustains one element per cycle in and out; a row's first probability leaves 3 cycles
    after its last score is accepted.
    """

    def __init__(self, **params):
        p = BLOCK.check(params)
        self.row_length, self.score_width, self.frac_bits = p.row_length, p.score_width, p.frac_bits
        self.out_frac_bits, self.rounding = p.out_frac_bits, p.rounding
        super().__init__(BLOCK.signature(p))

    def elaborate(self, platform):
        m = Module()
        prec = self.out_frac_bits
        one = 1 << prec
        # ceil(x) of a W-bit score with F fractional bits needs W - F + 1 signed bits.
        ceil_shape = signed(self.score_width - self.frac_bits + 1)
        ceil = Signal(ceil_shape)
        m.d.comb += ceil.eq((self.i_stream.payload + ((1 << self.frac_bits) - 1)) >> self.frac_bits)
        # One cycle between the passes turns a row's sum into k (see below).
        p = TwoPass(m, self.i_stream, self.o_stream, group=self.row_length, channels=1, latency=1,
                    memory_name="rows", store=(ceil, ceil_shape))

        # Pass 1: the running maximum and sum, from one subtraction d = c - m. At or above
        # the maximum (d >= 0) the sum shifts right by d and one is added; below it, one
        # shifts right by -d, which is (one >> 1) >> ~d (~d = -d - 1: no negation), and the
        # sum is added. Either way one shifter, by d or ~d, and one adder.
        sum_shape = unsigned((self.row_length << prec).bit_length())
        a_max, new_max = Signal(ceil_shape), Signal(ceil_shape)
        a_sum, new_sum = Signal(sum_shape), Signal(sum_shape)
        diff = Signal(signed(ceil_shape.width + 1))
        at_or_above = Signal()
        m.d.comb += [
            diff.eq(ceil - a_max),
            at_or_above.eq(p.first | (diff >= 0)),
            new_max.eq(Mux(at_or_above, ceil, a_max)),
        ]
        # A shift past the sum's width empties it: the amount is capped to stay small.
        width = sum_shape.width
        dist = Mux(at_or_above, diff, ~diff).as_unsigned()
        dist = Mux(dist >= width, width, dist)[:width.bit_length()]
        shifted = Mux(at_or_above, Mux(p.first, 0, a_sum), Const(one >> 1, sum_shape))
        m.d.comb += new_sum.eq((shifted >> dist) + Mux(at_or_above, one, a_sum))
        p.accumulate(a_max, new_max)
        p.accumulate(a_sum, new_sum)
        # M + k, computed in a register stage between the passes, off pass 1's path; k <=
        # bit_length(N), which may outgrow a narrow score's ceiling.
        handed = p.hand_over({"max": (new_max, ceil_shape), "sum": (new_sum, sum_shape)})
        base_shape = signed(max(ceil_shape.width, self.row_length.bit_length() + 1) + 1)
        row = stream.Signature(data.StructLayout({"base": base_shape})).create(path=("row",))
        stage = OutputRegister(m, row)
        m.d.comb += handed.ready.eq(stage.free)
        with m.If(handed.valid & stage.free):
            stage.load(handed.payload.max + self._sum_power(m, handed.payload.sum))
        row_base = p.take(row).base

        # Pass 2: p = one >> (M + k - c), 0 past P.
        shift = Signal(unsigned(base_shape.width + 1))
        m.d.comb += shift.eq((row_base - p.stored).as_unsigned())
        p.emit(Mux(shift <= prec, Const(one, prec + 1) >> shift[:(prec + 1).bit_length()], 0))
        p.build()
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
