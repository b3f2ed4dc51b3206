"""PTsoftmax generator: a streaming power-of-two softmax."""
from __future__ import annotations

from amaranth import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sorbet_hw.hw.block import Block, Stream
from sorbet_hw.hw.plumbing import OutputRegister, wrapped_increment
from sorbet_hw.model.ptsoftmax import PARAMS, ptsoftmax

__all__ = ["PTSoftmax", "BLOCK", "ROW_PORTS"]

# The ports of a row of scores, shared with the baseline `hw.softmax`.
ROW_PORTS = {
    "i_stream": Stream(In, lambda p: signed(p.score_width), vector=("row_length",)),
    "o_stream": Stream(Out, lambda p: unsigned(p.out_frac_bits + 1)),
}

BLOCK = Block(
    "ptsoftmax", "power-of-two softmax over rows of scores (max, ceiling, shifts)",
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
    Three stages, each a pass over one row, run concurrently on three rows held in a
    circular buffer of 2N + 2 entries with one write and two synchronous read ports (block
    RAM on an FPGA): *max* (stores c = ceil(x) while tracking the maximum), *sum*
    (accumulates 2**P >> (m - c), then a leading-one detection gives k) and *output*
    (emits 2**P >> (m - c + k)). An entry is free again once *output* has read it, so *max*
    writes a row into the entries of the one being emitted. With the output always ready it
    sustains one element per cycle in and out; the first probability of a row leaves N + 2
    cycles after the row's last score is accepted.
    """

    def __init__(self, **params):
        p = BLOCK.check(params)
        self.row_length, self.score_width, self.frac_bits = p.row_length, p.score_width, p.frac_bits
        self.out_frac_bits, self.rounding = p.out_frac_bits, p.rounding
        # ceil(x) of a W-bit score with F fractional bits needs W - F + 1 signed bits.
        self._ceil_shape = signed(p.score_width - p.frac_bits + 1)
        super().__init__(BLOCK.signature(p))

    # -- the arithmetic; the row pipeline below is shared with the baseline `hw.softmax` --
    @property
    def _stored_shape(self):
        return self._ceil_shape

    @property
    def _sum_shape(self):
        return unsigned((self.row_length << self.out_frac_bits).bit_length())

    @property
    def _constant_shape(self):
        return unsigned((self._sum_shape.width + 1).bit_length())

    def _setup(self, m) -> None:
        pass

    def _stored(self, m, payload):
        """What a row slot keeps of a score: c = ceil(x), computed exactly by a shift."""
        return (payload + ((1 << self.frac_bits) - 1)) >> self.frac_bits

    def _term(self, m, dist, stage: str):
        prec = self.out_frac_bits
        return Mux(dist <= prec, Const(1 << prec, self._sum_shape) >> dist, 0)

    def _row_constant(self, m, total):
        """What the *sum* stage hands over at a row's end: here k itself."""
        return self._sum_power(m, total)

    def _row_unit(self):
        """A stream component turning the handed-over value into the row's constant over
        several cycles (the baseline's divider), or None: the value is the constant."""
        return None

    def _output(self, m, dist, constant):
        prec = self.out_frac_bits
        shift = Signal(unsigned(max(len(dist), len(constant)) + 1))
        m.d.comb += shift.eq(dist + constant)
        return Mux(shift <= prec, Const(1 << prec, prec + 1) >> shift, 0)

    def elaborate(self, platform):
        m = Module()
        n = self.row_length
        self._setup(m)
        stored_shape = self._stored_shape
        unit = self._row_unit()
        latency = unit.cycles if unit is not None else 0
        # A circular buffer: the *max* stage writes a row while *sum* reads the previous one
        # and *output* the one before; a row's constant takes `latency` cycles more. Two rows
        # and that latency, plus the hand-over cycles, keep the input flowing.
        depth = 2 * n + latency + 2
        m.submodules.rows = rows = Memory(shape=stored_shape, depth=depth, init=[])
        write = rows.write_port()
        # Synchronous reads, as block RAM has. A one-element row is read in the cycle after
        # it was written, hence the bypass then.
        bypass = (write,) if n == 1 else ()
        sum_read = rows.read_port(transparent_for=bypass)
        out_read = rows.read_port(transparent_for=bypass)

        ptr_shape = range(depth)
        idx_shape = range(n)
        dist_shape = unsigned(stored_shape.width)
        sum_shape = self._sum_shape
        k_shape = self._constant_shape

        # Every stage handles the rows in order, so each walks the buffer with its own
        # pointer: no slot bases, no address adders.
        def advance(ptr):
            return wrapped_increment(ptr, depth)

        # Hand-over register from *max* to *sum*: a finished row's maximum.
        ab_full, ab_max = Signal(), Signal(stored_shape)
        # From *sum* to *output*: a stream of (row constant, row maximum), through the
        # baseline's divider or a register.
        if unit is not None:
            m.submodules.row_constant = unit
            into, out_of = unit.i_stream, unit.o_stream
        else:
            into, out_of = self._register_stage(m, k_shape, stored_shape)

        # Stage "max": store ceil(x), track the row maximum.
        a_ptr, a_idx, a_max = Signal(ptr_shape), Signal(idx_shape), Signal(stored_shape)
        ceil = Signal(stored_shape)
        m.d.comb += ceil.eq(self._stored(m, self.i_stream.payload))
        row_max = Signal(stored_shape)
        m.d.comb += row_max.eq(Mux((a_idx == 0) | (ceil > a_max), ceil, a_max))

        # Stage "sum".
        b_busy, b_ptr, b_idx = Signal(), Signal(ptr_shape), Signal(idx_shape)
        b_max, b_sum = Signal(stored_shape), Signal(sum_shape)
        b_cur_max = Mux(b_busy, b_max, ab_max)
        b_cur_idx = Mux(b_busy, b_idx, 0)
        b_last = b_cur_idx == n - 1
        b_active = b_busy | ab_full

        # Stage "output".
        c_busy, c_ptr, c_idx = Signal(), Signal(ptr_shape), Signal(idx_shape)
        c_max, c_k = Signal(stored_shape), Signal(k_shape)
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
        m.d.comb += [write.addr.eq(a_ptr), write.data.eq(ceil), write.en.eq(a_step)]
        with m.If(b_take):
            m.d.sync += ab_full.eq(0)
        with m.If(a_step):
            m.d.sync += [a_max.eq(row_max), a_ptr.eq(advance(a_ptr))]
            with m.If(a_idx == n - 1):
                m.d.sync += [a_idx.eq(0), ab_full.eq(1), ab_max.eq(row_max)]
            with m.Else():
                m.d.sync += a_idx.eq(a_idx + 1)

        # -- sum stage
        dist = Signal(dist_shape)
        term = Signal(sum_shape)
        total = Signal(sum_shape)
        m.d.comb += [
            dist.eq(b_cur_max - sum_read.data),
            term.eq(self._term(m, dist, "sum")),
            total.eq(Mux(b_busy, b_sum, 0) + term),
            into.payload.value.eq(self._row_constant(m, total)),
            into.payload.tag.eq(b_cur_max),
        ]
        with m.If(b_step):
            with m.If(b_last):
                m.d.sync += b_busy.eq(0)
            with m.Else():
                m.d.sync += [b_busy.eq(1), b_idx.eq(b_cur_idx + 1), b_max.eq(b_cur_max),
                             b_sum.eq(total)]

        # -- output stage
        out_dist = Signal(dist_shape)
        m.d.comb += out_dist.eq((c_cur_max - out_read.data).as_unsigned())
        out_value = self._output(m, out_dist, c_cur_k)
        with m.If(c_step):
            output.load(out_value)
            with m.If(c_last):
                m.d.sync += c_busy.eq(0)
            with m.Else():
                m.d.sync += [c_busy.eq(1), c_idx.eq(c_cur_idx + 1), c_max.eq(c_cur_max),
                             c_k.eq(c_cur_k)]
        return m

    @staticmethod
    def _register_stage(m, value_shape, tag_shape):
        """A one-entry stream register: (into, out_of) stream interfaces."""
        into = stream.Signature(data.StructLayout({"value": value_shape, "tag": tag_shape})).create()
        out_of = stream.Signature(data.StructLayout({"result": value_shape, "tag": tag_shape})).create()
        output = OutputRegister(m, out_of)
        m.d.comb += into.ready.eq(output.free)
        with m.If(into.valid & into.ready):
            output.load(into.payload.as_value())      # the same fields, in the same order
        return into, out_of

    def _sum_power(self, m, total):
        """k of :func:`model.ptsoftmax.sum_power`, by leading-one detection on the row sum."""
        prec = self.out_frac_bits
        width = len(total)
        probe = Signal(width)
        if self.rounding == "up":
            m.d.comb += probe.eq(total - 1)          # bit_length(S - 1)
        else:
            m.d.comb += probe.eq(total)              # bit_length(S) - 1 + (bit below the lead)
        bits = Signal(range(width + 2))
        for i in range(width):                       # priority: the highest set bit wins
            with m.If(probe[i]):
                if self.rounding == "up":
                    m.d.comb += bits.eq(i + 1)
                else:
                    m.d.comb += bits.eq(i + (probe[i - 1] if i > 0 else 0))
        return bits - prec
