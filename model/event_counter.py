"""Counting zero-silent events back into levels: the reference of :mod:`hw.event_counter`.

The converse of :mod:`model.event_encoder`, with its parameters: a token's events, counted
per channel, are its levels again, so the reference is the same identity on levels, and
the event coding is the contract for the beats.
"""
from __future__ import annotations

from sorbet_hw.model.event_encoder import PARAMS, event_levels

__all__ = ["PARAMS", "event_levels"]
