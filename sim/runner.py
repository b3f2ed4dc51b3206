"""Generate, build and run a block's bench on a vector file, with cocotb's Python runner."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import sorbet_hw
from sorbet_hw.hw.blocks import generate, get_block
from sorbet_hw.model.vectors import Vectors, load_vectors, save_vectors
from sorbet_hw.sim.vectors import check_vectors
from sorbet_hw.files import locked
from sorbet_hw.tools import setup_simulator, with_make_variables

# The folder that holds the sorbet_hw package (a checkout or site-packages): the cocotb
# process imports the benches from there.
PACKAGE_ROOT = Path(sorbet_hw.__file__).resolve().parent.parent
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
    saif: Path | None = None             # every net's switching activity (``saif``)
    build_seconds: float = 0.0           # simulator compile (seconds only when a build is reused)
    sim_seconds: float = 0.0             # the simulation run itself

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
              wrap=None, wrap_name: str = "", waves: bool = False,
              netlist: Path | None = None, saif: bool = False,
              quick_build: bool = False) -> BenchResult:
    """Replay ``vectors`` (a :class:`Vectors` or a vector file) on the block they were made for.

    The Verilog is generated from the parameters recorded with the vectors; builds are kept
    under ``build_root/sim/<simulator>/<block>-<hash>`` and reused across runs. ``netlist``
    replaces it with another Verilog file of the same module (a synthesized gate netlist);
    ``saif`` (Verilator) writes every net's switching activity (toggle counts, time at 0 and
    at 1) as SAIF, the format power tools read, to ``dump.saif`` of the run.
    ``quick_build`` compiles Verilator's C++ without optimization: a large design (a real
    projection's weight ROM) builds about 3x faster and simulates a few tokens as fast.
    """
    check_build_path(build_root, simulator)
    setup_simulator(simulator)
    if not isinstance(vectors, Vectors):
        vectors = check_vectors(load_vectors(Path(vectors)), vectors)
    block = get_block(vectors.block)
    params = block.resolve(vectors.params)
    extra = wrap_name
    if netlist is not None:
        extra += "netlist:" + hashlib.sha256(Path(netlist).read_bytes()).hexdigest()[:12]
    if saif:
        if simulator != "verilator":
            raise ValueError("saif needs the verilator simulator")
        extra += ":saif"
    if quick_build and simulator == "verilator":
        extra += ":O0"                 # an unoptimized model is never reused for a long run
    key = config_key(vectors.block, params, extra)
    build_dir = (Path(build_root) / "sim" / simulator / f"{vectors.block}-{key}").resolve()
    with locked(build_dir, f"the {simulator} build of {vectors.block} in {build_root}"):
        return _run_locked(vectors, simulator, params, build_dir, valid_prob, ready_prob, seed,
                           wrap, waves, netlist, saif, quick_build)


def check_build_path(build_root: Path, simulator: str) -> None:
    """GNU Make, which builds Verilator's model (and cocotb's makefiles), cannot handle a
    path with spaces or its own special characters: refuse it up front, saying why."""
    where = str(Path(os.path.abspath(build_root)))
    bad = sorted({c for c in where if c in " #$:;*?\"\'\t"})
    if bad:
        raise BuildError(f"the build directory {where} contains {' '.join(repr(c) for c in bad)}, "
                         f"which GNU Make (used to build {simulator} models) cannot handle: pass "
                         f"--build with a path without them")


# Verilator's options for a gate netlist: Yosys netlists draw width and ordering warnings;
# smaller C++ functions compile faster (about a tenth less time on a real FFN layer's netlist).
NETLIST_BUILD_ARGS = ["-Wno-fatal", "--output-split-cfuncs", "1000"]


def _run_locked(vectors, simulator, params, build_dir, valid_prob, ready_prob, seed, wrap, waves,
                netlist, saif, quick_build) -> BenchResult:
    from cocotb_tools.runner import get_runner
    from cocotb_tools.check_results import get_results
    src_dir = build_dir / "rtl"
    if netlist is None:
        verilog = generate(vectors.block, params, src_dir, wrap=wrap)
    else:
        src_dir.mkdir(parents=True, exist_ok=True)
        verilog = src_dir / f"{vectors.block}.v"
        shutil.copyfile(netlist, verilog)
    sources, build_args = [verilog], (["-O2"] if simulator == "verilator" else [])
    if netlist is not None and simulator == "verilator":
        build_args += NETLIST_BUILD_ARGS

    (build_dir / "runs").mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(dir=build_dir / "runs", prefix=f"{seed}-"))
    vec_path = save_vectors(run_dir / "vectors.npz", Vectors(vectors.block, params, vectors.inputs,
                                                            vectors.expected, vectors.source,
                                                            vectors.note))
    result_path = run_dir / "result.json"
    log_path = run_dir / "sim.log"

    runner = get_runner(simulator)
    if simulator == "verilator" and not saif:
        _expose_only_ports(runner)       # with saif every net stays public, so it is traced
    if saif:
        _trace_saif(runner)
        waves = True
    started = time.time()
    # A build is reused only if it finished: make takes any file newer than its sources as up
    # to date, a truncated archive of a build killed or out of disk space included. The stamp
    # is written after a build succeeds and removed before one starts; without it the object
    # folder is built again from nothing.
    obj, stamp = build_dir / "obj", build_dir / "obj" / ".sorbet-built"
    if obj.exists() and not stamp.is_file():
        shutil.rmtree(obj)
    stamp.unlink(missing_ok=True)
    try:
        with _cxx_optimization(not (quick_build and simulator == "verilator")):
            runner.build(sources=sources, hdl_toplevel=vectors.block, build_dir=obj,
                         timescale=("1ns", "1ps"), build_args=build_args, waves=waves,
                         log_file=build_dir / "build.log")
    except (RuntimeError, SystemExit):
        shutil.rmtree(obj, ignore_errors=True)
        raise BuildError(f"{simulator} could not build {verilog}; its log is "
                         f"{build_dir / 'build.log'}") from None
    stamp.write_text("built\n")
    env = {
        "SORBET_VECTORS": str(vec_path), "SORBET_RESULT": str(result_path),
        "SORBET_VALID_PROB": str(valid_prob), "SORBET_READY_PROB": str(ready_prob),
        "SORBET_SEED": str(seed),
        "PYTHONPATH": os.pathsep.join([str(PACKAGE_ROOT)] + [p for p in sys.path if p]),
    }
    xml = run_dir / "results.xml"
    built = time.time()
    try:
        runner.test(test_module=f"sorbet_hw.sim.{vectors.block}", hdl_toplevel=vectors.block,
                    build_dir=build_dir / "obj", test_dir=run_dir, extra_env=env,
                    results_xml=str(xml), waves=waves, log_file=log_path)
    except SystemExit:
        pass          # cocotb's Verilator runner exits on a failing test; the XML says which
    finished = time.time()
    tests, failed = get_results(xml) if xml.exists() else (0, 1)
    report = json.loads(result_path.read_text()) if result_path.exists() else {}
    result = BenchResult(
        block=vectors.block, simulator=simulator, vectors=len(vectors),
        passed=(tests > 0 and failed == 0 and report.get("mismatching_vectors", 1) == 0),
        cycles=report.get("cycles", 0), active_cycles=report.get("active_cycles", 0),
        beats_in=report.get("beats_in", 0), beats_out=report.get("beats_out", 0),
        mismatching_vectors=report.get("mismatching_vectors", -1),
        first_mismatch=report.get("first_mismatch") or ("" if report else f"the bench wrote no result; see {log_path}"),
        log=log_path, saif=(run_dir / "dump.saif") if saif else None,
        build_seconds=built - started, sim_seconds=finished - built)
    if saif and not (run_dir / "dump.saif").is_file():
        raise BuildError(f"verilator wrote no dump.saif for {vectors.block}; see {log_path}")
    return result


@contextlib.contextmanager
def _cxx_optimization(enabled: bool):
    """Without it, verilated.mk's optimization levels are -O0 for the build (through
    MAKEFLAGS, as sorbet_hw.tools sets its own make variables); restored afterwards."""
    if enabled:
        yield
        return
    saved = os.environ.get("MAKEFLAGS")
    os.environ["MAKEFLAGS"] = with_make_variables(
        saved or "", {"OPT_FAST": "-O0", "OPT_SLOW": "-O0", "OPT_GLOBAL": "-O0"})
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = saved


def _expose_only_ports(runner) -> None:
    """cocotb's Verilator runner makes every signal public (``--public-flat-rw``), which keeps
    Verilator from optimizing them away; the benches touch only the top-level ports, so
    ``--public-depth 1`` is enough, and it builds a large design several times faster."""
    build_command = getattr(runner, "_build_command", None)
    if build_command is None:          # another cocotb: keep its flags (slower, same results)
        return

    def lean():
        commands = build_command()
        verilate = commands[0]
        if "--public-flat-rw" in verilate:
            i = verilate.index("--public-flat-rw")
            verilate[i:i + 1] = ["--public-depth", "1"]
        return commands
    runner._build_command = lean


def _trace_saif(runner) -> None:
    """Trace as SAIF: cocotb's Verilator runner asks for VCD (``--trace``) when ``waves`` is
    set; its C++ main writes ``dump.saif`` instead when the model is built with
    ``--trace-saif`` (Verilator 5.48)."""
    build_command = runner._build_command

    def with_saif():
        commands = build_command()
        # Yosys names most gate-level nets _N_; Verilator leaves such names out unless told.
        commands[0] = [x for arg in commands[0]
                       for x in (["--trace-saif", "--trace-underscore"] if arg == "--trace" else [arg])]
        return commands
    runner._build_command = with_saif
