"""Rate encoding: a level as a spike train, the reference of :mod:`hw.rate_encoder`.

A level l of a window of T steps spikes at steps t < l (a thermometer code): exactly the train
an Average-IF neuron of that level emits (:func:`model.if_layer.fire` fires in a window's
first steps), so an encoded level and a fired one are the same input to the next layer.
"""
from __future__ import annotations

import numpy as np

from sorbet_hw.model.params import Param

PARAMS = (Param("width", 16, "levels a window, N", lo=1, hi=65536, source="bert.hidden_size"),
          Param("level_bits", 4, "width of a level", lo=1, hi=10, source="model.act_bits"),
          Param("steps", 16, "time steps T a window (at least 2**level_bits - 1)",
                lo="2 ** level_bits - 1", hi=1024, source="config.time_steps"))


def rate_encode(levels, steps: int) -> np.ndarray:
    """Spike trains ``[..., steps, N]`` (0/1) of ``levels[..., N]``."""
    levels = np.asarray(levels, dtype=np.int64)
    return (np.arange(steps)[:, None] < levels[..., None, :]).astype(np.int64)
