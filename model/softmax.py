"""The conventional baseline of PTsoftmax: a fixed-point softmax with an exp table and a divider.

The single fixed-point definition checked by `hw.softmax` and `sim.softmax`. Per row of
scores x_i (``frac_bits`` fractional bits), with E = ``exp_bits`` and P = ``out_frac_bits``:

1. m = max_i x_i; d_i = m - x_i >= 0.
2. e_i = EXP[d_i]: the table EXP[d] = floor(2**E * exp(-d / 2**F) + 1/2), cut where it
   reaches zero (e_i = 0 beyond).
3. S = sum_i e_i (>= 2**E); the reciprocal r = floor(2**(P + W) / S), W = bit length of the
   largest possible sum N * 2**E: one division per row.
4. p_i = (e_i * r) >> W: one multiplication per element.

Outputs have P fractional bits and sum to at most 2**P.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from dataclasses import replace

from sorbet_hw.model.params import Param, check_choice, check_params
from sorbet_hw.model.ptsoftmax import ROW_PARAMS

DEFAULT_FRAC_BITS = 2
DEFAULT_OUT_FRAC_BITS = 8

# PTsoftmax's row, the table of 2**(F + 1) entries bounding F, and the table's precision.
PARAMS = tuple(replace(p, hi="min(score_width - 1, 12)") if p.name == "frac_bits" else p
               for p in ROW_PARAMS) + (
    Param("exp_bits", None, "fractional bits of the exponential table (out_frac_bits if not "
          "given)", lo=1, hi=24),)


@lru_cache(maxsize=None)
def exp_table(frac_bits: int, exp_bits: int) -> tuple[int, ...]:
    """EXP[d] for d = 0 .. the last non-zero entry."""
    table, d = [], 0
    while True:
        v = math.floor((1 << exp_bits) * math.exp(-d / (1 << frac_bits)) + 0.5)
        if v == 0:
            return tuple(table)
        table.append(v)
        d += 1


def sum_width(row_length: int, exp_bits: int) -> int:
    return (row_length << exp_bits).bit_length()


def softmax_fixed(scores, *, frac_bits: int = DEFAULT_FRAC_BITS,
                  out_frac_bits: int = DEFAULT_OUT_FRAC_BITS, exp_bits: int | None = None) -> np.ndarray:
    """Fixed-point softmax over the last axis (see the module docstring)."""
    exp_bits = out_frac_bits if exp_bits is None else exp_bits
    check_params(PARAMS, {"frac_bits": frac_bits, "out_frac_bits": out_frac_bits, "exp_bits": exp_bits})
    x = np.asarray(scores, dtype=np.int64)
    check_choice("rank", "ok" if x.ndim >= 1 and x.shape[-1] else "empty", ("ok",))
    table = np.array(exp_table(frac_bits, exp_bits), dtype=np.int64)
    d = x.max(axis=-1, keepdims=True) - x
    e = np.where(d < len(table), table[np.minimum(d, len(table) - 1)], 0)
    W = sum_width(x.shape[-1], exp_bits)
    r = (1 << (out_frac_bits + W)) // e.sum(axis=-1, keepdims=True)
    return (e * r) >> W
