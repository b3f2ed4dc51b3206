"""LayerNorm generator: the conventional integer baseline of BSPN."""
from __future__ import annotations

import numpy as np
from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sorbet_hw.hw.block import Block, Stream
from sorbet_hw.hw.sequential import SequentialDivider, SequentialSquareRoot, steps_per_cycle
from sorbet_hw.hw.two_pass import TwoPass
from sorbet_hw.model.layernorm import PARAMS, layernorm_fixed, sd_width
from sorbet_hw.model.params import signed_range

__all__ = ["LayerNorm", "BLOCK"]


def _complete(params: dict) -> dict:
    """Without an affine part: gamma 1.0, beta 0."""
    channels, frac = params["channels"], params["gamma_frac_bits"]
    defaults = {"gamma": np.full(channels, 1 << frac, np.int64) if isinstance(frac, int) else None,
                "beta": np.zeros(channels, np.int64)}
    return {**params, **{k: v for k, v in defaults.items() if params[k] is None}}


BLOCK = Block(
    "layernorm", "conventional integer LayerNorm (one square root and one reciprocal a token)",
    params=PARAMS,
    ports={"i_stream": Stream(In, lambda p: signed(p.in_width), vector=("channels",)),
           "o_stream": Stream(Out, lambda p: signed(p.out_width))},
    reference=layernorm_fixed, complete=_complete, baseline_of="bspn", multiplies=True)


@BLOCK.generates
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
    BSPN's two passes (:class:`hw.two_pass.TwoPass`), with LayerNorm's arithmetic as
    integer-only BERT (I-BERT) builds it: pass 1 accumulates sum x and sum x**2 (a squarer)
    and forms C**2 variance at a token's end; a sequential integer square root and a
    sequential divider (:mod:`hw.sequential`), each taking as few digits a cycle as finish
    within a token's C cycles, give the reciprocal r of C * sigma once a token; pass 2
    computes ((C x - sum x) * r >> D) * gamma >> G + beta (two multipliers an element, no
    divider). One value per cycle in and out, sustained; the two units add their cycles to
    a token's latency and to the buffer's depth (C + their cycles + 2 values).
    """

    def __init__(self, **params):
        p = BLOCK.check(params)
        self.channels, self.in_width, self.norm_frac_bits = p.channels, p.in_width, p.norm_frac_bits
        self.out_width, self.gamma, self.beta = p.out_width, p.gamma, p.beta
        self.gamma_width, self.gamma_frac_bits = p.gamma_width, p.gamma_frac_bits
        super().__init__(BLOCK.signature(p))

    def elaborate(self, platform):
        m = Module()
        C, width = self.channels, self.in_width
        D = sd_width(C, width)
        s1_shape = signed((C << (width - 1)).bit_length() + 1)
        s2_shape = unsigned((C << (2 * width - 2)).bit_length() + 1)
        variance_shape = unsigned(2 * D + 2)

        # Once a token, within its C cycles: sd = isqrt(C sum x^2 - (sum x)^2), then
        # r = 2^(F+D) // max(sd, 1), each a sequential unit fast enough to keep up.
        sqrt = SequentialSquareRoot(value_width=variance_shape.width, tag_shape=s1_shape,
                                    steps_per_cycle=steps_per_cycle((variance_shape.width + 1) // 2, C))
        divide = SequentialDivider(numerator=1 << (self.norm_frac_bits + D),
                                   divisor_width=sqrt.digits, tag_shape=s1_shape,
                                   steps_per_cycle=steps_per_cycle(self.norm_frac_bits + D + 1, C))
        m.submodules.sqrt, m.submodules.divide = sqrt, divide
        p = TwoPass(m, self.i_stream, self.o_stream, group=C, channels=C,
                    latency=sqrt.cycles + divide.cycles, memory_name="tokens")
        affine = data.StructLayout({"gamma": signed(self.gamma_width), "beta": signed(self.out_width)})
        m.submodules.affine = affine_rom = Memory(shape=affine, depth=C, init=[
            {"gamma": int(g), "beta": int(b)} for g, b in zip(self.gamma, self.beta)])
        coeff = affine_rom.read_port(domain="comb")

        # Pass 1: sum x, sum x^2, and C^2 variance at the token's end.
        a_s1, a_s2 = Signal(s1_shape), Signal(s2_shape)
        x = p.x
        s1, s2 = Signal(s1_shape), Signal(s2_shape)
        m.d.comb += [s1.eq(Mux(p.first, 0, a_s1) + x),
                     s2.eq(Mux(p.first, 0, a_s2) + (x * x).as_unsigned())]
        p.accumulate(a_s1, s1)
        p.accumulate(a_s2, s2)
        variance = Signal(variance_shape)
        m.d.comb += variance.eq(C * s2 - s1 * s1)
        handed = p.hand_over({"s1": (s1, s1_shape), "variance": (variance, variance_shape)})
        sd = sqrt.o_stream.payload.result
        m.d.comb += [
            sqrt.i_stream.valid.eq(handed.valid),
            sqrt.i_stream.payload.value.eq(handed.payload.variance),
            sqrt.i_stream.payload.tag.eq(handed.payload.s1),
            handed.ready.eq(sqrt.i_stream.ready),
            divide.i_stream.valid.eq(sqrt.o_stream.valid),
            divide.i_stream.payload.value.eq(Mux(sd == 0, 1, sd)),
            divide.i_stream.payload.tag.eq(sqrt.o_stream.payload.tag),
            sqrt.o_stream.ready.eq(divide.i_stream.ready),
        ]
        figures = p.take(divide.o_stream)
        cur_s1, cur_r = figures.tag, figures.result

        # Pass 2: y = sat((((C x - sum x) r >> D) gamma >> G) + beta).
        r_width = len(cur_r)
        centered = Signal(signed(s1_shape.width + C.bit_length() + 1))
        normalized = Signal(signed(centered.shape().width + r_width + 1))
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
