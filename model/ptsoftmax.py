"""PTsoftmax: power-of-two softmax in integer arithmetic.

This module is the single fixed-point definition of the operator. The hardware generator
(`hw.ptsoftmax`) and its cocotb bench (`sim.ptsoftmax`) are checked bit for bit against
:func:`ptsoftmax`.
"""
from __future__ import annotations

import math

import numpy as np

from sorbet_hw.model.params import Param, as_array, check_params, signed_width

ROUNDINGS = ("up", "nearest")
LOG2E = 1.0 / math.log(2.0)

DEFAULT_FRAC_BITS = 2
DEFAULT_OUT_FRAC_BITS = 8
DEFAULT_ROUNDING = "up"

def score_width(head_dim: int, act_bits: int, score_left_shift: int, frac_bits: int) -> int:
    """Signed width of an attention score sum_d (q - off)(k - off) over a head (each product
    within -off(off - 1) .. off**2), aligned for PTsoftmax by ``score_left_shift``."""
    off = 1 << (act_bits - 1)
    lo, hi = -head_dim * off * (off - 1), head_dim * off * off
    return max(signed_width(lo << score_left_shift, hi << score_left_shift), frac_bits + 1)



def _layer_score_width(site) -> int:
    """A layer's attention scores, for the worst case of its levels."""
    at = site.model.attention_params(site.layer)
    return score_width(site.model.bert["hidden_size"] // site.model.heads, site.model.act_bits,
                       at["score_left_shift"], at["frac_bits"])


# The parameters of a row of scores, shared with the baseline softmax (:mod:`model.softmax`).
ROW_PARAMS = (
    Param("row_length", 16, "scores per row, N", lo=1, hi=4096, source="tokens"),
    Param("score_width", 12, "width of a signed score", lo=2, hi=32, source=_layer_score_width),
    Param("frac_bits", DEFAULT_FRAC_BITS, "fractional bits of a score", lo=0, hi="score_width - 1",
          source="attention.frac_bits"),
    Param("out_frac_bits", DEFAULT_OUT_FRAC_BITS, "fractional bits P of a probability", lo=1, hi=24,
          source="config.softmax_out_frac_bits"),
)
PARAMS = ROW_PARAMS + (Param("rounding", DEFAULT_ROUNDING, "how the row sum becomes a power of two",
                             choices=ROUNDINGS, source="config.softmax_rounding"),)


def sum_power(total, out_frac_bits: int, rounding: str):
    """Exponent k of the power of two that replaces a row sum.

    ``total`` is the row sum with ``out_frac_bits`` fractional bits (always >= 1.0, since the
    row maximum contributes exactly 1.0). ``rounding="up"`` gives the smallest k with
    2**k >= sum; ``"nearest"`` rounds the sum to the nearest power of two on a linear scale,
    ties upwards: the bit below the leading one decides.
    """
    xp, total = as_array(total)
    if rounding == "up":
        bits = _bit_length(xp, total - 1)
    else:
        lead = _bit_length(xp, total) - 1
        below = xp.where(lead > 0, (total >> xp.clip(lead - 1, 0, None)) & 1, 0)
        bits = lead + below
    return bits - out_frac_bits


def ptsoftmax(scores, *, frac_bits: int = DEFAULT_FRAC_BITS,
              out_frac_bits: int = DEFAULT_OUT_FRAC_BITS,
              rounding: str = DEFAULT_ROUNDING):
    """Power-of-two softmax over the last axis of integer fixed-point scores.

    ``scores[..., i]`` holds x_i * 2**frac_bits (two's complement integers). Per row:

    1. c_i = ceil(x_i), computed exactly as ``-((-score) >> frac_bits)``.
    2. One pass over the row in order (online, as Softermax) keeps the running maximum m and
       the running sum S with ``out_frac_bits`` (P) fractional bits: an element above m
       shifts S right by c - m (truncating), takes m = c and adds 2**P (one); any other adds
       its numerator 2**P >> (m - c), 0 when m - c > P. The final m is the row maximum M.
    3. k = :func:`sum_power` of S (an integer >= 2**P).
    4. p_i = 2**P >> (M - c_i + k), and 0 when M - c_i + k > P.

    Returns integers p_i with P fractional bits (0 <= p_i <= 2**P, P + 1 bits unsigned).
    With ``rounding="up"`` every row sums to at most 2**P (one), and to more than 2**(P-1)
    when no output underflows.

    S is the two-pass sum sum_i (2**P >> (M - c_i)) save for numerators that were within P
    of the running maximum when they arrived and are not within P of M: the truncating
    shifts keep the integer part of their sum, which the two-pass sum drops. Hardware
    finds M and S in one pass, so the row is read back once (see :mod:`hw.ptsoftmax`); on
    the shipped SST-2 student 55 of 1.58 million dev rows differ, accuracy unchanged.
    """
    check_params(PARAMS, {"frac_bits": frac_bits, "out_frac_bits": out_frac_bits, "rounding": rounding})
    xp, x = as_array(scores)
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError("ptsoftmax: scores need a last axis of at least one element")
    return ptsoftmax_of_ceilings(-((-x) >> frac_bits), out_frac_bits, rounding)


def ptsoftmax_of_ceilings(ceilings, out_frac_bits: int, rounding: str, valid=None):
    """Steps 2 to 4 of :func:`ptsoftmax` on the integer ceilings c_i (any integer array,
    numpy or torch: training calls this very function); where ``valid`` is False a key takes
    no part (probability 0) and the pass skips it."""
    xp, c = as_array(ceilings)
    P = out_frac_bits
    one = 1 << P
    valid = xp.ones_like(c, dtype=xp.bool) if valid is None else xp.broadcast_to(valid, c.shape)
    # Starting from a maximum no valid key exceeds and an empty sum is the pass from the
    # first valid key: it rises to it (0 shifted is 0) or equals it, and adds one.
    running = xp.min(xp.where(valid, c, xp.max(c)), axis=-1)
    total = xp.zeros_like(running)
    cap = P + 13                 # total <= 4096 * 2**P: this shift empties it
    for i in range(c.shape[-1]):
        x, v = c[..., i], valid[..., i]
        rise = v & (x > running)
        dist = xp.where(rise, x - running, running - x)
        term = xp.where(dist <= P, one >> xp.clip(dist, 0, P), 0)
        total = xp.where(rise, (total >> xp.clip(dist, 0, cap)) + one,
                         xp.where(v, total + term, total))
        running = xp.where(rise, x, running)
    k = sum_power(total[..., None], P, rounding)
    shift = xp.where(valid, running[..., None] - c + k, P + 1)
    return xp.where(shift <= P, one >> xp.clip(shift, 0, P), 0)


def score_shift(head_dim: int) -> int:
    """PTsoftmax takes scores * 2**-shift, the power of two nearest to log2(e) / sqrt(d): base 2
    instead of e, so the student's attention is as sharp as the teacher's."""
    return round(math.log2(math.sqrt(head_dim) / LOG2E))


def ptsoftmax_float(scores, *, frac_bits: int = DEFAULT_FRAC_BITS,
                    out_frac_bits: int = DEFAULT_OUT_FRAC_BITS,
                    rounding: str = DEFAULT_ROUNDING) -> np.ndarray:
    """:func:`ptsoftmax` as real numbers (probabilities in [0, 1])."""
    return ptsoftmax(scores, frac_bits=frac_bits, out_frac_bits=out_frac_bits,
                     rounding=rounding) / float(1 << out_frac_bits)


def _bit_length(xp, values):
    """Element-wise ``int.bit_length`` of non-negative integers."""
    out = xp.zeros_like(values)
    v = values
    while bool(xp.any(v > 0)):
        out = out + (v > 0)
        v = v >> 1
    return out
