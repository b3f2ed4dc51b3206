"""What every block bench shares: a valid/ready stream driver and monitor, and the replay of a
vector file against the generated Verilog.

The driver and monitor are agents of one clock loop: each cycle the loop samples both in the
ReadOnly phase (settled values, where a transfer is decided), lets the edge pass, then lets
them drive their next values. One loop instead of a coroutine per agent halves the
simulator round trips, which bound how fast cocotb runs.

A bench module (``sim/<block>.py``) supplies the block's vectors (``make_vectors``, directed
and random), a bound on its cycles (``cycles_per_beat``) and the configurations the test
suite replays; the beats in and out come from the block's declaration (:mod:`hw.block`). The
environment of the simulation names the vector file and the run's settings:

``SORBET_VECTORS``  vector file to replay (see :mod:`model.vectors`)
``SORBET_RESULT``   JSON file the bench writes its figures to (cycles, beats, mismatches)
``SORBET_VALID_PROB`` / ``SORBET_READY_PROB``  probability that the driver offers a beat /
                    the monitor accepts one in a cycle (1.0 = full speed, for throughput)
``SORBET_SEED``     seed of those random stalls
"""
from __future__ import annotations

import json
import os
import random
import numpy as np

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import First, ReadOnly, RisingEdge, Timer
from cocotb.utils import get_sim_time

from sorbet_hw.model.vectors import load_vectors

CLOCK_NS = 10


class StreamDriver:
    """Offers ``beats`` (ints) on the ``<prefix>__valid/ready/payload`` sink of the DUT."""

    def __init__(self, dut, prefix: str, beats: list[int], valid_prob: float, rng: random.Random):
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.payload = getattr(dut, f"{prefix}__payload")
        self.beats, self.valid_prob, self.rng = beats, valid_prob, rng
        self.sent = 0
        self.first_cycle = None
        self._offering = False
        self._fired = False

    @property
    def done(self) -> bool:
        return self.sent == len(self.beats)

    def sample(self, cycle: int) -> None:
        self._fired = self._offering and int(self.ready.value) == 1
        if self._fired and self.first_cycle is None:
            self.first_cycle = cycle

    def drive(self) -> None:
        if self._fired:
            self.sent += 1
        self._offering = not self.done and (self.valid_prob >= 1.0 or self.rng.random() < self.valid_prob)
        self.valid.value = int(self._offering)
        if self._offering:
            self.payload.value = self.beats[self.sent]


class StreamMonitor:
    """Accepts beats from the ``<prefix>__valid/ready/payload`` source of the DUT."""

    def __init__(self, dut, prefix: str, expected_beats: int, ready_prob: float, rng: random.Random,
                 ends: tuple | None = None):
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.payload = getattr(dut, f"{prefix}__payload")
        self.expected_beats, self.ready_prob, self.rng = expected_beats, ready_prob, rng
        # An event stream: (is_end(beat), vectors) also ends the run once every vector's last
        # beat came, however many events the DUT sent (too few is then a mismatch, not a
        # timeout).
        self.ends, self.ended = ends, 0
        self.beats: list[int] = []
        self.last_cycle = None
        self._accepting = False

    @property
    def done(self) -> bool:
        return len(self.beats) >= self.expected_beats or (
            self.ends is not None and self.ended >= self.ends[1])

    def sample(self, cycle: int) -> None:
        if self._accepting and int(self.valid.value) == 1:
            value = self.payload.value          # a one-bit port gives a Logic, not a LogicArray
            self.beats.append(value.to_unsigned() if hasattr(value, "to_unsigned") else int(value))
            self.last_cycle = cycle
            if self.ends is not None and self.ends[0](self.beats[-1]):
                self.ended += 1

    def drive(self) -> None:
        self._accepting = self.ready_prob >= 1.0 or self.rng.random() < self.ready_prob
        self.ready.value = int(self._accepting)


async def reset(dut, cycles: int = 2) -> None:
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    dut.rst.value = 1
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    dut.rst.value = 0


async def run_streams(dut, drivers: list[StreamDriver], monitor: StreamMonitor, max_cycles: int) -> int:
    """Clock the agents until the monitor has every beat; return the cycles it took.

    With no random stalls, stretches where every input waits (all sent, or not ready) and no
    output comes are skipped in one wait (a layer computes for long stretches between
    transfers): the Python side then costs per transfer, not per cycle."""
    agents = [*drivers, monitor]
    for agent in agents:
        agent.drive()
    cycle = 0
    start = get_sim_time("ns")
    while not monitor.done:
        await ReadOnly()
        for agent in agents:
            agent.sample(cycle)
        inputs_wait = all(d.done or (d.valid_prob >= 1.0 and int(d.ready.value) == 0) for d in drivers)
        if inputs_wait and monitor.ready_prob >= 1.0 and int(monitor.valid.value) == 0:
            left = max(max_cycles - cycle, 1)
            wake = [RisingEdge(monitor.valid), Timer(left * CLOCK_NS, unit="ns")]
            wake += [RisingEdge(d.ready) for d in drivers if not d.done]
            await First(*wake)
            await ReadOnly()
            cycle = round((get_sim_time("ns") - start) / CLOCK_NS)
            for agent in agents:
                agent.sample(cycle)
        await RisingEdge(dut.clk)
        cycle += 1
        if cycle > max_cycles:
            sent = ", ".join(f"{d.sent} of {len(d.beats)}" for d in drivers)
            raise AssertionError(
                f"timeout: {len(monitor.beats)} of {monitor.expected_beats} output beats after "
                f"{cycle} cycles ({sent} input beats accepted)")
        for agent in agents:
            agent.drive()
    return cycle


async def replay(dut, bench) -> None:
    """Replay the vector file named by SORBET_VECTORS and compare every output.

    The beats come from the block's declaration (:meth:`hw.block.Block.encode` and
    ``decode``: one driver per input stream port); ``bench`` is the block's bench module,
    which gives ``cycles_per_beat(vectors)``, a generous bound on the cycles an input beat
    takes, for the timeout.
    """
    from sorbet_hw.hw.blocks import get_block
    vectors = load_vectors(os.environ["SORBET_VECTORS"])
    valid_prob = float(os.environ.get("SORBET_VALID_PROB", "1.0"))
    ready_prob = float(os.environ.get("SORBET_READY_PROB", "1.0"))
    rng = random.Random(int(os.environ.get("SORBET_SEED", "1")))
    block = get_block(vectors.block)
    params = block.check(vectors.params)
    ports = block.encode(params, vectors.inputs)
    beats_out = block.output_beats(params, vectors.expected)
    # One agent per port, each with its own stall sequence (as cocotbext-axi's sources).
    drivers = [StreamDriver(dut, port, beats, valid_prob, random.Random(rng.random()))
               for port, beats in ports.items()]
    monitor = StreamMonitor(dut, block.output_port, beats_out, ready_prob, rng,
                            ends=block.output_ends(params, vectors.expected))
    await reset(dut)
    beats_in = sum(len(d.beats) for d in drivers)
    stall = 1.0 / max(min(valid_prob, ready_prob), 0.05)
    bound = int((beats_in * bench.cycles_per_beat(vectors) + beats_out) * stall * 2) + 1000
    cycles = await run_streams(dut, drivers, monitor, bound)
    try:
        got = block.decode(params, monitor.beats, vectors.expected.shape)
        report = compare(vectors, got)
    except ValueError as e:          # beats that no output vector sends (an event stream's)
        report = {"vectors": len(vectors.expected), "mismatching_vectors": len(vectors.expected),
                  "first_mismatch": f"output beats undecodable: {e}"}
    first = min(d.first_cycle for d in drivers if d.first_cycle is not None)
    report.update(cycles=cycles, beats_in=beats_in, beats_out=beats_out,
                  active_cycles=(monitor.last_cycle - first + 1))
    if "SORBET_RESULT" in os.environ:
        with open(os.environ["SORBET_RESULT"], "w") as f:
            json.dump(report, f)
    dut._log.info("%d vectors, %d cycles, %d mismatching vectors", len(vectors), cycles,
                  report["mismatching_vectors"])
    assert report["mismatching_vectors"] == 0, report["first_mismatch"]


def compare(vectors, got: np.ndarray) -> dict:
    expected = vectors.expected
    bad = np.flatnonzero((got != expected).reshape(len(expected), -1).any(axis=1))
    first = ""
    if bad.size:
        i = int(bad[0])
        first = (f"vector {i} of {len(expected)} ({vectors.source}): inputs {vectors.inputs[i].tolist()} "
                 f"gave {got[i].tolist()}, the reference says {expected[i].tolist()}")
    return {"vectors": len(expected), "mismatching_vectors": int(bad.size), "first_mismatch": first}


def sparse_levels(rng: np.random.Generator, shape, lo: int, hi: int) -> np.ndarray:
    """Random levels in lo..hi whose density of nonzero ones is itself random (d**2 for a
    uniform d, or dense one time in three or so): the event benches' inputs, from silent to
    dense."""
    density = rng.random() ** 2 if rng.random() < 0.7 else 1.0
    return np.where(rng.random(shape) < density, rng.integers(lo, hi + 1, shape), 0)


def reference(block: str, params: dict, inputs: np.ndarray) -> np.ndarray:
    """The expected outputs of ``inputs``: the block's reference (its declaration's)."""
    from sorbet_hw.hw.blocks import get_block
    return np.asarray(get_block(block).run_reference(params, inputs))
