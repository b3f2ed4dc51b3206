"""Spike counting: spike trains back to levels, the reference of :mod:`hw.spike_counter`.

The level a train of an Average-IF neuron carries is its spike count over the window; the
counters are ``level_bits`` wide, so a train may carry at most 2**level_bits - 1 spikes (an IF
neuron never fires more often).
"""
from __future__ import annotations

import numpy as np

from sorbet_hw.model.params import Param, ParameterError

PARAMS = (Param("width", 16, "spike trains, N", lo=1, hi=65536, source="bert.hidden_size"),
          Param("steps", 16, "beats T a window", lo=1, hi=1024, source="config.time_steps"),
          Param("level_bits", 4, "width of a count", lo=1, hi=10, source="model.act_bits"))


def count_spikes(spikes, level_bits: int) -> np.ndarray:
    """Levels ``[..., N]`` of spike trains ``spikes[..., T, N]``."""
    counts = np.asarray(spikes, dtype=np.int64).sum(axis=-2)
    if counts.size and counts.max() > (1 << level_bits) - 1:
        raise ParameterError(f"a spike train carries {counts.max()} spikes, more than a "
                             f"{level_bits}-bit counter holds ({(1 << level_bits) - 1})")
    return counts
