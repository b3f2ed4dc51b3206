"""Self-attention on activation levels: the reference of :mod:`hw.spiking_attention`, and
the attention of the integer model (:meth:`model.integer_model.IntegerStudent.layer`).

Per head, with levels q, k, v in 0 .. 2**b - 1 and offset off = 2**(b-1):

    s = (q - off)(k - off)^T                       integer dot products over the head
    p = ptsoftmax(s << score_left_shift, frac_bits = score_frac_bits)
    c = quantize_activation(p (v - off) + (off << theta), theta)    theta = context_shift

The hardware forms s from Q spikes against K counts and p (v - off) from V spikes against
power-of-two probabilities; the sums are the same integers.
"""
from __future__ import annotations

import numpy as np

from sorbet_hw.model.exact import matmul
from sorbet_hw.model.if_layer import quantize_activation
from sorbet_hw.model.params import Param, ParameterError
from sorbet_hw.model.ptsoftmax import ROUNDINGS, ptsoftmax

PARAMS = (Param("heads", 2, "attention heads", lo=1, hi=256, source="model.heads"),
          Param("tokens", 4, "sentence length n (PTsoftmax rows are n long)", lo=1, hi=512,
                source="tokens"),
          Param("head_dim", 8, "dimensions d a head", lo=1, hi=4096,
                source=lambda site: site.model.bert["hidden_size"] // site.model.heads),
          Param("act_bits", 4, "level width b", lo=1, hi=10, source="model.act_bits"),
          Param("steps", 16, "time steps T (at least 2**act_bits - 1)", lo="2 ** act_bits - 1", hi=1024,
                source="config.time_steps"),
          Param("score_left_shift", 0, "PTsoftmax's alignment of the scores", lo=0, hi=16,
                source="attention.score_left_shift"),
          Param("score_frac_bits", 4, "fractional bits of an aligned score", lo=0, hi=31,
                source="attention.frac_bits"),
          Param("out_frac_bits", 8, "fractional bits P of a probability", lo=1, hi=24,
                source="config.softmax_out_frac_bits"),
          Param("rounding", "up", "PTsoftmax's rounding of the row sum", choices=ROUNDINGS,
                source="config.softmax_rounding"),
          Param("context_shift", 4, "theta, the context neurons' threshold shift", lo=0, hi=31,
                source="attention.context_shift"))


def spiking_attention(q, k, v, *, heads: int, act_bits: int, score_left_shift: int,
                      score_frac_bits: int, out_frac_bits: int, rounding: str, context_shift: int,
                      trace: dict | None = None) -> np.ndarray:
    """Context levels ``[..., n, H]`` of query, key and value levels ``[..., n, H]``
    (H = heads x head dimension, head-major channels). ``trace`` receives the scores
    ``[..., heads, n, n]``, probabilities and context sums."""
    q, k, v = (np.asarray(t, dtype=np.int64) for t in (q, k, v))
    if q.shape != k.shape or q.shape != v.shape or q.shape[-1] % heads:
        raise ParameterError(f"attention takes q, k, v of one shape [..., n, heads * d], got "
                             f"{q.shape}, {k.shape}, {v.shape} for {heads} heads")
    off = 1 << (act_bits - 1)

    def split(t):
        return (t - off).reshape(*t.shape[:-1], heads, -1).swapaxes(-2, -3)

    scores = matmul(split(q), split(k).swapaxes(-1, -2))
    probs = ptsoftmax(scores << score_left_shift, frac_bits=score_frac_bits,
                      out_frac_bits=out_frac_bits, rounding=rounding)
    context_sum = matmul(probs, split(v)).swapaxes(-2, -3).reshape(q.shape)
    if trace is not None:
        trace.update(scores=scores, probs=probs, context_sum=context_sum)
    return quantize_activation(context_sum + (off << context_shift), context_shift, act_bits)
