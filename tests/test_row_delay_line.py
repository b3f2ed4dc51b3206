"""The row delay line (`hw.row_delay_line`) on its own, with lags the softmax blocks do not use
(a reader with a pointer of its own whose lag is no multiple of the row; two such readers),
random pauses of the source and of each reader: every reader gets every row's words in order,
with its first and last flags at the row's ends, and with nothing paused one element a cycle."""
import random

import pytest
from amaranth import Cat, Module, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from sorbet_hw.hw.row_delay_line import RowDelayLine

WIDTH = 8


class _Echo(wiring.Component):
    """Writes each element into a line; each reader streams out what it reads, with its place."""

    def __init__(self, n, depth, lags):
        self.n, self.depth, self.lags = n, depth, lags
        super().__init__({"i_stream": In(stream.Signature(WIDTH)),
                          **{f"o_{name}": Out(stream.Signature(WIDTH + 2)) for name in lags}})

    def elaborate(self, platform):
        m = Module()
        line = RowDelayLine(m, self.i_stream, shape=unsigned(WIDTH), row_length=self.n, depth=self.depth,
                            lags=self.lags)
        m.d.comb += line.word.eq(self.i_stream.payload)
        outs = {name: getattr(self, f"o_{name}") for name in self.lags}
        line.build(can={name: o.ready for name, o in outs.items()})
        for name, reader in line.readers.items():
            m.d.comb += [outs[name].valid.eq(reader.pending),
                         outs[name].payload.eq(Cat(reader.data, reader.first, reader.last))]
        return m


def _run(n, depth, lags, rows, *, pause_in, pause_out, seed):
    rng = random.Random(seed)
    dut = _Echo(n, depth, lags)
    words = [rng.randrange(1 << WIDTH) for _ in range(rows * n)]
    got = {name: [] for name in lags}
    accepted = []

    async def testbench(ctx):
        sent, cycle = 0, 0
        while any(len(g) < len(words) for g in got.values()):
            assert cycle < 20 * len(words) + 200, "the line stopped"
            offer = sent < len(words) and rng.random() >= pause_in
            ctx.set(dut.i_stream.valid, offer)
            if offer:
                ctx.set(dut.i_stream.payload, words[sent])
            for name in lags:
                ctx.set(getattr(dut, f"o_{name}").ready, rng.random() >= pause_out)
            await ctx.delay(0)
            if offer and ctx.get(dut.i_stream.ready):
                accepted.append(cycle)
                sent += 1
            for name in lags:
                o = getattr(dut, f"o_{name}")
                if ctx.get(o.valid) and ctx.get(o.ready):
                    got[name].append(ctx.get(o.payload))
            await ctx.tick()
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    for name in lags:
        beats = got[name]
        assert [b & ((1 << WIDTH) - 1) for b in beats] == words, name
        assert [(b >> WIDTH) & 1 for b in beats] == [int(i % n == 0) for i in range(len(words))], name
        assert [(b >> (WIDTH + 1)) & 1 for b in beats] == [int(i % n == n - 1) for i in range(len(words))], name
    return accepted


LINES = [(3, 3, {"b": 3}), (1, 1, {"b": 1}), (5, 7, {"b": 6}), (3, 8, {"b": 4, "c": 8}),
         (1, 3, {"b": 1, "c": 3}), (4, 11, {"b": 4, "c": 11}), (4, 13, {"b": 5, "c": 13})]


@pytest.mark.parametrize("n, depth, lags", LINES, ids=[f"n{n}-d{d}-" + "-".join(map(str, l.values()))
                                                       for n, d, l in LINES])
@pytest.mark.parametrize("pause_in, pause_out", [(0.0, 0.0), (0.3, 0.0), (0.0, 0.4), (0.5, 0.5)])
def test_every_reader_gets_every_row_in_order(n, depth, lags, pause_in, pause_out):
    accepted = _run(n, depth, lags, rows=9, pause_in=pause_in, pause_out=pause_out, seed=n * depth)
    if pause_in == pause_out == 0.0:
        assert accepted[-1] - accepted[0] == len(accepted) - 1      # one element a cycle


@pytest.mark.parametrize("lag", [2, 9])
def test_a_lag_outside_the_line_is_refused(lag):
    with pytest.raises(ValueError, match=f"reader 'b' has lag {lag}, outside row_length .. depth = 3 .. 8"):
        _run(3, 8, {"b": lag}, rows=1, pause_in=0, pause_out=0, seed=1)


def test_build_needs_every_reader():
    class Partial(_Echo):
        def elaborate(self, platform):
            m = Module()
            line = RowDelayLine(m, self.i_stream, shape=unsigned(WIDTH), row_length=3, depth=8, lags=self.lags)
            line.build(can={"b": 1})
            return m

    with pytest.raises(ValueError, match=r"needs `can` for the readers \['b', 'c'\], not \['b'\]"):
        Simulator(Partial(3, 8, {"b": 4, "c": 8}))
