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

from sorbet_hw.model.if_layer import BIAS_LIMIT, DEFAULT_ACT_BITS, WEIGHT_KINDS, quantize_activation
from sorbet_hw.model.params import ParameterError, check_choice, check_int


def level_range(act_bits: int, signed_inputs: bool) -> tuple[int, int]:
    if signed_inputs:
        return -(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1
    return 0, (1 << act_bits) - 1


def check_bwn_params(*, weights, bias, threshold_shift: int, act_bits: int, weight_kind: str,
                     signed_inputs: bool) -> None:
    """Raise :class:`model.params.ParameterError` for a parameter out of range."""
    weights, bias = np.asarray(weights), np.asarray(bias)
    if weights.ndim != 2:
        raise ParameterError(f"weights must be a 2-D (inputs, outputs) array, got shape {weights.shape}")
    inputs, outputs = weights.shape
    check_int("inputs", inputs, 1, 65536)
    check_int("outputs", outputs, 1, 65536)
    check_int("threshold_shift", threshold_shift, 0, 24)
    check_int("act_bits", act_bits, 2, 8)
    check_choice("weight_kind", weight_kind, WEIGHT_KINDS)
    if not isinstance(signed_inputs, bool):
        raise ParameterError(f"signed_inputs must be true or false, got {signed_inputs!r}")
    allowed = {-1, 1} if weight_kind == "binary" else {-1, 0, 1}
    found = set(np.unique(weights).tolist())
    if not found <= allowed:
        raise ParameterError(f"{weight_kind} weights must be in {sorted(allowed)}, "
                             f"found {sorted(found - allowed)}")
    if bias.shape != (outputs,):
        raise ParameterError(f"bias must hold one integer per output ({outputs}), got shape {bias.shape}")
    if bias.size and np.abs(bias).max() >= BIAS_LIMIT:
        raise ParameterError(f"bias values must lie in {-BIAS_LIMIT + 1}..{BIAS_LIMIT - 1}")


def bwn_layer(levels, weights, *, bias=None, threshold_shift: int = 0,
              act_bits: int = DEFAULT_ACT_BITS, weight_kind: str = "binary",
              signed_inputs: bool = True) -> np.ndarray:
    """Output levels ``[..., M]`` of input levels ``levels[..., N]``: the integer model's
    ``quantize_activation(bias + levels @ W)``, one add or subtract per nonzero input and
    output, no multiply."""
    from sorbet_hw.model.integer_model import Linear
    weights = np.asarray(weights, dtype=np.int64)
    outputs = weights.shape[-1] if weights.ndim == 2 else 0
    bias = np.zeros(outputs, np.int64) if bias is None else np.asarray(bias, np.int64)
    check_bwn_params(weights=weights, bias=bias, threshold_shift=threshold_shift,
                     act_bits=act_bits, weight_kind=weight_kind, signed_inputs=signed_inputs)
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


__all__ = ["bwn_layer", "check_bwn_params", "level_range", "signed_form", "accumulator_range",
           "quantize_activation"]
