"""BSPN generator: a streaming bit-shifting power norm."""
from __future__ import annotations

import numpy as np
from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sorbet_hw.hw.block import Block, Stream
from sorbet_hw.hw.two_pass import TwoPass
from sorbet_hw.model.bspn import GAMMA_SHIFT_LIMIT, PARAMS, bspn
from sorbet_hw.model.params import signed_range

__all__ = ["BSPN", "BLOCK"]


def _complete(params: dict) -> dict:
    """Without an affine part: gamma_shift and beta zero."""
    return {**params, **{name: np.zeros(params["channels"], np.int64)
                         for name in ("gamma_shift", "beta") if params[name] is None}}


BLOCK = Block(
    "bspn", "bit-shifting power norm (a power-of-two scale a group, no divide or square root)",
    params=PARAMS,
    ports={"i_stream": Stream(In, lambda p: signed(p.in_width), vector=("channels",)),
           "o_stream": Stream(Out, lambda p: signed(p.out_width))},
    reference=bspn, complete=_complete)


@BLOCK.generates
class BSPN(wiring.Component):
    """Bit-shifting power norm of tokens of ``channels`` values, as :func:`model.bspn.bspn`.

    Parameters
    ----------
    channels : int
        Channels per token, C (1 .. 65536). Every C consecutive input elements form a token.
    groups : int
        Contiguous channel groups per token; must divide C. Each group of n = C / groups
        channels gets its own power-of-two scale.
    in_width, norm_frac_bits, out_width : int
        Signed input width, fractional bits of the normalized value, signed output width.
    gamma_shift, beta : sequence of int, one per channel
        Affine part: y = shift(x_hat, gamma_shift[c]) + beta[c], gamma_shift in -8 .. 8,
        beta within out_width signed. Held in a ROM. Default: all zero.

    Ports
    -----
    i_stream : In(stream.Signature(signed(in_width)))
        Channel values, token after token.
    o_stream : Out(stream.Signature(signed(out_width)))
        Normalized values in the same order, saturated to out_width bits.

    Architecture, latency and throughput
    ------------------------------------
    The two passes of :class:`hw.two_pass.TwoPass` over one group each, on a circular buffer
    of n + 2 entries: pass 1 stores the group while summing |x|, then compares the sum with
    the thresholds n << j to get the shift s;
    pass 2 emits clamp(shift((x << F) >> s, gamma) + beta). With the output always ready it
    sustains one element per cycle; a group's first output leaves 2 cycles after its last
    input is accepted.
    """

    def __init__(self, **params):
        p = BLOCK.check(params)
        self.channels, self.groups, self.group_size = p.channels, p.groups, p.channels // p.groups
        self.in_width, self.norm_frac_bits, self.out_width = p.in_width, p.norm_frac_bits, p.out_width
        self.gamma_shift, self.beta = p.gamma_shift.tolist(), p.beta.tolist()
        super().__init__(BLOCK.signature(p))

    def elaborate(self, platform):
        m = Module()
        n, width = self.group_size, self.in_width
        p = TwoPass(m, self.i_stream, self.o_stream, group=n, channels=self.channels)

        # Per-channel affine: the shift is split into a left and a right amount so that the
        # datapath needs no signed shift.
        affine = data.StructLayout({
            "left": unsigned(GAMMA_SHIFT_LIMIT.bit_length()),
            "right": unsigned(GAMMA_SHIFT_LIMIT.bit_length()),
            "beta": signed(self.out_width),
        })
        m.submodules.affine = affine_rom = Memory(shape=affine, depth=self.channels, init=[
            {"left": max(g, 0), "right": max(-g, 0), "beta": b}
            for g, b in zip(self.gamma_shift, self.beta)])
        coeff = affine_rom.read_port(domain="comb")

        # Pass 1: sum |x| over the group; its shift is s = #{j : sum > n << j}.
        sum_shape = unsigned((n << (width - 1)).bit_length())
        a_sum, total = Signal(sum_shape), Signal(sum_shape)
        x = p.x
        m.d.comb += total.eq(Mux(p.first, 0, a_sum) + Mux(x < 0, -x, x).as_unsigned())
        p.accumulate(a_sum, total)
        group_shift = Signal(range(width))
        m.d.comb += group_shift.eq(sum(total > (n << j) for j in range(width - 1)))
        shift = p.take(p.hand_over({"shift": (group_shift, range(width))})).shift

        # Pass 2: y = sat(((x << F) >> s) << left >> right + beta).
        normalized = Signal(signed(width + self.norm_frac_bits))
        scaled = Signal(signed(width + self.norm_frac_bits + GAMMA_SHIFT_LIMIT))
        biased = Signal(signed(len(scaled) + 1))
        lo, hi = signed_range(self.out_width)
        m.d.comb += [
            coeff.addr.eq(p.channel),
            normalized.eq((p.stored << self.norm_frac_bits) >> shift),
            scaled.eq((normalized << coeff.data.left) >> coeff.data.right),
            biased.eq(scaled + coeff.data.beta),
        ]
        p.emit(Mux(biased > hi, hi, Mux(biased < lo, lo, biased)))
        p.build()
        return m
