"""The conventional baseline of BSPN: an integer LayerNorm (mean, variance, square root, divide).

The single fixed-point definition checked by `hw.layernorm` and `sim.layernorm`. Per token
x[C] (signed ``in_width``-bit integers), in the style of integer-only BERT (I-BERT):

    s1 = sum x,  s2 = sum x**2
    v  = C * s2 - s1**2                    (= C**2 * variance, exact)
    sd = max(isqrt(v), 1)                  (= floor(C * sigma))
    r  = floor(2**(F + D) / sd)            D = bit length of the largest sd: one divide a token
    x_hat = ((C * x - s1) * r) >> D        ((x - mean) / sigma with F fractional bits)
    y  = clamp(((x_hat * gamma_c) >> G) + beta_c, signed out_width range)

with gamma_c signed ``gamma_width``-bit integers carrying G = ``gamma_frac_bits`` fractional
bits and beta_c at the output's scale.
"""
from __future__ import annotations

import math

import numpy as np

from sorbet_hw.model.params import Param, ParameterError, check_params, signed_range

DEFAULT_GAMMA_WIDTH = 8
DEFAULT_GAMMA_FRAC_BITS = 6


PARAMS = (
    Param("channels", 32, "channels a token, C", lo=2, hi=65536),
    Param("in_width", 12, "width of a signed input", lo=2, hi=24),
    Param("norm_frac_bits", 4, "fractional bits of the normalized value", lo=0, hi=16),
    Param("out_width", 8, "width of a signed output", lo=2, hi=32),
    Param("gamma", None, "per-channel scale (default 1.0)", shape=("channels",),
          lo="-(1 << (gamma_width - 1))", hi="(1 << (gamma_width - 1)) - 1"),
    Param("beta", None, "per-channel offset (default 0)", shape=("channels",),
          lo="-(1 << (out_width - 1))", hi="(1 << (out_width - 1)) - 1"),
    Param("gamma_width", DEFAULT_GAMMA_WIDTH, "width of a signed gamma", lo=2, hi=16),
    Param("gamma_frac_bits", DEFAULT_GAMMA_FRAC_BITS, "fractional bits of gamma", lo=0,
          hi="gamma_width - 1"),
)


def sd_width(channels: int, in_width: int) -> int:
    """Bits of the largest C * sigma: |x - mean| < 2**in_width."""
    return (channels << in_width).bit_length()


def isqrt(v: np.ndarray) -> np.ndarray:
    return np.array([math.isqrt(int(a)) for a in np.asarray(v).reshape(-1)],
                    dtype=np.int64).reshape(np.shape(v))


def layernorm_fixed(x, *, gamma=None, beta=None, in_width: int = 12, norm_frac_bits: int = 4,
                    out_width: int = 8, gamma_width: int = DEFAULT_GAMMA_WIDTH,
                    gamma_frac_bits: int = DEFAULT_GAMMA_FRAC_BITS) -> np.ndarray:
    x = np.asarray(x, dtype=np.int64)
    C = x.shape[-1]
    gamma = np.full(C, 1 << gamma_frac_bits, np.int64) if gamma is None else np.asarray(gamma, np.int64)
    beta = np.zeros(C, np.int64) if beta is None else np.asarray(beta, np.int64)
    check_params(PARAMS, {"channels": C, "in_width": in_width, "norm_frac_bits": norm_frac_bits,
                          "out_width": out_width, "gamma_width": gamma_width,
                          "gamma_frac_bits": gamma_frac_bits, "gamma": gamma, "beta": beta})
    lo, hi = signed_range(in_width)
    if x.size and (x.min() < lo or x.max() > hi):
        raise ParameterError(f"layernorm inputs must fit in_width = {in_width} signed bits")
    s1 = x.sum(-1, keepdims=True)
    s2 = (x * x).sum(-1, keepdims=True)
    sd = np.maximum(isqrt(C * s2 - s1 * s1), 1)
    D = sd_width(C, in_width)
    r = (1 << (norm_frac_bits + D)) // sd
    x_hat = ((C * x - s1) * r) >> D
    return np.clip(((x_hat * gamma) >> gamma_frac_bits) + beta, *signed_range(out_width))
