"""The conventional baseline of the IF layer: an 8-bit multiply-accumulate layer.

The single fixed-point definition checked by `hw.mac_layer` and `sim.mac_layer`. Per input
vector x (``act_width``-bit signed integers) and output neuron i:

    acc_i = bias_i + sum_j x_j * w[j, i]                       (w: ``weight_width``-bit signed)
    y_i   = clamp((acc_i + 2**shift // 2) >> shift, signed out_width range)

the usual requantization of an integer linear layer (scale folded into a power of two).
"""
from __future__ import annotations

import numpy as np

from sorbet_hw.model.if_layer import check_size, layer_shape
from sorbet_hw.model.params import Param, ParameterError, check_params, signed_range

DEFAULT_WIDTH = 8


PARAMS = (
    Param("weights", None, "signed weights [inputs, outputs] (demo weights of inputs x outputs "
          "from seed if not given)", shape=("inputs", "outputs"),
          lo="-(1 << (weight_width - 1))", hi="(1 << (weight_width - 1)) - 1"),
    Param("bias", None, "accumulator start value (default 0)", shape=("outputs",),
          lo=-(1 << 30) + 1, hi=(1 << 30) - 1),
    Param("shift", 0, "requantization: (acc + 2**shift // 2) >> shift", lo=0, hi=40),
    Param("act_width", DEFAULT_WIDTH, "width of a signed input", lo=2, hi=16),
    Param("weight_width", DEFAULT_WIDTH, "width of a signed weight", lo=2, hi=16),
    Param("out_width", DEFAULT_WIDTH, "width of a signed output", lo=2, hi=32),
)


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
    if weights.ndim != 2:
        raise ParameterError(f"weights must be a 2-D (inputs, outputs) array, got shape {weights.shape}")
    n, m = weights.shape
    bias = np.zeros(m, np.int64) if bias is None else np.asarray(bias, np.int64)
    check_params(PARAMS, {"weights": weights, "bias": bias, "shift": shift, "act_width": act_width,
                          "weight_width": weight_width, "out_width": out_width},
                 derive=layer_shape, rules=(check_size,))
    lo, hi = signed_range(act_width)
    if x.shape[-1:] != (n,) or (x.size and (x.min() < lo or x.max() > hi)):
        raise ParameterError(f"mac_layer inputs must be [..., {n}] signed {act_width}-bit integers")
    acc = bias + x @ weights
    return np.clip((acc + ((1 << shift) >> 1)) >> shift, *signed_range(out_width))
