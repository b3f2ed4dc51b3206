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
    """An event of one of ``size`` channels carrying a signed ``level_bits``-bit level. In
    tiles of several tokens (:mod:`hw.tiles`), a beat carries input ``index``'s levels for
    every token of the tile (``levels``, zero for a silent token), and the ``last`` beat the
    tile's tokens less one in ``token``."""
    index = unsigned(max(1, (size - 1).bit_length()))
    if tokens_per_tile == 1:
        return data.StructLayout({"index": index, "level": signed(level_bits), "last": unsigned(1)})
    return data.StructLayout({"index": index, "levels": data.ArrayLayout(signed(level_bits), tokens_per_tile),
                              "last": unsigned(1),
                              "token": unsigned((tokens_per_tile - 1).bit_length())})


@dataclass(frozen=True)
class EventCoding:
    """The :class:`hw.block.Stream` coding of vectors of levels ``[S, size]`` as events: per
    vector its events (graded, or ``|l|`` unit events: :func:`model.event_if_layer.events_of`),
    then the ``last`` beat. ``levels(p)`` is the (lowest, highest) level a vector holds,
    ``kind(p)`` the kind of event. A layout with ``levels`` takes vectors in tiles of
    ``tokens_per_tile(p)`` (:mod:`hw.tiles`): a beat per input index (per event of the busiest
    token there) carrying every token's level, indices ascending, then one ``last`` beat
    carrying the tile's tokens less one."""
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
        vectors = values.reshape(-1, values.shape[-1] if values.ndim else 1)
        if "levels" in layout.members:
            return self._tile_beats(layout, p, vectors)
        index_bits, level_bits = layout["index"].width, layout["level"].width
        mask = (1 << level_bits) - 1
        last = 1 << (index_bits + level_bits)
        beats = []
        for vector in vectors:
            beats.extend(index | ((level & mask) << index_bits)
                         for index, level in events_of(vector, self.kind(p)))
            beats.append(last)
        return beats

    def _tile_beats(self, layout: data.StructLayout, p, vectors) -> list[int]:
        """Per tile, per input index that some token's events use (ascending): as many beats
        as that index has events in its busiest token (graded: one), beat k carrying each
        token's k-th event level there (or zero); then the ``last`` beat."""
        from sorbet_hw.hw.tiles import tiles
        index_bits = layout["index"].width
        level_bits = layout["levels"].shape.elem_shape.width
        tile_size = layout["levels"].shape.length
        mask = (1 << level_bits) - 1
        last_at = index_bits + level_bits * tile_size
        beats = []
        for tile in tiles(len(vectors), self.tokens_per_tile(p)):
            by_index: dict[int, list[list[int]]] = {}
            for t, token in enumerate(tile):
                for index, level in events_of(vectors[token], self.kind(p)):
                    runs = by_index.setdefault(index, [[0] * tile_size])
                    k = next((k for k, levels in enumerate(runs) if levels[t] == 0), None)
                    if k is None:
                        runs.append([0] * tile_size)
                        k = len(runs) - 1
                    runs[k][t] = level
            for index in sorted(by_index):
                for levels in by_index[index]:
                    beats.append(index | sum((level & mask) << (index_bits + t * level_bits)
                                             for t, level in enumerate(levels)))
            beats.append((1 << last_at) | ((len(tile) - 1) << (last_at + 1)))
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
