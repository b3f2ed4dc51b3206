"""Zero-silent event encoding of levels: the reference of :mod:`hw.event_encoder` (and, with
the same parameters, of :mod:`hw.event_counter`, its converse).

The event design's rate encoder and spike counter. A token's levels ``[N]`` leave as events
(:func:`model.event_if_layer.events_of`: one graded event (j, l) per nonzero level, or |l|
unit events (j, +-1)), then a ``last`` beat; zero sends nothing. Counting a token's events
per channel gives the levels back. Either way the *levels* are unchanged: the reference is
the identity on levels within their range, and the block's event coding
(:class:`hw.events.EventCoding`) is the contract for the beats, checked exactly by the benches
(events in channel order, no zero event, nothing missing).
"""
from __future__ import annotations

import numpy as np

from sorbet_hw.model.event_if_layer import EVENT_KINDS, level_range
from sorbet_hw.model.params import Param, ParameterError

PARAMS = (Param("width", 16, "channels a token, N", lo=1, hi=65536, source="bert.hidden_size"),
          Param("act_bits", 4, "level width", lo=1, hi=8, source="model.act_bits"),
          Param("signed", True, "signed levels (-2**(act_bits-1) .. 2**(act_bits-1) - 1) or "
                "unsigned (0 .. 2**act_bits - 1: the FFN hidden layer)", flag=True,
                source="output_signed"),
          Param("event_kind", "graded", "a level l as one event carrying l (graded) or as |l| "
                "events of its sign (unit)", choices=EVENT_KINDS))


def event_levels(levels, *, act_bits: int = 4, signed: bool = True) -> np.ndarray:
    """The levels ``[..., N]`` a token's events carry: ``levels`` themselves, checked to lie in
    the ``act_bits``-bit range."""
    levels = np.asarray(levels)
    if levels.size and not np.issubdtype(levels.dtype, np.integer):
        raise ParameterError(f"levels must be integers, got {levels.dtype}")
    lo, hi = level_range(act_bits, signed)
    if levels.size and (levels.min() < lo or levels.max() > hi):
        raise ParameterError(f"levels must lie in {lo}..{hi}, got {levels.min()}..{levels.max()}")
    return levels.astype(np.int64)
