"""The sequential divider and square root of the conventional baselines (hw.sequential), in
Amaranth's simulator: exact results, tags carried, the documented latency and throughput."""
import math

import numpy as np
import pytest
from amaranth import unsigned
from amaranth.sim import Simulator

from sorbet_hw.hw.sequential import SequentialDivider, SequentialSquareRoot, steps_per_cycle


def _run(unit, operands, ready_every: int = 1):
    """Feed every operand as soon as accepted; take results every ``ready_every`` cycles.
    Returns the (result, tag) pairs and the cycle each operand was accepted and each result
    taken."""
    results, accepted, taken = [], [], []

    async def bench(ctx):
        cycle, sent = 0, 0
        while len(results) < len(operands):
            if sent < len(operands):
                ctx.set(unit.i_stream.valid, 1)
                ctx.set(unit.i_stream.payload.value, operands[sent])
                ctx.set(unit.i_stream.payload.tag, sent)
            else:
                ctx.set(unit.i_stream.valid, 0)
            ctx.set(unit.o_stream.ready, cycle % ready_every == 0)
            if sent < len(operands) and ctx.get(unit.i_stream.ready):
                accepted.append(cycle)
                sent += 1
            if ctx.get(unit.o_stream.valid) and cycle % ready_every == 0:
                results.append((ctx.get(unit.o_stream.payload.result), ctx.get(unit.o_stream.payload.tag)))
                taken.append(cycle)
            await ctx.tick()
            cycle += 1
            assert cycle < 100 * len(operands) * unit.cycles + 100

    sim = Simulator(unit)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return results, accepted, taken


@pytest.mark.parametrize("numerator, width, steps", [(1 << 21, 13, 2), (1 << 21, 13, 1), (1000, 6, 3),
                                                      (1 << 12, 4, 13), (12345, 16, 4)])
def test_divider_is_exact_and_keeps_its_latency(numerator, width, steps):
    unit = SequentialDivider(numerator=numerator, divisor_width=width, tag_shape=unsigned(8),
                             steps_per_cycle=steps)
    rng = np.random.default_rng(width * steps)
    divisors = [1, (1 << width) - 1, *rng.integers(1, 1 << width, 40).tolist()]
    results, accepted, taken = _run(unit, divisors)
    assert results == [(numerator // d, i % 256) for i, d in enumerate(divisors)]
    assert unit.cycles == math.ceil(numerator.bit_length() / steps)
    # Result in cycle t + cycles; the next operand accepted the cycle the result is taken.
    assert [t - a for a, t in zip(accepted, taken)] == [unit.cycles] * len(divisors)
    assert np.diff(accepted).tolist() == [unit.cycles] * (len(divisors) - 1)


@pytest.mark.parametrize("width, steps", [(44, 2), (44, 1), (7, 4), (1, 1), (38, 5)])
def test_square_root_is_exact(width, steps):
    unit = SequentialSquareRoot(value_width=width, tag_shape=unsigned(8), steps_per_cycle=steps)
    rng = np.random.default_rng(width + steps)
    top = (1 << width) - 1
    squares = {v for k in range(1, 40) for v in (k * k - 1, k * k)}
    randoms = {int(v) for v in rng.integers(0, top, 30, endpoint=True)}
    values = sorted(v for v in {0, 1, top} | squares | randoms if v <= top)
    results, _, _ = _run(unit, values, ready_every=3)      # a slow consumer: results wait
    assert results == [(math.isqrt(v), i % 256) for i, v in enumerate(values)]


def test_steps_per_cycle_and_checks():
    assert steps_per_cycle(22, 16) == 2 and steps_per_cycle(22, 22) == 1 and steps_per_cycle(5, 0) == 5
    with pytest.raises(Exception, match="steps_per_cycle"):
        SequentialDivider(numerator=100, divisor_width=4, steps_per_cycle=8)
