"""BSPN generator: a streaming bit-shifting power norm."""
from __future__ import annotations

import numpy as np
from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sorbet_hw.hw.two_pass import TwoPass
from sorbet_hw.model.bspn import (DEFAULT_IN_WIDTH, DEFAULT_NORM_FRAC_BITS, DEFAULT_OUT_WIDTH,
                        GAMMA_SHIFT_LIMIT, check_bspn_params)
from sorbet_hw.model.params import signed_range

__all__ = ["BSPN"]


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

    def __init__(self, *, channels: int = 32, groups: int = 4, in_width: int = DEFAULT_IN_WIDTH,
                 norm_frac_bits: int = DEFAULT_NORM_FRAC_BITS, out_width: int = DEFAULT_OUT_WIDTH,
                 gamma_shift=None, beta=None):
        gamma_shift = [0] * channels if gamma_shift is None else [int(g) for g in gamma_shift]
        beta = [0] * channels if beta is None else [int(b) for b in beta]
        check_bspn_params(channels=channels, groups=groups, in_width=in_width,
                          norm_frac_bits=norm_frac_bits, out_width=out_width,
                          gamma_shift=np.array(gamma_shift), beta=np.array(beta))
        self.channels = channels
        self.groups = groups
        self.group_size = channels // groups
        self.in_width = in_width
        self.norm_frac_bits = norm_frac_bits
        self.out_width = out_width
        self.gamma_shift = gamma_shift
        self.beta = beta
        super().__init__({
            "i_stream": In(stream.Signature(signed(in_width))),
            "o_stream": Out(stream.Signature(signed(out_width))),
        })

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
