"""One element a cycle, sustained: the softmax and norm blocks (the spiking ones and their
conventional baselines, whose once-a-row divider and square root are sequential) run in
Amaranth's simulator with the input always valid and the output always ready. Twice the rows
must take exactly twice the input beats more cycles, and every output must match the
reference."""
import numpy as np
import pytest
from amaranth.sim import Simulator

from sorbet_hw.hw.blocks import get_block
import importlib

CASES = [
    ("ptsoftmax", {}), ("ptsoftmax", dict(row_length=1, score_width=4, frac_bits=0, out_frac_bits=1)),
    ("ptsoftmax", dict(row_length=3, score_width=8, frac_bits=1, out_frac_bits=1)),  # 2-bit gaps
    ("softmax", {}), ("softmax", dict(row_length=1, score_width=4, frac_bits=0, out_frac_bits=1)),
    ("softmax", dict(row_length=3)), ("softmax", dict(row_length=24)),
    ("softmax", dict(gap_buffer=True)), ("softmax", dict(row_length=1, score_width=4, frac_bits=0,
                                                         out_frac_bits=1, gap_buffer=True)),
    ("bspn", {}), ("layernorm", {}), ("layernorm", dict(channels=2, in_width=4, norm_frac_bits=0, out_width=4)),
    ("layernorm", dict(channels=48, in_width=16, norm_frac_bits=8, out_width=16, gamma_width=12,
                       gamma_frac_bits=8)),
]


def _busy_cycles(name: str, params: dict, rows: int) -> tuple[int, int]:
    """(input beats, cycles from the first input accepted to the last output), bit exact."""
    block = get_block(name)
    params = block.resolve(params)
    component = block.build(params)
    bench = importlib.import_module(f"sorbet_hw.sim.{name}")
    vectors = bench.make_vectors(params, rows, seed=3)
    checked = block.check(params)
    beats, outputs, cycles = block.encode(checked, vectors.inputs)["i_stream"], [], {}

    async def testbench(ctx):
        ctx.set(component.o_stream.ready, 1)
        sent, cycle = 0, 0
        while len(outputs) < block.output_beats(checked, vectors.expected):
            ctx.set(component.i_stream.valid, sent < len(beats))
            if sent < len(beats):
                ctx.set(component.i_stream.payload, beats[sent])
                if ctx.get(component.i_stream.ready):
                    cycles.setdefault("first", cycle)
                    sent += 1
            if ctx.get(component.o_stream.valid):
                outputs.append(ctx.get(component.o_stream.payload))
                cycles["last"] = cycle
            await ctx.tick()
            cycle += 1
            assert cycle < 4 * len(beats) + 500, "the block stopped"

    sim = Simulator(component)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert np.array_equal(block.decode(checked, outputs, vectors.expected.shape), vectors.expected)
    return len(beats), cycles["last"] - cycles["first"] + 1


@pytest.mark.parametrize("name, params", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_one_element_a_cycle_sustained(name, params):
    beats, busy = _busy_cycles(name, params, 6)
    more_beats, more_busy = _busy_cycles(name, params, 12)
    assert more_busy - busy == more_beats - beats


LINES = [("ptsoftmax", {}), ("ptsoftmax", dict(row_length=3, score_width=8, frac_bits=1, out_frac_bits=1)),
         ("ptsoftmax", dict(row_length=1, score_width=4, frac_bits=0, out_frac_bits=1)),
         ("softmax", {}), ("softmax", dict(gap_buffer=True)), ("softmax", dict(row_length=3)),
         ("softmax", dict(row_length=1, score_width=4, frac_bits=0, out_frac_bits=1)),
         ("softmax", dict(row_length=1, score_width=4, frac_bits=0, out_frac_bits=1, gap_buffer=True))]


@pytest.mark.parametrize("name, params", LINES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(LINES)])
@pytest.mark.parametrize("pause", [1, 2, 5, 40])
def test_row_delay_line_pauses(name, params, pause):
    """The row delay lines of PTsoftmax and the softmax: when the scores pause at a row's
    end, the line runs without scores to finish the rows in it, and the next row's first
    score waits at most N - 1 cycles for a lap's start; every probability stays exact."""
    block = get_block(name)
    params = block.resolve(params)
    checked, n = block.check(params), params["row_length"]
    component = block.build(params)
    vectors = importlib.import_module(f"sorbet_hw.sim.{name}").make_vectors(params, 8, seed=7)
    rows = block.encode(checked, vectors.inputs)["i_stream"]
    rows = [rows[i:i + n] for i in range(0, len(rows), n)]
    outputs, waits = [], []

    async def testbench(ctx):
        ctx.set(component.o_stream.ready, 1)
        cycle = 0

        async def tick():               # a cycle, taking the output the block offers in it
            nonlocal cycle
            if ctx.get(component.o_stream.valid):
                outputs.append(ctx.get(component.o_stream.payload))
            await ctx.tick()
            cycle += 1

        for row in rows:
            for i, beat in enumerate(row):
                ctx.set(component.i_stream.valid, 1)
                ctx.set(component.i_stream.payload, beat)
                offered = cycle
                while not ctx.get(component.i_stream.ready):
                    await tick()
                if i == 0:
                    waits.append(cycle - offered)
                await tick()
            ctx.set(component.i_stream.valid, 0)
            for _ in range(pause):
                await tick()
        while len(outputs) < vectors.expected.size:
            assert cycle < 10 * vectors.expected.size + 100, "the last row never left"
            await tick()

    sim = Simulator(component)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert np.array_equal(block.decode(checked, outputs, vectors.expected.shape), vectors.expected)
    assert max(waits) <= n - 1
    if n > 1 and pause < n:
        assert max(waits) > 0        # the pause did start a lap without scores: the path under test
