"""BSPN generator: a streaming bit-shifting power norm."""
from __future__ import annotations

import numpy as np
from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from model.bspn import (DEFAULT_IN_WIDTH, DEFAULT_NORM_FRAC_BITS, DEFAULT_OUT_WIDTH,
                        GAMMA_SHIFT_LIMIT, check_bspn_params)
from model.params import signed_range

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
    Two stages over one group each, on a 2 x n entry memory: *scale* stores the group while
    summing |x|, then compares the sum with the thresholds n << j to get the shift s;
    *output* emits clamp(shift((x << F) >> s, gamma) + beta). With the output always ready it
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
        m.submodules.groups = groups = Memory(shape=signed(width), depth=2 * n, init=[])
        write = groups.write_port()
        read = groups.read_port(domain="comb")

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

        addr_shape = range(2 * n)
        idx_shape = range(n)
        sum_shape = unsigned((n << (width - 1)).bit_length())
        shift_shape = range(width)

        # Stage "scale": store the group, sum |x|.
        a_base, a_idx, a_sum = Signal(addr_shape), Signal(idx_shape), Signal(sum_shape)
        x = self.i_stream.payload
        total = Signal(sum_shape)
        m.d.comb += total.eq(Mux(a_idx == 0, 0, a_sum) + Mux(x < 0, -x, x).as_unsigned())
        group_shift = Signal(shift_shape)
        m.d.comb += group_shift.eq(sum(total > (n << j) for j in range(width - 1)))

        # Hand-over register: a scaled group waiting for the output stage.
        ab_full, ab_base, ab_shift = Signal(), Signal(addr_shape), Signal(shift_shape)

        # Stage "output".
        b_busy, b_base, b_idx, b_shift = Signal(), Signal(addr_shape), Signal(idx_shape), Signal(shift_shape)
        channel = Signal(range(self.channels))
        cur_base = Mux(b_busy, b_base, ab_base)
        cur_shift = Mux(b_busy, b_shift, ab_shift)
        cur_idx = Mux(b_busy, b_idx, 0)
        b_last = cur_idx == n - 1

        out_free = ~self.o_stream.valid | self.o_stream.ready
        b_take = ab_full & ~b_busy & out_free
        b_step = (b_busy & out_free) | b_take
        a_step = self.i_stream.valid & self.i_stream.ready

        # Two slots: a new group starts only while fewer than two are in flight.
        in_flight = Signal(range(3))
        m.d.comb += self.i_stream.ready.eq((~ab_full | b_take) & ((a_idx != 0) | (in_flight != 2)))
        m.d.sync += in_flight.eq(in_flight + (a_step & (a_idx == 0)) - (b_step & b_last))

        m.d.comb += [write.addr.eq(a_base + a_idx), write.data.eq(x), write.en.eq(a_step)]
        with m.If(b_take):
            m.d.sync += ab_full.eq(0)
        with m.If(a_step):
            m.d.sync += a_sum.eq(total)
            with m.If(a_idx == n - 1):
                m.d.sync += [a_idx.eq(0), a_base.eq(Mux(a_base == 0, n, 0)),
                             ab_full.eq(1), ab_base.eq(a_base), ab_shift.eq(group_shift)]
            with m.Else():
                m.d.sync += a_idx.eq(a_idx + 1)

        normalized = Signal(signed(width + self.norm_frac_bits))
        scaled = Signal(signed(width + self.norm_frac_bits + GAMMA_SHIFT_LIMIT))
        biased = Signal(signed(len(scaled) + 1))
        lo, hi = signed_range(self.out_width)
        m.d.comb += [
            read.addr.eq(cur_base + cur_idx),
            coeff.addr.eq(channel),
            normalized.eq((read.data << self.norm_frac_bits) >> cur_shift),
            scaled.eq((normalized << coeff.data.left) >> coeff.data.right),
            biased.eq(scaled + coeff.data.beta),
        ]
        with m.If(out_free):
            m.d.sync += self.o_stream.valid.eq(0)
        with m.If(b_step):
            m.d.sync += [
                self.o_stream.valid.eq(1),
                self.o_stream.payload.eq(Mux(biased > hi, hi, Mux(biased < lo, lo, biased))),
                channel.eq(Mux(channel == self.channels - 1, 0, channel + 1)),
            ]
            with m.If(b_last):
                m.d.sync += b_busy.eq(0)
            with m.Else():
                m.d.sync += [b_busy.eq(1), b_idx.eq(cur_idx + 1), b_base.eq(cur_base),
                             b_shift.eq(cur_shift)]
        return m
