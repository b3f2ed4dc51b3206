"""LayerNorm generator: the conventional integer baseline of BSPN."""
from __future__ import annotations

import numpy as np
from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.two_pass import TwoPass
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
    BSPN's two passes (:class:`hw.two_pass.TwoPass`) over a two-token memory, with
    LayerNorm's arithmetic: pass 1 accumulates sum x and sum x**2 (a squarer); at a token's
    end a combinational integer square root and a divider give the reciprocal of C * sigma;
    pass 2 computes ((C x - sum x) * r >> D) * gamma >> G + beta (two multipliers). One
    value per cycle in and out; the square root and divider are single-cycle, so they set
    Fmax.
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
        p = TwoPass(m, self.i_stream, self.o_stream, group=C, width=width, channels=C,
                    memory_name="tokens")
        affine = data.StructLayout({"gamma": signed(self.gamma_width), "beta": signed(self.out_width)})
        m.submodules.affine = affine_rom = Memory(shape=affine, depth=C, init=[
            {"gamma": int(g), "beta": int(b)} for g, b in zip(self.gamma, self.beta)])
        coeff = affine_rom.read_port(domain="comb")

        s1_shape = signed((C << (width - 1)).bit_length() + 1)
        s2_shape = unsigned((C << (2 * width - 2)).bit_length() + 1)
        r_shape = unsigned(self.norm_frac_bits + D + 1)

        # Pass 1: sum x, sum x^2; sd = isqrt(C sum x^2 - (sum x)^2), r = 2^(F+D) // sd.
        a_s1, a_s2 = Signal(s1_shape), Signal(s2_shape)
        x = p.x
        s1, s2 = Signal(s1_shape), Signal(s2_shape)
        m.d.comb += [s1.eq(Mux(p.first, 0, a_s1) + x),
                     s2.eq(Mux(p.first, 0, a_s2) + (x * x).as_unsigned())]
        p.accumulate(a_s1, s1)
        p.accumulate(a_s2, s2)
        variance = Signal(unsigned(2 * D + 2))
        m.d.comb += variance.eq(C * s2 - s1 * s1)
        sd = self._isqrt(m, variance)
        reciprocal = Signal(r_shape)
        m.d.comb += reciprocal.eq((1 << (self.norm_frac_bits + D)) // Mux(sd == 0, 1, sd))
        cur_s1 = p.carry(s1, s1_shape, "s1")
        cur_r = p.carry(reciprocal, r_shape, "r")

        # Pass 2: y = sat((((C x - sum x) r >> D) gamma >> G) + beta).
        centered = Signal(signed(s1_shape.width + C.bit_length() + 1))
        normalized = Signal(signed(centered.shape().width + r_shape.width + 1))
        x_hat = Signal(signed(normalized.shape().width - D))
        scaled = Signal(signed(x_hat.shape().width + self.gamma_width))
        biased = Signal(signed(scaled.shape().width + 1))
        lo, hi = signed_range(self.out_width)
        m.d.comb += [
            coeff.addr.eq(p.channel),
            centered.eq(C * p.stored - cur_s1),
            normalized.eq(centered * cur_r),
            x_hat.eq(normalized >> D),
            scaled.eq((x_hat * coeff.data.gamma) >> self.gamma_frac_bits),
            biased.eq(scaled + coeff.data.beta),
        ]
        p.emit(Mux(biased > hi, hi, Mux(biased < lo, lo, biased)))
        p.build()
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
