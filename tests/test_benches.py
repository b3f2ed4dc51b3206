"""Every block's cocotb bench, on Verilator and Icarus, against the model references."""
import importlib

import pytest
from amaranth import Module
from amaranth.lib import wiring

from sorbet_hw.hw.blocks import get_block
from sorbet_hw.sim.runner import run_bench
from tests.configs import CONFIGS, VERILATOR_EXCLUDED, vector_count

CASES = [(block, name, sim) for block, configs in CONFIGS.items() for name in configs
         for sim in ("verilator", "icarus") if not (sim == "verilator" and (block, name) in VERILATOR_EXCLUDED)]


def vectors_for(block, name, seed=11):
    bench = importlib.import_module(f"sorbet_hw.sim.{block}")
    params = get_block(block).resolve(CONFIGS[block][name])
    return bench.make_vectors(params, vector_count(block, name), seed)


@pytest.mark.parametrize("block, name, simulator", CASES, ids=[f"{s}-{b}-{n}" for b, n, s in CASES])
def test_bench_matches_reference(block, name, simulator, tmp_path_factory):
    vectors = vectors_for(block, name)
    # Random stalls on both sides exercise the handshakes; the default configuration runs
    # with light stalls, the others with heavy ones.
    prob = 0.9 if name == "default" else 0.6
    result = run_bench(vectors, simulator, valid_prob=prob, ready_prob=prob, seed=3)
    assert result.passed, result.first_mismatch
    assert result.vectors >= vector_count(block, name)
    declared = get_block(block)
    assert result.beats_out == declared.output_beats(declared.check(vectors.params), vectors.expected)


@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
@pytest.mark.parametrize("name", ["default", "small-gaps", "one-element"])
def test_ptsoftmax_delay_line_under_a_slow_output(name, simulator):
    """Scores always offered, probabilities rarely taken: PTsoftmax's row delay line must
    not move while the word it read is not taken (a word overwritten before pass 2 read it,
    or read and dropped, would show as a wrong probability)."""
    vectors = vectors_for("ptsoftmax", name)
    result = run_bench(vectors, simulator, valid_prob=1.0, ready_prob=0.2, seed=4)
    assert result.passed, result.first_mismatch
    assert result.cycles > 3 * vectors.expected.size          # the output did throttle it


class FlipSmallestProbability(wiring.Component):
    """PTsoftmax with one wrong bit: the smallest probability, 2**-P, comes out as zero."""

    def __init__(self, inner):
        self.inner = inner
        super().__init__(inner.signature)

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self.inner
        m.d.comb += [
            inner.i_stream.valid.eq(self.i_stream.valid),
            inner.i_stream.payload.eq(self.i_stream.payload),
            self.i_stream.ready.eq(inner.i_stream.ready),
            self.o_stream.valid.eq(inner.o_stream.valid),
            self.o_stream.payload.eq(inner.o_stream.payload ^ (inner.o_stream.payload == 1)),
            inner.o_stream.ready.eq(self.o_stream.ready),
        ]
        return m


def test_a_one_bit_mutation_is_caught():
    vectors = vectors_for("ptsoftmax", "nearest-wide", seed=5)
    result = run_bench(vectors, "verilator", wrap=FlipSmallestProbability, wrap_name="flip-lsb")
    assert not result.passed
    assert result.mismatching_vectors > 0
    assert "gave" in result.first_mismatch and "reference says" in result.first_mismatch
