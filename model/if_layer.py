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

from sorbet_hw.model.params import Param, ParameterError, as_array, check_int, check_params, is_integral

WEIGHT_KINDS = ("binary", "ternary")
DEFAULT_STEPS = 16
DEFAULT_ACT_BITS = 4
BIAS_LIMIT = 1 << 20


def check_weights(p) -> None:
    """Binary weights are +-1, ternary ones -1, 0 or +1 (a rule of every layer declaration)."""
    allowed = {-1, 1} if p["weight_kind"] == "binary" else {-1, 0, 1}
    found = set(np.unique(p["weights"]).tolist())
    if not found <= allowed:
        raise ParameterError(f"{p['weight_kind']} weights must be in {sorted(allowed)}, "
                             f"found {sorted(found - allowed)}")


def layer_shape(p) -> dict:
    """A layer's inputs and outputs: the shape of its weights."""
    inputs, outputs = np.shape(p["weights"])
    return {"inputs": inputs, "outputs": outputs}


# The parameters of a binary-weight layer's arithmetic (the IF layer's and the BWN layer's).
WEIGHT_PARAMS = (
    Param("weights", None, "synapses [inputs, outputs] (demo weights of inputs x outputs from "
          "seed if not given)", shape=("inputs", "outputs"), source="linear.weights"),
    Param("bias", None, "added to each output (default 0)", shape=("outputs",),
          lo=-BIAS_LIMIT + 1, hi=BIAS_LIMIT - 1, source="linear.bias"),
    Param("threshold_shift", 0, "requantization: the threshold is 2**threshold_shift", lo=0, hi=24,
          source="linear.threshold_shift"),
    Param("weight_kind", "binary", "+-1 (1 bit) or -1/0/+1 (2 bits)", choices=WEIGHT_KINDS,
          source="config.weight_kind"),
)
PARAMS = WEIGHT_PARAMS + (
    Param("act_bits", DEFAULT_ACT_BITS, "level width", lo=1, hi=10, source="model.act_bits"),
    Param("steps", DEFAULT_STEPS, "time steps T a window (at least 2**act_bits - 1)",
          lo="2 ** act_bits - 1", hi=1024, source="config.time_steps"),
)
# A layer's size: at most 65536 inputs and outputs.
MAX_SIDE = 65536


def check_size(p) -> None:
    for side in ("inputs", "outputs"):
        check_int(side, p[side], 1, MAX_SIDE)


def initial_membrane(bias, threshold_shift: int) -> np.ndarray:
    """Membrane at the start of a window: bias plus half a threshold, so counts round."""
    return np.asarray(bias, dtype=np.int64) + ((1 << threshold_shift) >> 1)


def quantize_activation(z, threshold_shift: int, act_bits: int, offset: int = 0):
    """The activation level of a pre-activation z (bias included):
    clamp(floor(z / 2**threshold_shift + 1/2) + offset, 0, 2**act_bits - 1).

    The one definition of the quantizer: on integer arrays (the integer model, the hardware's
    references) by shifts, on real ones (training, :class:`model.student.QuantAct`, where the
    step 2**threshold_shift may be below one) by floor; numpy or torch alike."""
    xp, z = as_array(z)
    if is_integral(xp, z) and threshold_shift >= 0:
        level = (z + ((1 << threshold_shift) >> 1)) >> threshold_shift
    else:
        level = xp.floor(z / 2.0 ** threshold_shift + 0.5)
    return xp.clip(level + offset, 0, (1 << act_bits) - 1)


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
    if weights.ndim != 2 or weights.shape[0] != inputs:
        raise ParameterError(f"if_layer: weights must have shape ({inputs}, outputs), got {weights.shape}")
    bias = np.zeros(weights.shape[1], np.int64) if bias is None else np.asarray(bias, np.int64)
    check_params(PARAMS, {"weights": weights, "bias": bias, "threshold_shift": threshold_shift,
                          "weight_kind": weight_kind, "act_bits": act_bits, "steps": steps},
                 derive=layer_shape, rules=(check_size, check_weights))
    if spikes.size and not np.isin(spikes, (0, 1)).all():
        raise ParameterError("if_layer: spikes must be 0 or 1")
    membrane = initial_membrane(bias, threshold_shift) + spikes.sum(axis=-2) @ weights
    return fire(membrane, steps, threshold_shift, act_bits)


def membrane_range(*, inputs: int, steps: int, bias, threshold_shift: int) -> tuple[int, int]:
    """Bounds of the membrane over a window, for sizing its register."""
    init = initial_membrane(bias, threshold_shift)
    span = inputs * steps
    return int(init.min()) - span, int(init.max()) + span
