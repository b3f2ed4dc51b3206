"""Generate, build and run a block's bench on a vector file, with cocotb's Python runner."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hw.blocks import generate, get_block
from sim.vectors import Vectors, load_vectors, save_vectors
from sorbet_hw.tools import setup_simulator

REPO = Path(__file__).resolve().parent.parent
DEFAULT_BUILD = Path("build")


class BuildError(RuntimeError):
    """The simulator could not compile the generated Verilog."""


@dataclass
class BenchResult:
    block: str
    simulator: str
    vectors: int
    passed: bool
    cycles: int
    active_cycles: int
    beats_in: int
    beats_out: int
    mismatching_vectors: int
    first_mismatch: str
    log: Path

    @property
    def cycles_per_beat(self) -> float:
        return self.active_cycles / max(self.beats_in, 1)


def config_key(block: str, params: dict, extra: str = "") -> str:
    """Short stable hash of a resolved configuration (names the build directory)."""
    canon = {k: (np.asarray(v).tolist() if isinstance(v, (np.ndarray, list, tuple)) else v)
             for k, v in sorted(params.items())}
    text = json.dumps({"block": block, "params": canon, "extra": extra}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def run_bench(vectors: Vectors | Path, simulator: str, *, build_root: Path = DEFAULT_BUILD,
              valid_prob: float = 1.0, ready_prob: float = 1.0, seed: int = 1,
              wrap=None, wrap_name: str = "", waves: bool = False) -> BenchResult:
    """Replay ``vectors`` (a :class:`Vectors` or a vector file) on the block they were made for.

    The Verilog is generated from the parameters recorded with the vectors; builds are kept
    under ``build_root/sim/<simulator>/<block>-<hash>`` and reused across runs.
    """
    setup_simulator(simulator)
    from cocotb_tools.runner import get_runner
    from cocotb_tools.check_results import get_results

    if not isinstance(vectors, Vectors):
        vectors = load_vectors(Path(vectors))
    block = get_block(vectors.block)
    params = block.resolve(vectors.params)
    key = config_key(vectors.block, params, wrap_name)
    build_dir = (Path(build_root) / "sim" / simulator / f"{vectors.block}-{key}").resolve()
    src_dir = build_dir / "rtl"
    verilog = generate(vectors.block, params, src_dir, wrap=wrap)

    run_id = hashlib.sha256(f"{valid_prob}-{ready_prob}-{seed}-{os.getpid()}-{id(vectors)}".encode()).hexdigest()[:8]
    run_dir = build_dir / "runs" / run_id
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    vec_path = save_vectors(run_dir / "vectors.npz", Vectors(vectors.block, params, vectors.inputs,
                                                            vectors.expected, vectors.source,
                                                            vectors.note))
    result_path = run_dir / "result.json"
    log_path = run_dir / "sim.log"

    runner = get_runner(simulator)
    build_args = ["-O2"] if simulator == "verilator" else []
    try:
        runner.build(sources=[verilog], hdl_toplevel=vectors.block, build_dir=build_dir / "obj",
                     timescale=("1ns", "1ps"), build_args=build_args, waves=waves,
                     log_file=build_dir / "build.log")
    except (RuntimeError, SystemExit):
        raise BuildError(f"{simulator} could not build {verilog}; its log is "
                         f"{build_dir / 'build.log'}") from None
    env = {
        "SORBET_VECTORS": str(vec_path), "SORBET_RESULT": str(result_path),
        "SORBET_VALID_PROB": str(valid_prob), "SORBET_READY_PROB": str(ready_prob),
        "SORBET_SEED": str(seed),
        "PYTHONPATH": os.pathsep.join([str(REPO)] + [p for p in sys.path if p]),
    }
    xml = run_dir / "results.xml"
    try:
        runner.test(test_module=f"sim.{vectors.block}", hdl_toplevel=vectors.block,
                    build_dir=build_dir / "obj", test_dir=run_dir, extra_env=env,
                    results_xml=str(xml), waves=waves, log_file=log_path)
    except SystemExit:
        pass          # cocotb's Verilator runner exits on a failing test; the XML says which
    tests, failed = get_results(xml) if xml.exists() else (0, 1)
    report = json.loads(result_path.read_text()) if result_path.exists() else {}
    return BenchResult(
        block=vectors.block, simulator=simulator, vectors=len(vectors),
        passed=(tests > 0 and failed == 0 and report.get("mismatching_vectors", 1) == 0),
        cycles=report.get("cycles", 0), active_cycles=report.get("active_cycles", 0),
        beats_in=report.get("beats_in", 0), beats_out=report.get("beats_out", 0),
        mismatching_vectors=report.get("mismatching_vectors", -1),
        first_mismatch=report.get("first_mismatch") or ("" if report else f"the bench wrote no result; see {log_path}"),
        log=log_path)
