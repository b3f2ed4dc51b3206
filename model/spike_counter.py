"""Spike counting: spike trains back to levels, the reference of :mod:`hw.spike_counter`.

The level a train of an Average-IF neuron carries is its spike count over the window; the
counters are ``level_bits`` wide, so a train may carry at most 2**level_bits - 1 spikes (an IF
neuron never fires more often).
"""
from __future__ import annotations

import numpy as np

from sorbet_hw.model.params import ParameterError, check_int


def check_counter_params(*, width: int, steps: int, level_bits: int) -> None:
    check_int("width", width, 1, 65536)
    check_int("steps", steps, 1, 1024)
    check_int("level_bits", level_bits, 1, 10)


def count_spikes(spikes, level_bits: int) -> np.ndarray:
    """Levels ``[..., N]`` of spike trains ``spikes[..., T, N]``."""
    counts = np.asarray(spikes, dtype=np.int64).sum(axis=-2)
    if counts.size and counts.max() > (1 << level_bits) - 1:
        raise ParameterError(f"a spike train carries {counts.max()} spikes, more than a "
                             f"{level_bits}-bit counter holds ({(1 << level_bits) - 1})")
    return counts
