"""Softmax generator: the conventional fixed-point baseline of PTsoftmax."""
from __future__ import annotations

from amaranth import Mux, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory

from sorbet_hw.hw.block import Block
from sorbet_hw.hw.ptsoftmax import ROW_PORTS, PTSoftmax
from sorbet_hw.hw.sequential import SequentialDivider, steps_per_cycle
from sorbet_hw.model.softmax import PARAMS, exp_table, softmax_fixed, sum_width

__all__ = ["Softmax", "BLOCK"]

BLOCK = Block(
    "softmax", "conventional fixed-point softmax (exponential table, one reciprocal a row)",
    params=PARAMS, ports=ROW_PORTS, reference=softmax_fixed, baseline_of="ptsoftmax", multiplies=True,
    complete=lambda p: {**p, "exp_bits": p["out_frac_bits"] if p["exp_bits"] is None else p["exp_bits"]})


@BLOCK.generates
class Softmax(PTSoftmax):
    """Fixed-point softmax over rows of ``row_length`` scores, as :func:`model.softmax.softmax_fixed`.

    Parameters
    ----------
    row_length, score_width, frac_bits, out_frac_bits : int
        As :class:`hw.ptsoftmax.PTSoftmax`.
    exp_bits : int
        Fractional bits E of the exponential table's entries. Default: ``out_frac_bits``.

    Ports
    -----
    i_stream : In(stream.Signature(signed(score_width)))
    o_stream : Out(stream.Signature(unsigned(out_frac_bits + 1)))

    Architecture, latency and throughput
    ------------------------------------
    PTsoftmax's three-stage row pipeline (same control, same one element per cycle), with the
    conventional arithmetic, as hls4ml and I-BERT build it: the buffer keeps the whole score,
    the *sum* stage looks e = EXP[m - x] up in a table and accumulates it, the row's
    reciprocal 2**(P + W) // S comes from a sequential divider
    (:class:`hw.sequential.SequentialDivider`) taking ceil((P + W + 1) / N) quotient bits a
    cycle, so that it finishes within the next row's N cycles, and the *output* stage
    multiplies e by it: no divider in the per-element path. The divider adds its cycles,
    ceil((P + W + 1) / steps), to the latency of a row and to the buffer's depth.
    """

    def __init__(self, **params):
        p = BLOCK.check(params)
        self.exp_bits = p.exp_bits
        self._table = exp_table(p.frac_bits, p.exp_bits)
        self._W = sum_width(p.row_length, p.exp_bits)
        wiring.Component.__init__(self, BLOCK.signature(p))
        self.row_length, self.score_width = p.row_length, p.score_width
        self.frac_bits, self.out_frac_bits = p.frac_bits, p.out_frac_bits

    @property
    def _stored_shape(self):
        return signed(self.score_width)

    @property
    def _sum_shape(self):
        return unsigned(self._W)

    @property
    def _constant_shape(self):
        return unsigned(self.out_frac_bits + self._W + 1)

    def _setup(self, m) -> None:
        m.submodules.exp_table = table = Memory(
            shape=unsigned(self.exp_bits + 1), depth=len(self._table), init=self._table)
        self._lookups = {stage: table.read_port(domain="comb") for stage in ("sum", "output")}

    def _stored(self, m, payload):
        return payload

    def _exp(self, m, dist, stage: str):
        """EXP[dist], zero past the table's end (its last entry is the last non-zero one)."""
        port = self._lookups[stage]
        m.d.comb += port.addr.eq(dist)
        return Mux(dist < len(self._table), port.data, 0)

    def _term(self, m, dist, stage: str):
        return self._exp(m, dist, "sum")

    def _row_constant(self, m, total):
        return total

    def _row_unit(self):
        # One reciprocal a row, within the row's own N cycles: a sequential divider taking
        # as few quotient bits a cycle as keep up with the rows.
        digits = self.out_frac_bits + self._W + 1
        return SequentialDivider(numerator=1 << (self.out_frac_bits + self._W), divisor_width=self._W,
                                 tag_shape=self._stored_shape,
                                 steps_per_cycle=steps_per_cycle(digits, self.row_length))

    def _output(self, m, dist, constant):
        return (self._exp(m, dist, "output") * constant) >> self._W
