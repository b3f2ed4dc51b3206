"""Average integrate-and-fire layer: accumulate-only, over T time steps.

The single fixed-point definition of a spiking linear layer; `hw.if_layer` and `sim.if_layer`
are checked bit for bit against :func:`if_layer`.

Average IF, as defined here: over the T input steps each neuron only *integrates* (a spike on
input j adds the weight w[j, i] in {-1, +1} or {-1, 0, +1} to the membrane); then, over the T
output steps, it compares its membrane with the threshold 2**threshold_shift and, when it
reaches it, spikes and subtracts the threshold, for at most q_max = 2**act_bits - 1 steps. The
spike count therefore equals :func:`quantize_activation` of the integrated input: the ANN's
4-bit activation, exactly. Spikes leave in the first steps of the window; the next layer
integrates the whole window, so only counts carry information.
"""
from __future__ import annotations

import numpy as np

from sorbet_hw.model.params import ParameterError, check_choice, check_int

WEIGHT_KINDS = ("binary", "ternary")
DEFAULT_STEPS = 16
DEFAULT_ACT_BITS = 4
BIAS_LIMIT = 1 << 20


def check_if_params(*, inputs: int, outputs: int, steps: int, threshold_shift: int,
                    act_bits: int, weights, bias, weight_kind: str) -> None:
    """Raise :class:`model.params.ParameterError` for a parameter out of range."""
    check_int("inputs", inputs, 1, 65536)
    check_int("outputs", outputs, 1, 65536)
    check_int("steps", steps, 1, 1024)
    check_int("threshold_shift", threshold_shift, 0, 24)
    check_int("act_bits", act_bits, 1, 10)
    if (1 << act_bits) - 1 > steps:
        raise ParameterError(f"act_bits = {act_bits} needs steps >= {(1 << act_bits) - 1} "
                             f"(one spike per step), got steps = {steps}")
    check_choice("weight_kind", weight_kind, WEIGHT_KINDS)
    weights = np.asarray(weights)
    if weights.shape != (inputs, outputs):
        raise ParameterError(f"weights must have shape (inputs, outputs) = ({inputs}, {outputs}), "
                             f"got {weights.shape}")
    allowed = {-1, 1} if weight_kind == "binary" else {-1, 0, 1}
    found = set(np.unique(weights).tolist())
    if not found <= allowed:
        raise ParameterError(f"{weight_kind} weights must be in {sorted(allowed)}, "
                             f"found {sorted(found - allowed)}")
    bias = np.asarray(bias)
    if bias.shape != (outputs,):
        raise ParameterError(f"bias must hold one integer per output ({outputs}), got shape {bias.shape}")
    if bias.size and np.abs(bias).max() >= BIAS_LIMIT:
        raise ParameterError(f"bias values must lie in {-BIAS_LIMIT + 1}..{BIAS_LIMIT - 1}")


def initial_membrane(bias, threshold_shift: int) -> np.ndarray:
    """Membrane at the start of a window: bias plus half a threshold, so counts round."""
    return np.asarray(bias, dtype=np.int64) + ((1 << threshold_shift) >> 1)


def quantize_activation(z, threshold_shift: int, act_bits: int) -> np.ndarray:
    """The ANN's activation level of an integer pre-activation z (bias included):
    clamp(floor(z / 2**threshold_shift + 1/2), 0, 2**act_bits - 1)."""
    z = np.asarray(z, dtype=np.int64)
    level = (z + ((1 << threshold_shift) >> 1)) >> threshold_shift
    return np.clip(level, 0, (1 << act_bits) - 1)


def fire(membrane, steps: int, threshold_shift: int, act_bits: int) -> np.ndarray:
    """Output spike trains ``[..., steps, M]`` of membranes ``[..., M]`` after integration:
    at step t < q_max a neuron spikes when its membrane is at least the threshold, and the
    threshold is then subtracted."""
    v = np.array(membrane, dtype=np.int64)
    threshold = 1 << threshold_shift
    q_max = (1 << act_bits) - 1
    out = np.zeros(v.shape[:-1] + (steps, v.shape[-1]), dtype=np.int64)
    for t in range(min(steps, q_max)):
        spike = v >= threshold
        out[..., t, :] = spike
        v = v - np.where(spike, threshold, 0)
    return out


def if_layer(spikes, weights, *, bias=None, threshold_shift: int = 0,
             act_bits: int = DEFAULT_ACT_BITS, weight_kind: str = "binary") -> np.ndarray:
    """Average-IF layer on input spike trains ``spikes[..., T, N]`` (0/1).

    Integration: v = bias + 2**threshold_shift // 2 + sum over t, j of spikes[t, j] * w[j, i],
    one accumulate (add or subtract, never a multiply) per input spike and output neuron.
    Firing: :func:`fire` over T output steps. Returns ``[..., T, M]`` spikes whose counts
    equal ``quantize_activation(bias + counts @ weights)``.
    """
    spikes = np.asarray(spikes, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.int64)
    if spikes.ndim < 2:
        raise ParameterError("if_layer: spikes need shape [..., steps, inputs]")
    steps, inputs = spikes.shape[-2:]
    outputs = weights.shape[-1] if weights.ndim == 2 else -1
    bias = np.zeros(max(outputs, 0), np.int64) if bias is None else np.asarray(bias, np.int64)
    check_if_params(inputs=inputs, outputs=outputs, steps=steps, threshold_shift=threshold_shift,
                    act_bits=act_bits, weights=weights, bias=bias, weight_kind=weight_kind)
    if spikes.size and not np.isin(spikes, (0, 1)).all():
        raise ParameterError("if_layer: spikes must be 0 or 1")
    membrane = initial_membrane(bias, threshold_shift) + spikes.sum(axis=-2) @ weights
    return fire(membrane, steps, threshold_shift, act_bits)


def membrane_range(*, inputs: int, steps: int, bias, threshold_shift: int) -> tuple[int, int]:
    """Bounds of the membrane over a window, for sizing its register."""
    init = initial_membrane(bias, threshold_shift)
    span = inputs * steps
    return int(init.min()) - span, int(init.max()) + span
