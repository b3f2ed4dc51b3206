"""Event streams: how zero-silent levels travel between event-driven blocks.

One beat is one event, ``{index, level, last}``: input ``index`` carries ``level`` (a graded
event, or +-1 for a unit spike). A token's events come in index order and end with a beat
whose ``last`` is set and which carries no event, so a token of zeros is that one beat. The
level is signed, one bit wider than the activations, so that signed (-8 .. 7) and unsigned
(0 .. 15, the FFN hidden layer) levels share one layout.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from amaranth import signed, unsigned
from amaranth.lib import data

from sorbet_hw.model.event_if_layer import events_of

__all__ = ["event_layout", "EventCoding"]


def event_layout(size: int, level_bits: int, tokens_per_tile: int = 1) -> data.StructLayout:
    """An event of one of ``size`` channels carrying a signed ``level_bits``-bit level; in
    tiles of several tokens (:mod:`hw.tiles`), also the ``token`` of the tile it belongs to
    (on the ``last`` beat: the tile's tokens less one)."""
    fields = {"index": unsigned(max(1, (size - 1).bit_length())), "level": signed(level_bits),
              "last": unsigned(1)}
    if tokens_per_tile > 1:
        fields["token"] = unsigned((tokens_per_tile - 1).bit_length())
    return data.StructLayout(fields)


@dataclass(frozen=True)
class EventCoding:
    """The :class:`hw.block.Stream` coding of vectors of levels ``[S, size]`` as events: per
    vector its events (graded, or ``|l|`` unit events: :func:`model.event_if_layer.events_of`),
    then the ``last`` beat. ``levels(p)`` is the (lowest, highest) level a vector holds,
    ``kind(p)`` the kind of event."""
    levels: Callable
    kind: Callable = lambda p: "graded"
    tokens_per_tile: Callable = lambda p: 1

    def value_range(self, p) -> tuple[int, int]:
        return self.levels(p)

    def is_end(self, layout: data.StructLayout):
        """A predicate on beats: the last beat of a vector."""
        bit = layout["index"].width + layout["level"].width
        return lambda beat: bool(beat >> bit & 1)

    def to_beats(self, layout: data.StructLayout, p, values) -> list[int]:
        values = np.asarray(values, dtype=np.int64)
        index_bits, level_bits = layout["index"].width, layout["level"].width
        mask = (1 << level_bits) - 1
        last = 1 << (index_bits + level_bits)
        vectors = values.reshape(-1, values.shape[-1] if values.ndim else 1)
        beats = []
        if "token" not in layout.members:
            for vector in vectors:
                beats.extend(index | ((level & mask) << index_bits)
                             for index, level in events_of(vector, self.kind(p)))
                beats.append(last)
            return beats
        from sorbet_hw.hw.tiles import tiles
        token_at = index_bits + level_bits + 1
        for tile in tiles(len(vectors), self.tokens_per_tile(p)):
            events = [(index, t, level) for t in range(len(tile))
                      for index, level in events_of(vectors[tile[t]], self.kind(p))]
            # sorted() is stable: a unit event's repeats keep their order.
            beats.extend(index | ((level & mask) << index_bits) | (t << token_at)
                         for index, t, level in sorted(events, key=lambda e: e[:2]))
            beats.append(last | ((len(tile) - 1) << token_at))
        return beats

    def from_beats(self, layout: data.StructLayout, p, beats: list[int], shape: tuple) -> np.ndarray:
        """Levels ``shape`` back from beats: the sum per index of each vector's events. Beats
        that are not exactly the events of those levels (out of order, a zero level, an
        index out of range, a missing ``last``) raise ValueError with the first one."""
        index_bits, level_bits = layout["index"].width, layout["level"].width
        size = shape[-1]
        out = np.zeros((int(np.prod(shape[:-1], dtype=np.int64)), size), np.int64)
        vector = 0
        for beat in beats:
            if vector >= len(out):
                raise ValueError(f"an event after the last of {len(out)} vectors")
            if beat >> (index_bits + level_bits) & 1:
                vector += 1
                continue
            index = beat & ((1 << index_bits) - 1)
            level = (beat >> index_bits) & ((1 << level_bits) - 1)
            if level >= 1 << (level_bits - 1):
                level -= 1 << level_bits
            if index >= size:
                raise ValueError(f"an event of channel {index}, of {size}")
            out[vector, index] += level
        canonical = self.to_beats(layout, p, out)
        if canonical != list(beats):
            at = next((i for i, (a, b) in enumerate(zip(canonical, beats)) if a != b),
                      min(len(canonical), len(beats)))
            raise ValueError(f"beat {at} of {len(beats)} is not the event its levels send "
                             f"(got {beats[at] if at < len(beats) else 'none':}, expected "
                             f"{canonical[at] if at < len(canonical) else 'none'})")
        return out.reshape(shape)
