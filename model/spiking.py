"""Spike-level simulation of the converted student (Average IF, T time steps), in PyTorch.

Every neuron is an Average IF neuron as defined in :mod:`model.if_layer`: it integrates its
input current over the T steps of a window (a spike on input j adds the weight w[j, i]), then
fires while its membrane reaches the threshold 2**threshold_shift, subtracting it, for at most
2**act_bits - 1 steps. The simulation really steps through time: spike trains are [T, ...]
0/1 tensors and every matrix product is a sum over steps of spikes times weights (adds only).

- The residual stream is encoded into spikes by IF neurons driven by a constant current.
- Q, K, V, O and both FFN projections are IF layers with +-1 (or ternary) weights.
- Scores: each Q spike adds the integer (K count - 8) of the key (Sorbet's Q spikes x K counts).
- PTsoftmax and BSPN are the integer operators of :mod:`model.ptsoftmax`, :mod:`model.bspn`.
- Context: each V spike adds the power-of-two probability p_ij to an IF neuron (A x V spikes).

Two encodings of the same levels (``encoding``):

- ``"offset"`` (today's dense hardware): a signed level l travels as l + 8 spikes of 16, so a
  zero costs 8 spikes; every train is 0/1 over T = 16 steps.
- ``"signed"`` (zero-silent, :mod:`model.event_if_layer`): l travels as |l| spikes of its
  sign, so a zero sends nothing; IF neurons fire +1 at or above the threshold and -1 below
  zero; each kind's window is as long as its largest count (8 steps for signed levels, 15 for
  the unsigned FFN hidden layer); Q spikes add the key's signed level, V spikes +-p_ij; the
  biases are the same layers' on signed levels (:func:`model.event_if_layer.signed_bias`).

Spike counts (minus the offset) equal the integer model's levels exactly in both; a test
checks it on real sentences, layer by layer. :class:`SpikeTally` reports the average firing
rate per layer kind (:func:`model.evaluate.event_statistics` counts events on the integer
model, whose levels the signed spikes carry exactly).
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch

from sorbet_hw.model.event_if_layer import fire_signed, level_range, signed_bias, window_steps
from sorbet_hw.model.integer_model import IntegerStudent
from sorbet_hw.model.params import ParameterError, check_choice, check_int
from sorbet_hw.model.ptsoftmax import ptsoftmax

ENCODINGS = ("offset", "signed")
KINDS = ("attention_input", "query", "key", "value", "context", "attention_output",
         "ffn_input", "intermediate", "output")


def fire(membrane: torch.Tensor, steps: int, threshold_shift: int, act_bits: int) -> torch.Tensor:
    """Spike trains [steps, ...] of integrated membranes (:func:`model.if_layer.fire`)."""
    v = membrane.clone()
    threshold = 1 << threshold_shift
    out = torch.zeros((steps,) + tuple(v.shape), dtype=torch.int64)
    for t in range(min(steps, (1 << act_bits) - 1)):
        spike = v >= threshold
        out[t] = spike
        v = v - spike * threshold
    return out


def integrate(spikes: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Sum over steps of spikes[t] @ weights: one add per (input spike, output neuron).
    Float64 products of 0/1 and small integers are exact."""
    w = weights.to(torch.float64)
    total = torch.zeros(spikes.shape[1:-1] + (weights.shape[-1],), dtype=torch.float64)
    for t in range(spikes.shape[0]):
        total += spikes[t].to(torch.float64) @ w
    return total.round().to(torch.int64)


class SpikingStudent:
    """The integer student run as spikes: offset counts over ``time_steps`` (default: its
    config's T), or zero-silent signed spikes over windows sized per kind."""

    def __init__(self, model: IntegerStudent, time_steps: int | None = None, encoding: str = "offset"):
        self.model = model
        self.encoding = check_choice("encoding", encoding, ENCODINGS)
        bits = model.act_bits
        self._biases: dict = {}
        if encoding == "signed":
            if time_steps is not None:
                raise ParameterError("signed spikes size each window to its largest count: "
                                     "give no time_steps")
            self.steps = window_steps(bits, True)
            return
        self.steps = check_int("time_steps", time_steps if time_steps is not None
                               else model.config["time_steps"], 1, 1024)
        if self.steps < (1 << bits) - 1:
            raise ParameterError(f"time_steps = {self.steps} cannot carry {bits}-bit activations: "
                                 f"use at least {(1 << bits) - 1}")

    # -- one layer, either encoding: where they differ is how a level travels ----------------
    def zero(self, signed: bool = True) -> int:
        """The spike count a zero level travels as: 8 (offset, signed), else nothing."""
        return self.model.offset if signed and self.encoding == "offset" else 0

    def levels(self, spikes: torch.Tensor, signed: bool = True) -> torch.Tensor:
        return spikes.sum(0) - self.zero(signed)

    def fire(self, membrane: torch.Tensor, threshold_shift: int, signed: bool = True) -> torch.Tensor:
        """Spike trains [T, ...] of membranes (half a threshold included)."""
        bits = self.model.act_bits
        if self.encoding == "signed":
            lo, hi = level_range(bits, signed)
            return fire_signed(membrane, window_steps(bits, signed), threshold_shift, lo, hi)
        return fire(membrane, self.steps, threshold_shift, bits)

    def if_layer(self, spikes: torch.Tensor, linear, input_signed: bool = True,
                 output_signed: bool = True) -> torch.Tensor:
        """A projection: the packed bias is the offset encoding's (its offsets folded in); on
        signed spikes the same layer's bias moves off them (:func:`signed_bias`)."""
        key = (id(linear), input_signed, output_signed)
        if key not in self._biases:
            bias = linear.bias if self.encoding == "offset" else signed_bias(
                linear.bias, linear.weights, linear.threshold_shift,
                self.model.offset if input_signed else 0, self.model.offset if output_signed else 0)
            self._biases[key] = torch.as_tensor(bias, dtype=torch.int64) + ((1 << linear.threshold_shift) >> 1)
        membrane = self._biases[key] + integrate(spikes, torch.as_tensor(linear.weights, dtype=torch.int64))
        return self.fire(membrane, linear.threshold_shift, output_signed)

    def encode(self, h: np.ndarray, exponent: int) -> torch.Tensor:
        """The residual stream's levels as spikes (IF neurons driven by a constant current)."""
        theta = exponent + self.model.frac_bits
        current = torch.as_tensor(h, dtype=torch.int64) + (self.zero() << theta) + ((1 << theta) >> 1)
        return self.fire(current, theta)

    def forward(self, ids, types=None, trace: list | None = None) -> np.ndarray:
        """Logits of one sentence; ``trace`` receives per layer the spike trains ([T, ...])
        of every spiking stage and the integer values of the others."""
        m = self.model
        ids = np.asarray(ids, dtype=np.int64)
        types = np.zeros_like(ids) if types is None else np.asarray(types, dtype=np.int64)
        e = m.embed(ids, types)
        h = m.norm(e, m.embedding_norm)
        if trace is not None:
            trace.append({"embedding": e, "embedding_norm": h})
        for layer in m.layers:
            h = self.layer(layer, h, trace)
        return m.head(h[0])

    def layer(self, layer, h: np.ndarray, trace: list | None) -> np.ndarray:
        m, F_, lin, zero = self.model, self.model.frac_bits, layer.linears, self.zero()
        x = self.encode(h, layer.input_exponent)
        q, k, v = (self.if_layer(x, lin[n]) for n in ("query", "key", "value"))
        steps, n, H = x.shape
        heads = m.heads
        k_levels = self.levels(k).reshape(n, heads, -1).transpose(0, 1)              # [h, n, d]
        q_heads = q.reshape(steps, n, heads, -1).transpose(1, 2)                     # [T, h, n, d]
        # Each Q spike adds the key's signed level; offset Q spikes then take back the
        # zero's 8 spikes: 8 * sum_d k once per key.
        scores = integrate(q_heads, k_levels.transpose(-1, -2)) - zero * k_levels.sum(-1)[:, None, :]
        at = m.attention_params(layer)
        probs = torch.as_tensor(ptsoftmax(scores.numpy() << at["score_left_shift"],
                                          frac_bits=at["frac_bits"],
                                          out_frac_bits=m.config["softmax_out_frac_bits"],
                                          rounding=m.config["softmax_rounding"]))
        theta = at["context_shift"]
        v_heads = v.reshape(steps, n, heads, -1).transpose(1, 2)                     # [T, h, n, d]
        # V spikes x probabilities: membrane of context neuron (i, d) in head h.
        accumulated = torch.zeros(heads, n, v_heads.shape[-1], dtype=torch.float64)
        for t in range(steps):
            accumulated += probs.to(torch.float64) @ v_heads[t].to(torch.float64)
        bias = (zero << theta) - zero * probs.sum(-1, keepdim=True)
        c = self.fire(bias + ((1 << theta) >> 1) + accumulated.round().to(torch.int64), theta)
        c = c.transpose(1, 2).reshape(steps, n, H)                                   # [T, n, H]
        a = self.if_layer(c, lin["attention_output"])
        sum1 = h + (self.levels(a).numpy() << (lin["attention_output"].exponent + F_))
        h1 = m.norm(sum1, layer.norms["attention_norm"])
        x2 = self.encode(h1, layer.ffn_input_exponent)
        f = self.if_layer(x2, lin["intermediate"], output_signed=False)
        o = self.if_layer(f, lin["output"], input_signed=False)
        sum2 = h1 + (self.levels(o).numpy() << (lin["output"].exponent + F_))
        h2 = m.norm(sum2, layer.norms["output_norm"])
        if trace is not None:
            trace.append({"attention_input": x, "query": q, "key": k, "value": v,
                          "scores": scores.numpy(), "probs": probs.numpy(), "context": c,
                          "attention_output": a, "attention_sum": sum1, "attention_norm": h1,
                          "ffn_input": x2, "output_sum": sum2,
                          "intermediate": f, "output": o, "output_norm": h2})
        return h2


class SpikeTally:
    """Running totals of the spike trains of sentence after sentence (:meth:`add` one trace,
    then drop it: a dev set's trains would fill the memory), per layer kind and encoder layer.

    - :meth:`rates`: average spikes per neuron per time step; with ``signed``, the rates the
      zero-silent encoding of the same levels would have (a signed level c - offset as
      |c - offset| spikes of its sign) for every kind but the FFN hidden layer (unsigned: the
      IF clamp is its ReLU).
    - :meth:`nonzero_levels`: the fraction of nonzero levels (spike count - offset for the
      signed kinds, the count for the FFN hidden layer): the work left to a layer that skips
      zero inputs (the BWN baseline with ``skip_zeros``).
    """

    def __init__(self, offset: int):
        self.offset = offset
        self._totals = defaultdict(float)     # (figure, kind, layer) -> sum
        self.layers = 0

    def add(self, trace: list[dict]) -> None:
        for i, layer in enumerate(trace[1:]):
            for kind in KINDS:
                s = torch.as_tensor(layer[kind])
                counts = s.sum(0)
                zero = 0 if kind == "intermediate" else self.offset
                signed = counts if kind == "intermediate" else (counts - self.offset).abs()
                for figure, value in (("spikes", s.sum()), ("signed", signed.sum()),
                                      ("nonzero", (counts != zero).sum()),
                                      ("steps", s.numel()), ("levels", counts.numel())):
                    self._totals[figure, kind, i] += float(value)
            self.layers = max(self.layers, i + 1)

    def _ratio(self, figure: str, slots: str) -> dict[str, list[float]]:
        t = self._totals
        return {kind: [t[figure, kind, i] / t[slots, kind, i] for i in range(self.layers)] for kind in KINDS}

    def rates(self, signed: bool = False) -> dict[str, list[float]]:
        return self._ratio("signed" if signed else "spikes", "steps")

    def nonzero_levels(self) -> dict[str, list[float]]:
        return self._ratio("nonzero", "levels")


