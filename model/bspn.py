"""BSPN: bit-shifting power norm in integer arithmetic.

The single fixed-point definition of the LayerNorm replacement; the generator `hw.bspn` and
the bench `sim.bspn` are checked bit for bit against :func:`bspn`.
"""
from __future__ import annotations

import math

import numpy as np

from sorbet_hw.model.params import Param, ParameterError, as_array, check_params, signed_range

DEFAULT_IN_WIDTH = 12
DEFAULT_NORM_FRAC_BITS = 4
DEFAULT_OUT_WIDTH = 8
GAMMA_SHIFT_LIMIT = 8


PARAMS = (
    Param("channels", 32, "channels a token, C", lo=1, hi=65536, source="bert.hidden_size"),
    Param("groups", 4, "contiguous channel groups a token, each with its own scale", lo=1,
          hi="channels", divides="channels", source="config.norm_groups"),
    Param("in_width", DEFAULT_IN_WIDTH, "width of a signed input", lo=2, hi=32, source="norm.in_width"),
    Param("norm_frac_bits", DEFAULT_NORM_FRAC_BITS, "fractional bits of the normalized value",
          lo=0, hi=16, source="config.norm_frac_bits"),
    Param("out_width", DEFAULT_OUT_WIDTH, "width of a signed output", lo=2, hi=32,
          source="config.norm_out_width"),
    Param("gamma_shift", None, "per-channel power-of-two scale (default 0)", shape=("channels",),
          lo=-GAMMA_SHIFT_LIMIT, hi=GAMMA_SHIFT_LIMIT, source="norm.gamma_shift"),
    Param("beta", None, "per-channel offset (default 0)", shape=("channels",),
          lo="-(1 << (out_width - 1))", hi="(1 << (out_width - 1)) - 1", source="norm.beta"),
)


def group_shift(l1_sum, group_size: int, in_width: int):
    """Normalizing shift s of a group: the smallest s >= 0 with group_size * 2**s >= l1_sum.

    That is s = max(0, ceil(log2(mean |x|))), the L1 mean rounded up to a power of two, found
    without a division: s counts the thresholds group_size << j (j = 0 .. in_width - 2) that
    the sum exceeds (a leading-one detection when group_size is a power of two).
    """
    xp, l1_sum = as_array(l1_sum)
    s = xp.zeros_like(l1_sum)
    for j in range(in_width - 1):
        s = s + (l1_sum > (group_size << j))
    return s


def bspn(x, *, groups: int, gamma_shift=None, beta=None,
         in_width: int = DEFAULT_IN_WIDTH, norm_frac_bits: int = DEFAULT_NORM_FRAC_BITS,
         out_width: int = DEFAULT_OUT_WIDTH):
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

    The one definition: the integer model calls it on numpy arrays, training
    (:class:`model.student.Norm`) on torch tensors of the same integers.
    """
    xp, x = as_array(x)
    channels = x.shape[-1]
    gamma_shift = 0 if gamma_shift is None else gamma_shift
    beta = 0 if beta is None else beta
    check_params(PARAMS, {"channels": channels, "groups": groups, "in_width": in_width,
                          "norm_frac_bits": norm_frac_bits, "out_width": out_width,
                          "gamma_shift": np.broadcast_to(np.asarray(gamma_shift), (channels,)),
                          "beta": np.broadcast_to(np.asarray(beta), (channels,))})
    gamma_shift, beta = xp.asarray(gamma_shift), xp.asarray(beta)
    lo, hi = signed_range(in_width)
    if math.prod(x.shape) and (int(xp.min(x)) < lo or int(xp.max(x)) > hi):
        raise ParameterError(f"bspn inputs must fit in_width = {in_width} signed bits")
    size = channels // groups
    grouped = xp.reshape(x, (*x.shape[:-1], groups, size))
    s = group_shift(xp.sum(xp.abs(grouped), axis=-1, keepdims=True), size, in_width)
    x_hat = xp.reshape((grouped << norm_frac_bits) >> s, x.shape)
    y = xp.where(gamma_shift >= 0, x_hat << xp.clip(gamma_shift, 0, None),
                 x_hat >> xp.clip(-gamma_shift, 0, None)) + beta
    return xp.clip(y, *signed_range(out_width))
