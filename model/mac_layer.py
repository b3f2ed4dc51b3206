"""The conventional baseline of the IF layer: an 8-bit multiply-accumulate layer.

The single fixed-point definition checked by `hw.mac_layer` and `sim.mac_layer`. Per input
vector x (``act_width``-bit signed integers) and output neuron i:

    acc_i = bias_i + sum_j x_j * w[j, i]                       (w: ``weight_width``-bit signed)
    y_i   = clamp((acc_i + 2**shift // 2) >> shift, signed out_width range)

the usual requantization of an integer linear layer (scale folded into a power of two).
"""
from __future__ import annotations

import numpy as np

from sorbet_hw.model.params import ParameterError, check_int, signed_range

DEFAULT_WIDTH = 8


def check_mac_params(*, inputs: int, outputs: int, act_width: int, weight_width: int,
                     out_width: int, shift: int, weights, bias) -> None:
    check_int("inputs", inputs, 1, 65536)
    check_int("outputs", outputs, 1, 65536)
    check_int("act_width", act_width, 2, 16)
    check_int("weight_width", weight_width, 2, 16)
    check_int("out_width", out_width, 2, 32)
    check_int("shift", shift, 0, 40)
    weights = np.asarray(weights)
    if weights.shape != (inputs, outputs):
        raise ParameterError(f"weights must have shape (inputs, outputs) = ({inputs}, {outputs}), "
                             f"got {weights.shape}")
    lo, hi = signed_range(weight_width)
    if weights.size and (weights.min() < lo or weights.max() > hi):
        raise ParameterError(f"weights must fit weight_width = {weight_width} signed bits ({lo}..{hi})")
    bias = np.asarray(bias)
    if bias.shape != (outputs,):
        raise ParameterError(f"bias must hold one integer per output ({outputs}), got shape {bias.shape}")
    if bias.size and np.abs(bias).max() >= 1 << 30:
        raise ParameterError("bias values must lie within +-2**30")


def accumulator_range(*, inputs: int, act_width: int, weight_width: int, bias) -> tuple[int, int]:
    a_lo, a_hi = signed_range(act_width)
    w_lo, _ = signed_range(weight_width)
    worst = inputs * a_lo * w_lo                 # the largest |product| is lo * lo
    bias = np.asarray(bias, dtype=np.int64)
    return int(bias.min()) - worst, int(bias.max()) + worst


def mac_layer(x, weights, *, bias=None, shift: int = 0, act_width: int = DEFAULT_WIDTH,
              weight_width: int = DEFAULT_WIDTH, out_width: int = DEFAULT_WIDTH) -> np.ndarray:
    x = np.asarray(x, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.int64)
    n, m = weights.shape if weights.ndim == 2 else (-1, -1)
    bias = np.zeros(max(m, 0), np.int64) if bias is None else np.asarray(bias, np.int64)
    check_mac_params(inputs=n, outputs=m, act_width=act_width, weight_width=weight_width,
                     out_width=out_width, shift=shift, weights=weights, bias=bias)
    lo, hi = signed_range(act_width)
    if x.shape[-1:] != (n,) or (x.size and (x.min() < lo or x.max() > hi)):
        raise ParameterError(f"mac_layer inputs must be [..., {n}] signed {act_width}-bit integers")
    acc = bias + x @ weights
    return np.clip((acc + ((1 << shift) >> 1)) >> shift, *signed_range(out_width))
