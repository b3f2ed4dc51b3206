"""The event-driven IF layer's schedule, cycle by cycle in Amaranth's simulator: no membrane
word read in the cycle it is written (the block-RAM hazard), RAM ports idle without events,
and cycles that follow the events, not inputs x steps."""
import numpy as np
import pytest
from amaranth.sim import Simulator

from sorbet_hw.hw.blocks import get_block
from sorbet_hw.model.event_if_layer import event_if_layer


def simulate(params: dict, tokens: np.ndarray, ready_every: int = 1):
    """Run ``tokens`` (levels [S, N]) through the generator; returns (outputs [S, M], cycles
    per token, hazards seen, port-active cycles while idle)."""
    block = get_block("event_if_layer")
    p = block.check(params)
    dut = block.component(**block.resolve(params))
    beats = block.encode(p, tokens)["i_stream"]           # the declaration's event coding
    is_end = block.output_ends(p, np.zeros((len(tokens), p.outputs)))[0]
    record = {"hazards": 0, "idle_access": 0, "out": [], "token_cycles": []}
    sim = Simulator(dut)
    sim.add_clock(1e-8)

    async def bench(ctx):
        read, write = dut.membrane_ports
        sent, cycle, start = 0, 0, 0
        while len(record["token_cycles"]) < len(tokens):
            ctx.set(dut.i_stream.valid, sent < len(beats))
            if sent < len(beats):
                ctx.set(dut.i_stream.payload, beats[sent])
            ctx.set(dut.o_stream.ready, cycle % ready_every == 0)
            if ctx.get(read.en) and ctx.get(write.en) and ctx.get(read.addr) == ctx.get(write.addr):
                record["hazards"] += 1
            took = sent < len(beats) and ctx.get(dut.i_stream.ready)
            out = ctx.get(dut.o_stream.valid) and ctx.get(dut.o_stream.ready)
            beat = ctx.get(dut.o_stream.payload)
            await ctx.tick()
            cycle += 1
            sent += bool(took)
            if out:
                record["out"].append(beat)
                if is_end(beat):
                    record["token_cycles"].append(cycle - start)
                    start = cycle
            assert cycle < 200_000, "no progress"
        # Idle: nothing more to send; no RAM port may be enabled.
        for _ in range(20):
            await ctx.tick()
            if ctx.get(read.en) or ctx.get(write.en):
                record["idle_access"] += 1

    sim.add_testbench(bench)
    sim.run()
    outputs = block.decode(p, record["out"], (len(tokens), p.outputs))
    return outputs, record["token_cycles"], record["hazards"], record["idle_access"]


def reference(params: dict, tokens):
    p = get_block("event_if_layer").check(params)
    return event_if_layer(tokens, p.weights, bias=p.bias, threshold_shift=p.threshold_shift,
                          act_bits=p.act_bits, weight_kind=p.weight_kind,
                          input_signed=p.input_signed, output_signed=p.output_signed)


@pytest.mark.parametrize("params", [
    dict(inputs=6, outputs=2, batch=1, seed=1),                      # one group, a pass an event
    dict(inputs=10, outputs=6, lanes=2, batch=2, seed=2, threshold_shift=1),
    dict(inputs=8, outputs=4, lanes=4, batch=3, seed=4, event_kind="unit"),
], ids=["one-group-batch-1", "three-groups-batch-2", "unit-batch-3"])
def test_no_membrane_word_is_read_as_it_is_written_and_outputs_match(params):
    rng = np.random.default_rng(7)
    n = params["inputs"]
    tokens = np.where(rng.random((12, n)) < 0.6, rng.integers(-8, 8, (12, n)), 0)
    tokens[0] = 0                                   # a silent token first
    got, _, hazards, idle = simulate(params, tokens, ready_every=2)
    assert np.array_equal(got, reference(params, tokens))
    assert hazards == 0, f"{hazards} cycles read a membrane word as it was written"
    assert idle == 0, "a RAM port was enabled with no event waiting"


def test_cycles_follow_events_not_inputs():
    """Cycles a token of E < batch events = E + G (E + 5) + nonzero outputs + 1 (the
    docstring's count): a silent token costs only the fixed pass, whatever the layer's
    width. The first token (after reset) is not timed."""
    params = dict(inputs=64, outputs=8, lanes=4, seed=3, bias=[40, -40, 0, 0, 3, -3, 0, 0])
    groups = 2
    rng = np.random.default_rng(1)
    counts = (0, 0, 1, 8, 32, 63)
    tokens = np.zeros((len(counts), 64), np.int64)
    for i, count in enumerate(counts):
        tokens[i, rng.choice(64, count, replace=False)] = rng.choice([-3, -1, 2, 5], count)
    got, cycles, _, _ = simulate(params, tokens)
    expected = reference(params, tokens)
    assert np.array_equal(got, expected)
    for token, levels, took in list(zip(tokens, expected, cycles))[1:]:
        events = np.count_nonzero(token)
        assert took == events + groups * (events + 5) + np.count_nonzero(levels) + 1, (events, took)
