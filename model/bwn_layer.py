"""The binary-weight, 4-bit-activation layer: the integer model's own linear layer, as the
fair non-spiking baseline of the IF layer.

The integer student computes every projection as ``quantize_activation(bias + levels @ W,
threshold_shift, act_bits)`` (:class:`model.integer_model.Linear`): 1-bit (or ternary) weights,
4-bit levels, additions and subtractions only. Built directly as hardware (``hw.bwn_layer``),
that is what an RTL engineer would build instead of a spiking layer; :func:`bwn_layer` *is*
that function, with the inputs as signed levels where the model's are signed:

- signed inputs (Q, K, V, the attention output and the FFN input take offset levels x = l + 8):
  l = x - 8 in [-8, 7], and the bias absorbs the offset, bias' = bias + 8 * sum_j W[j, :], so
  bias' + l @ W = bias + x @ W exactly (:func:`signed_form`), and a zero level is a zero;
- unsigned inputs (the FFN output layer takes ReLU levels in [0, 15]) are taken as they are.
"""
from __future__ import annotations

import numpy as np

from sorbet_hw.model.if_layer import (DEFAULT_ACT_BITS, WEIGHT_PARAMS, check_size, check_weights,
                                      layer_shape, quantize_activation)
from sorbet_hw.model.params import Param, ParameterError, check_params, with_sources


def level_range(act_bits: int, signed_inputs: bool) -> tuple[int, int]:
    if signed_inputs:
        return -(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1
    return 0, (1 << act_bits) - 1


def _signed_bias(site):
    """A signed-input projection takes the levels less the offset, folded into its bias."""
    lin = site.linear
    return signed_form(lin.bias, lin.weights, site.model.offset) if site.input_signed else lin.bias


PARAMS = with_sources(WEIGHT_PARAMS, bias=_signed_bias) + (
    Param("act_bits", DEFAULT_ACT_BITS, "level width", lo=2, hi=8, source="model.act_bits"),
    Param("signed_inputs", True, "levels in -2**(act_bits-1) .. 2**(act_bits-1) - 1 (1), or "
          "unsigned ReLU levels (0)", flag=True, source="input_signed"),
)


def bwn_layer(levels, weights, *, bias=None, threshold_shift: int = 0,
              act_bits: int = DEFAULT_ACT_BITS, weight_kind: str = "binary",
              signed_inputs: bool = True) -> np.ndarray:
    """Output levels ``[..., M]`` of input levels ``levels[..., N]``: the integer model's
    ``quantize_activation(bias + levels @ W)``, one add or subtract per nonzero input and
    output, no multiply."""
    from sorbet_hw.model.integer_model import Linear
    weights = np.asarray(weights, dtype=np.int64)
    if weights.ndim != 2:
        raise ParameterError(f"weights must be a 2-D (inputs, outputs) array, got shape {weights.shape}")
    bias = np.zeros(weights.shape[1], np.int64) if bias is None else np.asarray(bias, np.int64)
    check_params(PARAMS, {"weights": weights, "bias": bias, "threshold_shift": threshold_shift,
                          "weight_kind": weight_kind, "act_bits": act_bits,
                          "signed_inputs": signed_inputs},
                 derive=layer_shape, rules=(check_size, check_weights))
    levels = np.asarray(levels, dtype=np.int64)
    lo, hi = level_range(act_bits, signed_inputs)
    if levels.shape[-1:] != weights.shape[:1]:
        raise ParameterError(f"bwn_layer: levels need shape [..., {weights.shape[0]}], got {levels.shape}")
    if levels.size and (levels.min() < lo or levels.max() > hi):
        raise ParameterError(f"bwn_layer: levels must lie in {lo}..{hi}")
    # The very function the integer student evaluates with (its float32 matmul is exact
    # for these magnitudes, as the student's own tests check).
    return Linear(weights, bias, threshold_shift, 0)(levels, act_bits)


def signed_form(bias, weights, offset: int) -> np.ndarray:
    """The bias that takes signed levels l = x - offset to the same pre-activation as the
    model's offset levels x: bias + offset * sum_j W[j, :]."""
    return np.asarray(bias, np.int64) + offset * np.asarray(weights, np.int64).sum(axis=0)


def accumulator_range(*, inputs: int, bias, act_bits: int, signed_inputs: bool) -> tuple[int, int]:
    """Bounds of bias + levels @ W, for sizing the accumulator."""
    lo, hi = level_range(act_bits, signed_inputs)
    span = inputs * max(abs(lo), abs(hi))
    bias = np.asarray(bias, np.int64)
    return int(bias.min(initial=0)) - span, int(bias.max(initial=0)) + span


__all__ = ["bwn_layer", "PARAMS", "level_range", "signed_form", "accumulator_range",
           "quantize_activation"]
