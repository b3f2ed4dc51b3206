"""BSPN: bit-shifting power norm in integer arithmetic.

The single fixed-point definition of the LayerNorm replacement; the generator `hw.bspn` and
the bench `sim.bspn` are checked bit for bit against :func:`bspn`.
"""
from __future__ import annotations

import numpy as np

from sorbet_hw.model.params import ParameterError, check_divides, check_int, signed_range

DEFAULT_IN_WIDTH = 12
DEFAULT_NORM_FRAC_BITS = 4
DEFAULT_OUT_WIDTH = 8
GAMMA_SHIFT_LIMIT = 8


def check_bspn_params(*, channels: int, groups: int, in_width: int, norm_frac_bits: int,
                      out_width: int, gamma_shift, beta) -> None:
    """Raise :class:`model.params.ParameterError` for a parameter out of range."""
    check_int("channels", channels, 1, 65536)
    check_int("groups", groups, 1, channels)
    check_divides("groups", groups, "channels", channels)
    check_int("in_width", in_width, 2, 32)
    check_int("norm_frac_bits", norm_frac_bits, 0, 16)
    check_int("out_width", out_width, 2, 32)
    for name, values, lo, hi in (
            ("gamma_shift", gamma_shift, -GAMMA_SHIFT_LIMIT, GAMMA_SHIFT_LIMIT),
            ("beta", beta, *signed_range(out_width))):
        values = np.asarray(values)
        if values.shape != (channels,):
            raise ParameterError(f"{name} must hold one integer per channel ({channels}), "
                                 f"got shape {values.shape}")
        if values.size and (values.min() < lo or values.max() > hi):
            raise ParameterError(f"{name} values must lie in {lo}..{hi}, "
                                 f"got {values.min()}..{values.max()}")


def group_shift(l1_sum, group_size: int, in_width: int) -> np.ndarray:
    """Normalizing shift s of a group: the smallest s >= 0 with group_size * 2**s >= l1_sum.

    That is s = max(0, ceil(log2(mean |x|))), the L1 mean rounded up to a power of two, found
    without a division: s counts the thresholds group_size << j (j = 0 .. in_width - 2) that
    the sum exceeds (a leading-one detection when group_size is a power of two).
    """
    l1_sum = np.asarray(l1_sum, dtype=np.int64)
    s = np.zeros(l1_sum.shape, dtype=np.int64)
    for j in range(in_width - 1):
        s += l1_sum > (group_size << j)
    return s


def bspn(x, *, groups: int, gamma_shift=None, beta=None,
         in_width: int = DEFAULT_IN_WIDTH, norm_frac_bits: int = DEFAULT_NORM_FRAC_BITS,
         out_width: int = DEFAULT_OUT_WIDTH) -> np.ndarray:
    """Bit-shifting power norm of integer tokens ``x[..., C]`` (signed ``in_width`` bits).

    The C channels split into ``groups`` contiguous groups of n = C / groups. Per token and
    group, with A = sum |x| over the group and s = :func:`group_shift` (A, n):

        x_hat = (x << norm_frac_bits) >> s        (arithmetic shift: floor)
        y     = shift(x_hat, gamma_shift[c]) + beta[c]
        out   = clamp(y, -2**(out_width-1), 2**(out_width-1) - 1)

    where shift(v, g) is v << g for g >= 0 and v >> -g (floor) for g < 0. ``gamma_shift`` is
    the per-channel power-of-two scale (PowerNorm's running scale folded with gamma) and
    ``beta`` the per-channel offset, both integers; outputs carry ``norm_frac_bits``
    fractional bits. Defaults: gamma_shift = 0, beta = 0.
    """
    x = np.asarray(x, dtype=np.int64)
    channels = x.shape[-1]
    gamma_shift = np.zeros(channels, np.int64) if gamma_shift is None else np.asarray(gamma_shift, np.int64)
    beta = np.zeros(channels, np.int64) if beta is None else np.asarray(beta, np.int64)
    check_bspn_params(channels=channels, groups=groups, in_width=in_width,
                      norm_frac_bits=norm_frac_bits, out_width=out_width,
                      gamma_shift=gamma_shift, beta=beta)
    lo, hi = signed_range(in_width)
    if x.size and (x.min() < lo or x.max() > hi):
        raise ParameterError(f"bspn inputs must fit in_width = {in_width} signed bits")
    size = channels // groups
    grouped = x.reshape(*x.shape[:-1], groups, size)
    s = group_shift(np.abs(grouped).sum(axis=-1, keepdims=True), size, in_width)
    x_hat = ((grouped << norm_frac_bits) >> s).reshape(x.shape)
    y = np.where(gamma_shift >= 0, x_hat << np.maximum(gamma_shift, 0),
                 x_hat >> np.maximum(-gamma_shift, 0)) + beta
    return np.clip(y, *signed_range(out_width))
