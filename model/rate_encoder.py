"""Rate encoding: a level as a spike train, the reference of :mod:`hw.rate_encoder`.

A level l of a window of T steps spikes at steps t < l (a thermometer code): exactly the train
an Average-IF neuron of that level emits (:func:`model.if_layer.fire` fires in a window's
first steps), so an encoded level and a fired one are the same input to the next layer.
"""
from __future__ import annotations

import numpy as np

from sorbet_hw.model.params import ParameterError, check_int


def check_rate_params(*, width: int, steps: int, level_bits: int) -> None:
    check_int("width", width, 1, 65536)
    check_int("level_bits", level_bits, 1, 10)
    check_int("steps", steps, 1, 1024)
    if steps < (1 << level_bits) - 1:
        raise ParameterError(f"steps = {steps} cannot carry {level_bits}-bit levels: "
                             f"use at least {(1 << level_bits) - 1}")


def rate_encode(levels, steps: int) -> np.ndarray:
    """Spike trains ``[..., steps, N]`` (0/1) of ``levels[..., N]``."""
    levels = np.asarray(levels, dtype=np.int64)
    return (np.arange(steps)[:, None] < levels[..., None, :]).astype(np.int64)
