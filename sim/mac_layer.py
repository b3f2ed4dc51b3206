"""Bench of the MAC layer block against :func:`model.mac_layer.mac_layer`.

Vectors: ``inputs[S, N]`` signed activations, ``expected[S, M]`` requantized outputs.
"""
from __future__ import annotations

import sys

import numpy as np

import cocotb

from sorbet_hw.model.params import signed_range
from sorbet_hw.sim.bench import reference, replay
from sorbet_hw.model.vectors import Vectors


def make_vectors(params: dict, count: int, seed: int) -> Vectors:
    """Directed vectors (zeros, all minimum, all maximum), then random ones of random spread."""
    n, _ = np.shape(params["weights"])
    lo, hi = signed_range(params["act_width"])
    rng = np.random.default_rng(seed)
    rows = [np.zeros(n), np.full(n, lo), np.full(n, hi)]
    for _ in range(count):
        spread = rng.integers(1, hi + 2)
        rows.append(np.clip(rng.integers(-spread, spread + 1, size=n), lo, hi))
    inputs = np.stack(rows).astype(np.int64)
    return Vectors("mac_layer", dict(params), inputs, reference("mac_layer", params, inputs), source="random",
                   note=f"3 directed + {count} random vectors, seed {seed}")


def cycles_per_beat(vectors: Vectors) -> float:
    n, m = np.shape(vectors.params["weights"])
    groups = m // vectors.params["lanes"]
    return 1 + groups * (n // vectors.params["inputs_per_cycle"] + 1)


# Parameter sets the test suite replays on both simulators: the default and three others.
_rng = np.random.default_rng(2024)
CONFIGURATIONS = {
    "default": {},
    "lanes": dict(inputs=12, outputs=6, lanes=2, inputs_per_cycle=3, shift=6, seed=5,
                  bias=[500, -300, 0, 4000, -4000, 70]),
    "serial-narrow": dict(inputs=5, outputs=3, lanes=1, inputs_per_cycle=1, act_width=4,
                          weight_width=3, out_width=6, shift=2, seed=7),
    "wide-out": dict(inputs=16, outputs=8, lanes=4, inputs_per_cycle=4, out_width=20, seed=9,
                     bias=_rng.integers(-20000, 20000, 8)),
}
# On Icarus only: Verilator's C++ compile of the fully parallel layer (512 8x8 multipliers) takes over ten
# minutes on two cores.
ICARUS_ONLY = {"default"}


@cocotb.test()
async def mac_layer_bench(dut):
    await replay(dut, sys.modules[__name__])
