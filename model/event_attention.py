"""Self-attention on zero-silent signed events: the reference of :mod:`hw.event_attention`.

The event design's attention. Query, key and value arrive as signed levels ``l`` in
-2**(b-1) .. 2**(b-1) - 1 (the offset off, a zero sends nothing) and the context leaves the
same way. Per head:

    s = q k^T                                      integer dot products over the head
    p = ptsoftmax(s << score_left_shift, frac_bits = score_frac_bits)
    c = clamp(floor(p v / 2**theta + 1/2), -off, off - 1)        theta = context_shift

which is :func:`model.spiking_attention.spiking_attention` on the same levels with the
offset moved: q - off there is q here, and its context level minus off is c. The hardware
forms s from the query's events (each of |q| signed spikes adds the key's level) and p v
from the nonzero probabilities (each adds the value's levels shifted by its exponent).
"""
from __future__ import annotations

import numpy as np

from sorbet_hw.model.event_encoder import event_levels
from sorbet_hw.model.spiking_attention import PARAMS as _SPIKING_PARAMS
from sorbet_hw.model.spiking_attention import spiking_attention

# The spiking attention's parameters but the time steps: events have no window.
PARAMS = tuple(p for p in _SPIKING_PARAMS if p.name != "steps")


def event_attention(q, k, v, *, heads: int, act_bits: int, score_left_shift: int,
                    score_frac_bits: int, out_frac_bits: int, rounding: str, context_shift: int,
                    trace: dict | None = None) -> np.ndarray:
    """Signed context levels ``[..., n, H]`` of signed query, key and value levels
    ``[..., n, H]`` (H = heads x head dimension, head-major channels)."""
    off = 1 << (act_bits - 1)
    # Signed levels, checked as the event converters check theirs, then offset.
    q, k, v = (event_levels(t, act_bits=act_bits, signed=True) + off for t in (q, k, v))
    return spiking_attention(q, k, v, heads=heads, act_bits=act_bits,
                             score_left_shift=score_left_shift, score_frac_bits=score_frac_bits,
                             out_frac_bits=out_frac_bits, rounding=rounding,
                             context_shift=context_shift, trace=trace) - off
