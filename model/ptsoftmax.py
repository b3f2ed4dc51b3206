"""PTsoftmax: power-of-two softmax in integer arithmetic.

This module is the single fixed-point definition of the operator. The hardware generator
(`hw.ptsoftmax`) and its cocotb bench (`sim.ptsoftmax`) are checked bit for bit against
:func:`ptsoftmax`.
"""
from __future__ import annotations

import numpy as np

from sorbet_hw.model.params import check_choice, check_int

ROUNDINGS = ("up", "nearest")

DEFAULT_FRAC_BITS = 2
DEFAULT_OUT_FRAC_BITS = 8
DEFAULT_ROUNDING = "up"


def check_ptsoftmax_params(*, score_width: int, frac_bits: int, out_frac_bits: int,
                           rounding: str) -> None:
    """Raise :class:`model.params.ParameterError` for a parameter out of range."""
    check_int("score_width", score_width, 2, 32)
    check_int("frac_bits", frac_bits, 0, score_width - 1)
    check_int("out_frac_bits", out_frac_bits, 1, 24)
    check_choice("rounding", rounding, ROUNDINGS)


def sum_power(total: np.ndarray, out_frac_bits: int, rounding: str) -> np.ndarray:
    """Exponent k of the power of two that replaces a row sum.

    ``total`` is the row sum with ``out_frac_bits`` fractional bits (always >= 1.0, since the
    row maximum contributes exactly 1.0). ``rounding="up"`` gives the smallest k with
    2**k >= sum; ``"nearest"`` rounds the sum to the nearest power of two on a linear scale,
    ties upwards: the bit below the leading one decides.
    """
    total = np.asarray(total, dtype=np.int64)
    if rounding == "up":
        bits = _bit_length(total - 1)
    else:
        lead = _bit_length(total) - 1
        below = np.where(lead > 0, (total >> np.maximum(lead - 1, 0)) & 1, 0)
        bits = lead + below
    return bits - out_frac_bits


def ptsoftmax(scores, *, frac_bits: int = DEFAULT_FRAC_BITS,
              out_frac_bits: int = DEFAULT_OUT_FRAC_BITS,
              rounding: str = DEFAULT_ROUNDING) -> np.ndarray:
    """Power-of-two softmax over the last axis of integer fixed-point scores.

    ``scores[..., i]`` holds x_i * 2**frac_bits (two's complement integers). Per row:

    1. c_i = ceil(x_i), computed exactly as ``-((-score) >> frac_bits)``; m = max_i c_i.
    2. d_i = m - c_i >= 0; the numerator 2**-d_i is kept with ``out_frac_bits`` (P)
       fractional bits, so terms with d_i > P truncate to zero.
    3. S = sum_i (2**P >> d_i) (an integer >= 2**P); k = :func:`sum_power` of S.
    4. p_i = 2**P >> (d_i + k), and 0 when d_i + k > P.

    Returns integers p_i with P fractional bits (0 <= p_i <= 2**P, P + 1 bits unsigned).
    With ``rounding="up"`` every row sums to at most 2**P (one), and to more than 2**(P-1)
    when no output underflows.
    """
    if rounding not in ROUNDINGS:
        check_choice("rounding", rounding, ROUNDINGS)
    check_int("frac_bits", frac_bits, 0, 31)
    check_int("out_frac_bits", out_frac_bits, 1, 24)
    x = np.asarray(scores, dtype=np.int64)
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError("ptsoftmax: scores need a last axis of at least one element")
    ceil = -((-x) >> frac_bits)
    dist = ceil.max(axis=-1, keepdims=True) - ceil
    one = 1 << out_frac_bits
    terms = np.where(dist <= out_frac_bits, one >> np.minimum(dist, out_frac_bits), 0)
    k = sum_power(terms.sum(axis=-1, keepdims=True), out_frac_bits, rounding)
    shift = dist + k
    return np.where(shift <= out_frac_bits, one >> np.minimum(shift, out_frac_bits), 0)


def ptsoftmax_float(scores, *, frac_bits: int = DEFAULT_FRAC_BITS,
                    out_frac_bits: int = DEFAULT_OUT_FRAC_BITS,
                    rounding: str = DEFAULT_ROUNDING) -> np.ndarray:
    """:func:`ptsoftmax` as real numbers (probabilities in [0, 1])."""
    return ptsoftmax(scores, frac_bits=frac_bits, out_frac_bits=out_frac_bits,
                     rounding=rounding) / float(1 << out_frac_bits)


def _bit_length(values: np.ndarray) -> np.ndarray:
    """Element-wise ``int.bit_length`` of non-negative int64 values."""
    values = np.asarray(values, dtype=np.int64)
    out = np.zeros(values.shape, dtype=np.int64)
    v = values.copy()
    while np.any(v > 0):
        out += v > 0
        v >>= 1
    return out
