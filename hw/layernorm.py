"""LayerNorm generator: the conventional integer baseline of BSPN."""
from __future__ import annotations

import numpy as np
from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from model.layernorm import (DEFAULT_GAMMA_FRAC_BITS, DEFAULT_GAMMA_WIDTH, check_layernorm_params,
                             sd_width)
from model.params import signed_range

__all__ = ["LayerNorm"]


class LayerNorm(wiring.Component):
    """Integer LayerNorm over tokens of ``channels`` values, as :func:`model.layernorm.layernorm_fixed`.

    Parameters
    ----------
    channels : int
        Channels C of a token; every C consecutive inputs form one token.
    in_width, norm_frac_bits, out_width : int
        As :class:`hw.bspn.BSPN`.
    gamma, beta : arrays of int, shape (C,)
        Affine scale (signed ``gamma_width`` bits, ``gamma_frac_bits`` fractional) and offset.
        Defaults: 1.0 and 0.

    Ports
    -----
    i_stream : In(stream.Signature(signed(in_width)))
    o_stream : Out(stream.Signature(signed(out_width)))

    Architecture, latency and throughput
    ------------------------------------
    BSPN's two stages over a two-token memory, with LayerNorm's arithmetic: the *statistics*
    stage accumulates sum x and sum x**2 (a squarer); at a token's end a combinational integer
    square root and a divider give the reciprocal of C * sigma; the *output* stage computes
    ((C x - sum x) * r >> D) * gamma >> G + beta (two multipliers). One value per cycle in
    and out; the square root and divider are single-cycle, so they set Fmax.
    """

    def __init__(self, *, channels: int = 32, in_width: int = 12, norm_frac_bits: int = 4,
                 out_width: int = 8, gamma=None, beta=None, gamma_width: int = DEFAULT_GAMMA_WIDTH,
                 gamma_frac_bits: int = DEFAULT_GAMMA_FRAC_BITS):
        gamma = np.full(channels, 1 << gamma_frac_bits, np.int64) if gamma is None else np.asarray(gamma, np.int64)
        beta = np.zeros(channels, np.int64) if beta is None else np.asarray(beta, np.int64)
        check_layernorm_params(channels=channels, in_width=in_width, norm_frac_bits=norm_frac_bits,
                               out_width=out_width, gamma_width=gamma_width,
                               gamma_frac_bits=gamma_frac_bits, gamma=gamma, beta=beta)
        self.channels, self.in_width, self.norm_frac_bits = channels, in_width, norm_frac_bits
        self.out_width, self.gamma, self.beta = out_width, gamma, beta
        self.gamma_width, self.gamma_frac_bits = gamma_width, gamma_frac_bits
        super().__init__({
            "i_stream": In(stream.Signature(signed(in_width))),
            "o_stream": Out(stream.Signature(signed(out_width))),
        })

    def elaborate(self, platform):
        m = Module()
        C, width = self.channels, self.in_width
        D = sd_width(C, width)
        m.submodules.tokens = tokens = Memory(shape=signed(width), depth=2 * C, init=[])
        write = tokens.write_port()
        read = tokens.read_port(domain="comb")
        affine = data.StructLayout({"gamma": signed(self.gamma_width), "beta": signed(self.out_width)})
        m.submodules.affine = affine_rom = Memory(shape=affine, depth=C, init=[
            {"gamma": int(g), "beta": int(b)} for g, b in zip(self.gamma, self.beta)])
        coeff = affine_rom.read_port(domain="comb")

        addr_shape, idx_shape = range(2 * C), range(C)
        s1_shape = signed((C << (width - 1)).bit_length() + 1)
        s2_shape = unsigned((C << (2 * width - 2)).bit_length() + 1)
        r_shape = unsigned(self.norm_frac_bits + D + 1)

        # Stage "statistics".
        a_base, a_idx = Signal(addr_shape), Signal(idx_shape)
        a_s1, a_s2 = Signal(s1_shape), Signal(s2_shape)
        x = self.i_stream.payload
        s1, s2 = Signal(s1_shape), Signal(s2_shape)
        m.d.comb += [s1.eq(Mux(a_idx == 0, 0, a_s1) + x),
                     s2.eq(Mux(a_idx == 0, 0, a_s2) + (x * x).as_unsigned())]
        variance = Signal(unsigned(2 * D + 2))
        m.d.comb += variance.eq(C * s2 - s1 * s1)
        sd = self._isqrt(m, variance)
        reciprocal = Signal(r_shape)
        m.d.comb += reciprocal.eq((1 << (self.norm_frac_bits + D)) // Mux(sd == 0, 1, sd))

        ab_full, ab_base, ab_s1, ab_r = Signal(), Signal(addr_shape), Signal(s1_shape), Signal(r_shape)

        # Stage "output".
        b_busy, b_base, b_idx = Signal(), Signal(addr_shape), Signal(idx_shape)
        b_s1, b_r = Signal(s1_shape), Signal(r_shape)
        channel = Signal(range(C))
        cur_base = Mux(b_busy, b_base, ab_base)
        cur_s1 = Mux(b_busy, b_s1, ab_s1)
        cur_r = Mux(b_busy, b_r, ab_r)
        cur_idx = Mux(b_busy, b_idx, 0)
        b_last = cur_idx == C - 1

        out_free = ~self.o_stream.valid | self.o_stream.ready
        b_take = ab_full & ~b_busy & out_free
        b_step = (b_busy & out_free) | b_take
        a_step = self.i_stream.valid & self.i_stream.ready
        in_flight = Signal(range(3))
        m.d.comb += self.i_stream.ready.eq((~ab_full | b_take) & ((a_idx != 0) | (in_flight != 2)))
        m.d.sync += in_flight.eq(in_flight + (a_step & (a_idx == 0)) - (b_step & b_last))

        m.d.comb += [write.addr.eq(a_base + a_idx), write.data.eq(x), write.en.eq(a_step)]
        with m.If(b_take):
            m.d.sync += ab_full.eq(0)
        with m.If(a_step):
            m.d.sync += [a_s1.eq(s1), a_s2.eq(s2)]
            with m.If(a_idx == C - 1):
                m.d.sync += [a_idx.eq(0), a_base.eq(Mux(a_base == 0, C, 0)), ab_full.eq(1),
                             ab_base.eq(a_base), ab_s1.eq(s1), ab_r.eq(reciprocal)]
            with m.Else():
                m.d.sync += a_idx.eq(a_idx + 1)

        centered = Signal(signed(s1_shape.width + C.bit_length() + 1))
        normalized = Signal(signed(centered.shape().width + r_shape.width + 1))
        x_hat = Signal(signed(normalized.shape().width - D))
        scaled = Signal(signed(x_hat.shape().width + self.gamma_width))
        biased = Signal(signed(scaled.shape().width + 1))
        lo, hi = signed_range(self.out_width)
        m.d.comb += [
            read.addr.eq(cur_base + cur_idx),
            coeff.addr.eq(channel),
            centered.eq(C * read.data - cur_s1),
            normalized.eq(centered * cur_r),
            x_hat.eq(normalized >> D),
            scaled.eq((x_hat * coeff.data.gamma) >> self.gamma_frac_bits),
            biased.eq(scaled + coeff.data.beta),
        ]
        with m.If(out_free):
            m.d.sync += self.o_stream.valid.eq(0)
        with m.If(b_step):
            m.d.sync += [
                self.o_stream.valid.eq(1),
                self.o_stream.payload.eq(Mux(biased > hi, hi, Mux(biased < lo, lo, biased))),
                channel.eq(Mux(channel == C - 1, 0, channel + 1)),
            ]
            with m.If(b_last):
                m.d.sync += b_busy.eq(0)
            with m.Else():
                m.d.sync += [b_busy.eq(1), b_idx.eq(cur_idx + 1), b_base.eq(cur_base),
                             b_s1.eq(cur_s1), b_r.eq(cur_r)]
        return m

    @staticmethod
    def _isqrt(m, value):
        """floor(sqrt(value)), digit by digit, unrolled (one comparison-subtraction a bit)."""
        width = len(value) + (len(value) % 2)
        rem, root = value, 0
        bit_pos = width - 2
        for i in range(width // 2):
            trial = Signal(unsigned(width + 1), name=f"isqrt_trial{i}")
            m.d.comb += trial.eq(root + (1 << bit_pos))
            ge = rem >= trial
            new_rem = Signal(unsigned(width), name=f"isqrt_rem{i}")
            new_root = Signal(unsigned(width), name=f"isqrt_root{i}")
            m.d.comb += [new_rem.eq(Mux(ge, rem - trial, rem)),
                         new_root.eq(Mux(ge, (root >> 1) + (1 << bit_pos), root >> 1))]
            rem, root = new_rem, new_root
            bit_pos -= 2
        return root
