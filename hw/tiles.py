"""Token tiles: a weight word read once and applied to several tokens.

A layer with ``tokens_per_tile`` T > 1 takes its tokens T at a time (a *tile*; the last one
of a sentence may hold fewer) and reads each weight word once per tile instead of once per
token. A linear layer treats tokens independently, so a tile may hold any tokens: a
sentence's, in order, is what the benches and the energy measurements send.

How a tile travels on an input stream:

- **levels** (``bwn_layer``): each token's beats as without tiles, one more bit on top of
  the payload, ``last``, set on the final beat of a tile (the end of a packet, AXI-Stream's
  ``tlast``). A block also closes a tile at T tokens;
- **events** (``event_if_layer``): one beat per input index that some token of the tile
  uses, ascending, carrying every token's level there (zero for a silent one), so that
  weight row j is read once and applied to the whole tile in one cycle; then one beat with
  ``last`` set whose ``token`` field counts the tile's tokens less one
  (:func:`hw.events.event_layout`). Graded events are an activation-sparse BWN in this
  form: a tile's activations with its all-zero rows left out.

Outputs leave token by token, as without tiles.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth import Shape, unsigned
from amaranth.lib import data

from sorbet_hw.hw.block import Param, pack

__all__ = ["TILE", "LevelTiles", "tiles", "tiled_layout"]

TILE = Param("tokens_per_tile", 1, "tokens that share each weight read (1: every token reads "
             "every weight)", lo=1, hi=256)


def tiles(count: int, tokens_per_tile: int) -> list[range]:
    """The tiles of ``count`` tokens: T at a time, the last one possibly shorter."""
    return [range(start, min(start + tokens_per_tile, count))
            for start in range(0, count, tokens_per_tile)]


def tiled_layout(layout: data.ArrayLayout, tokens_per_tile: int):
    """A token's beat layout, with the tile's ``last`` bit on top when tiles hold tokens."""
    if tokens_per_tile == 1:
        return layout
    return data.StructLayout({"levels": layout, "last": unsigned(1)})


@dataclass(frozen=True)
class LevelTiles:
    """The :class:`hw.block.Stream` coding of levels ``[S, N]`` in tiles: each token's levels
    packed as many a beat as ``levels(p)`` (an ``ArrayLayout``) holds, ``last`` on the final
    beat of every tile."""
    levels: object
    tokens_per_tile: object = lambda p: p.tokens_per_tile

    def value_range(self, p) -> tuple[int, int]:
        shape = Shape.cast(self.levels(p).elem_shape)
        if shape.signed:
            return -(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1
        return 0, (1 << shape.width) - 1

    def to_beats(self, layout, p, values) -> list[int]:
        inner = layout if isinstance(layout, data.ArrayLayout) else layout["levels"].shape
        count = inner.length
        values = np.asarray(values, dtype=np.int64)
        tokens = values.reshape(-1, values.shape[-1])
        beats = pack(tokens, Shape.cast(inner.elem_shape), count)
        if isinstance(layout, data.ArrayLayout):
            return beats
        per_token = tokens.shape[1] // count
        last = 1 << inner.size
        for tile in tiles(len(tokens), self.tokens_per_tile(p)):
            beats[tile.stop * per_token - 1] |= last
        return beats

