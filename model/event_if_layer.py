"""Zero-silent signed spikes and the event-driven IF layer: the reference of
:mod:`hw.event_if_layer`.

Signed levels (the activations of Q, K, V, the context, the attention output, the FFN input
and output: l in [-8, 7] at 4 bits) travel without an offset, so that **zero sends nothing**:

- as *unit* events, a level l is |l| spikes carrying its sign (+1 or -1): an Average IF
  neuron fires +1 while its membrane is at or above the threshold and -1 while it is below
  zero (:func:`fire_signed`), so its count is floor(v / 2**theta) clamped, the integer
  model's level exactly; a window needs as many steps as the largest |l| (8 for signed
  levels, 15 for the unsigned FFN hidden layer);
- as *graded* events (Loihi 2's graded spikes), a level l != 0 is one event carrying l.

Either way the membrane a layer integrates is bias + sum_j l_j * w_ji: the integer model does
not change. Only its bias moves, since today's offset counts c = l + 8 folded -8 * sum_j w_ji
into it (:func:`signed_bias`).

:func:`event_if_layer` is the layer on levels: what the event-driven engine computes from the
events of one token, whatever their kind.
"""
from __future__ import annotations

import numpy as np

from sorbet_hw.model.if_layer import (DEFAULT_ACT_BITS, WEIGHT_PARAMS, check_size, check_weights,
                                      initial_membrane, layer_shape, quantize_activation)
from sorbet_hw.model.params import Param, ParameterError, as_array, check_params, with_sources

EVENT_KINDS = ("graded", "unit")

def _moved_bias(site):
    """The bias moved off the offsets of the signed levels in and out (signed_bias)."""
    lin, offset = site.linear, site.model.offset
    return signed_bias(lin.bias, lin.weights, int(lin.threshold_shift),
                       offset if site.input_signed else 0, offset if site.output_signed else 0)


PARAMS = with_sources(WEIGHT_PARAMS, bias=_moved_bias) + (
    Param("act_bits", DEFAULT_ACT_BITS, "level width", lo=1, hi=8, source="model.act_bits"),
    Param("input_signed", True, "input levels are signed (-2**(act_bits-1) .. 2**(act_bits-1) - 1) "
          "or unsigned (0 .. 2**act_bits - 1: the FFN hidden layer)", flag=True, source="input_signed"),
    Param("output_signed", True, "output levels signed, or unsigned (the FFN hidden layer: the "
          "clamp at zero is its ReLU)", flag=True, source="output_signed"),
    Param("event_kind", "graded", "an input level l travels as one event carrying l (graded) "
          "or as |l| events of its sign (unit)", choices=EVENT_KINDS),
)


def level_range(act_bits: int, signed: bool) -> tuple[int, int]:
    """Lowest and highest level of ``act_bits``-bit levels."""
    if signed:
        return -(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1
    return 0, (1 << act_bits) - 1


def window_steps(act_bits: int, signed: bool) -> int:
    """Time steps a window of unit events needs: the largest |level| (8 or 15 at 4 bits)."""
    lo, hi = level_range(act_bits, signed)
    return max(hi, -lo)


def signed_bias(bias, weights, threshold_shift: int, input_offset: int, output_offset: int) -> np.ndarray:
    """The bias of a layer on signed levels, from the bias of the same layer on offset counts
    (inputs c = l + input_offset, outputs counted from 0 with output_offset as zero)."""
    w = np.asarray(weights, dtype=np.int64)
    return (np.asarray(bias, dtype=np.int64) + input_offset * w.sum(axis=0)
            - (output_offset << threshold_shift))


def fire_signed(membrane, steps: int, threshold_shift: int, lo: int, hi: int):
    """Unit spike trains ``[steps, ...]`` (+1, 0, -1) of integer membranes (half a threshold
    included), numpy or torch alike: +1 while v >= threshold, -1 while v < 0, each
    subtracting or adding the threshold, until the count reaches ``hi`` or ``lo``. The counts
    are clamp(floor(v / 2**threshold_shift), lo, hi)."""
    xp, v = as_array(membrane)
    threshold = 1 << threshold_shift
    count = xp.zeros_like(v)
    out = []
    for _ in range(steps):
        spike = (xp.astype((v >= threshold) & (count < hi), v.dtype)
                 - xp.astype((v < 0) & (count > lo), v.dtype))
        out.append(spike)
        v = v - spike * threshold
        count = count + spike
    return xp.stack(out) if out else xp.zeros((0, *v.shape), dtype=v.dtype)


def event_if_layer(levels, weights, *, bias=None, threshold_shift: int = 0,
                   act_bits: int = DEFAULT_ACT_BITS, weight_kind: str = "binary",
                   input_signed: bool = True, output_signed: bool = True) -> np.ndarray:
    """Output levels ``[..., M]`` of input levels ``[..., N]``:
    clamp(floor((bias + 2**theta // 2 + sum_j l_j * w_ji) / 2**theta), lo, hi), one
    accumulate of +-l_j per input event and output neuron."""
    levels = np.asarray(levels, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.int64)
    if weights.ndim != 2 or levels.shape[-1:] != weights.shape[:1]:
        raise ParameterError(f"event_if_layer: levels [..., N] and weights [N, M] do not agree: "
                             f"{levels.shape} and {weights.shape}")
    bias = np.zeros(weights.shape[1], np.int64) if bias is None else np.asarray(bias, np.int64)
    check_params(PARAMS, {"weights": weights, "bias": bias, "threshold_shift": threshold_shift,
                          "weight_kind": weight_kind, "act_bits": act_bits},
                 derive=layer_shape, rules=(check_size, check_weights))
    lo, hi = level_range(act_bits, input_signed)
    if levels.size and (levels.min() < lo or levels.max() > hi):
        raise ParameterError(f"event_if_layer: input levels must lie in {lo}..{hi}, got "
                             f"{levels.min()}..{levels.max()}")
    offset = 0 if not output_signed else 1 << (act_bits - 1)
    return quantize_activation(bias + levels @ weights, threshold_shift, act_bits, offset) - offset


def membrane_range(*, inputs: int, bias, threshold_shift: int, act_bits: int) -> tuple[int, int]:
    """Bounds of the membrane over a token: each input adds at most 2**act_bits in size."""
    init = initial_membrane(bias, threshold_shift)
    span = inputs << act_bits
    return int(init.min()) - span, int(init.max()) + span


def events_of(levels, event_kind: str) -> list[tuple[int, int]]:
    """The events of one token's levels ``[N]``, in input order: (index, level) of each
    nonzero level (graded), or |l| events (index, +-1) (unit). Zero sends nothing."""
    events = []
    for j in np.flatnonzero(np.asarray(levels)):
        level = int(levels[j])
        if event_kind == "graded":
            events.append((int(j), level))
        else:
            events.extend([(int(j), 1 if level > 0 else -1)] * abs(level))
    return events
