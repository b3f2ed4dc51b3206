"""Design-space sweeps on Dask: `sorbet-hw sweep SWEEP.toml`.

A sweep file names a block, a grid (or a list) of its parameters, and the flow each point
goes through::

    block = "bwn_layer"
    max_points = 64                 # a guard against a grid larger than meant
    [fixed]                         # every point's, besides the grid's
    inputs = 32
    outputs = 16
    [grid]                          # the product of these lists
    lanes = [4, 16]
    skip_zeros = [0, 1]
    [flow]
    targets = ["generic", "ice40"]  # synthesis targets (generic, ice40, ecp5)
    simulator = "verilator"         # the bit-exact replay (verilator or icarus)
    vectors = 200                   # random vectors of the replay and the energy run, or
                                    # "FILE.npz": a vector file's (real) inputs
    energy = true                   # gate-level energy per element (Verilator + SAIF)

(``points = [{...}, ...]`` instead of ``[grid]`` lists the points.) With ``vectors = "FILE.npz"``
(relative to the sweep file) every point starts from that file's parameters (a real layer's
weights, say) and replays its inputs, the expected outputs recomputed by the block's reference
for the point's parameters; the file's content is part of the points' keys. Each point is one Dask
task (:func:`run_point`): it generates the block, replays random vectors against the reference
(a mismatch is recorded as a failure), synthesizes it for every target (cells, LUT, FF,
BRAM, Fmax) and measures its energy per element on the gates. Without a scheduler address the
points run on a :class:`distributed.LocalCluster` of worker processes sized to the machine;
with one, on that cluster. Nothing here schedules, retries or restarts work: Dask does (a
point whose worker dies is run again elsewhere).

Results go to the output folder as points finish: ``results.csv`` and ``results.json`` (one
row a point), ``points/<key>.json`` (one file a finished point, keyed on a hash of its
Verilog and of the flow: a rerun skips the points already there) and ``pareto.png``.
"""
from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import os
import sys
import time
from pathlib import Path

from sorbet_hw.executor import connect, one_line as _one_line
from sorbet_hw.files import FileFormatError, atomic_write, read_record
from sorbet_hw.model.params import ParameterError

FLOW_KEYS = {"targets": list, "simulator": str, "vectors": (int, str), "energy": bool, "seed": int}
DEFAULT_FLOW = {"targets": ["generic"], "simulator": "verilator", "vectors": 200, "energy": True,
                "seed": 1}
DEFAULT_MAX_POINTS = 256
# However max_points is set: the points are built in memory and each is a task of minutes.
POINTS_LIMIT = 10_000
# What a sweep writes into its output folder.
OUTPUTS = ("results.csv", "results.json", "pareto.png", "points")
# Worker processes, even with --oversubscribe (each holds a Python, a simulator and Yosys).
WORKERS_LIMIT = 64


def check_workers(workers: int | None, oversubscribe: bool = False) -> int | None:
    """--workers: at least 1; above the machine's cores only with ``oversubscribe`` (one
    line says so), and never above :data:`WORKERS_LIMIT`."""
    if workers is None:
        return None
    cores = os.cpu_count() or 1
    if workers < 1:
        raise ParameterError(f"--workers = {workers} must be at least 1")
    if workers > WORKERS_LIMIT:
        raise ParameterError(f"--workers = {workers} is over the limit of {WORKERS_LIMIT} worker "
                             f"processes: use a Dask cluster (--scheduler) for more")
    if workers > cores and not oversubscribe:
        print(f"sorbet-hw: --workers {workers} capped at this machine's {cores} cores (each worker "
              f"runs one simulation or synthesis at a time; --oversubscribe starts {workers})",
              file=sys.stderr, flush=True)
        return cores
    return workers


# -- the sweep file ----------------------------------------------------------------------------

def load_sweep(path: Path) -> dict:
    """The sweep file, checked: one-line errors for an unknown block or parameter, an empty
    grid, a grid over ``max_points``, a flow option out of range."""
    import tomllib
    from sorbet_hw.hw.blocks import get_block
    from sorbet_hw.synth.flow import TARGETS
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"{path} does not exist: write a sweep file (see `sorbet-hw sweep --help`)")
    try:
        spec = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise FileFormatError(f"{path} is not TOML ({e})") from None
    unknown = set(spec) - {"block", "max_points", "fixed", "grid", "points", "flow", "name"}
    if unknown:
        raise FileFormatError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; known: block, "
                              f"name, max_points, fixed, grid, points, flow")
    if not isinstance(spec.get("block"), str):
        raise FileFormatError(f"{path}: `block = \"NAME\"` is missing")
    block = get_block(spec["block"])
    max_points = spec.get("max_points", DEFAULT_MAX_POINTS)
    if not isinstance(max_points, int) or isinstance(max_points, bool) or max_points < 1:
        raise ParameterError(f"{path}: max_points must be a positive integer, got {max_points!r}")
    if max_points > POINTS_LIMIT:
        raise ParameterError(f"{path}: max_points = {max_points:,} is over the limit of "
                             f"{POINTS_LIMIT:,} points a sweep: split the sweep into several files")
    fixed = spec.get("fixed", {})
    if "grid" in spec and "points" in spec:
        raise FileFormatError(f"{path}: give a [grid] or a list of points, not both")
    if "points" in spec:
        if isinstance(spec["points"], list) and len(spec["points"]) > max_points:
            raise ParameterError(f"{path}: {len(spec['points']):,} points, over max_points = "
                                 f"{max_points}")
        points = [{**fixed, **p} for p in spec["points"]] if isinstance(spec["points"], list) else None
        if points is None or not all(isinstance(p, dict) for p in spec["points"]):
            raise FileFormatError(f"{path}: points must be a list of tables")
    else:
        grid = spec.get("grid", {})
        for name, values in grid.items():
            if not isinstance(values, list):
                raise FileFormatError(f"{path}: grid.{name} must be a list of values, got {values!r}")
        count = 1
        for values in grid.values():
            count *= len(values)
        if count > max_points:          # before the product is built
            room = (f"raise max_points (up to {POINTS_LIMIT:,})" if count <= POINTS_LIMIT
                    else f"split it: a sweep may have at most {POINTS_LIMIT:,} points")
            raise ParameterError(f"{path}: the grid has {count:,} points, over max_points = "
                                 f"{max_points}: shrink the grid or {room}")
        points = [{**fixed, **dict(zip(grid, combo))} for combo in itertools.product(*grid.values())] \
            if grid else []
    if not points:
        raise ParameterError(f"{path}: the sweep has no points: give [grid] lists with values, "
                             f"or points")
    if len(points) > max_points:
        raise ParameterError(f"{path}: {len(points):,} points, over max_points = {max_points}")
    known = {p.name for p in block.params} | set(block.extra_params)
    for point in points:
        bad = sorted(set(point) - known)
        if bad:
            raise ParameterError(f"{path}: {block.name} has no parameter {', '.join(bad)}; known: "
                                 f"{', '.join(sorted(known))}")
    flow = {**DEFAULT_FLOW, **spec.get("flow", {})}
    for key, value in flow.items():
        kind = FLOW_KEYS.get(key)
        if kind is None:
            raise FileFormatError(f"{path}: unknown flow option {key!r}; known: {', '.join(FLOW_KEYS)}")
        if not isinstance(value, kind) or isinstance(value, bool) is not (kind is bool):
            names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
            raise FileFormatError(f"{path}: flow.{key} must be a {names}, got {value!r}")
    for target in flow["targets"]:
        if target not in TARGETS:
            raise ParameterError(f"{path}: unknown target {target!r}; choose from {', '.join(TARGETS)}")
    if flow["simulator"] not in ("verilator", "icarus"):
        raise ParameterError(f"{path}: flow.simulator must be verilator or icarus")
    if isinstance(flow["vectors"], str):
        flow.update(_vector_file(path, flow["vectors"], block))
    elif not 1 <= flow["vectors"] <= 100_000:
        raise ParameterError(f"{path}: flow.vectors = {flow['vectors']} is out of range; allowed: "
                             f"1..100000, or a vector file \"FILE.npz\"")
    return {"name": spec.get("name", path.stem), "block": block.name, "points": points,
            "flow": flow, "max_points": max_points}


def _vector_file(sweep: Path, name: str, block) -> dict:
    """``flow.vectors`` naming a vector file: the file (relative to the sweep file) checked,
    and its content's digest, which keys the points."""
    from sorbet_hw.files import file_digest
    from sorbet_hw.model.vectors import load_vectors
    file = (sweep.parent / name).resolve()
    if not file.is_file():
        raise FileFormatError(f"{sweep}: flow.vectors file {name} does not exist (relative to the "
                              f"sweep file): export it first (`sorbet-hw export-vectors`)")
    vectors = load_vectors(file)
    if vectors.block != block.name:
        raise ParameterError(f"{sweep}: flow.vectors {name} holds {vectors.block} vectors, not "
                             f"{block.name}'s")
    return {"vectors": str(file), "vectors_sha256": file_digest(file)}


# -- one point (a Dask task) -----------------------------------------------------------------

def point_key(verilog: bytes, flow: dict) -> str:
    from sorbet_hw.synth.flow import FLOW_VERSION
    if "vectors_sha256" in flow:         # a vector file by its content, wherever it lies
        flow = {**flow, "vectors": "file"}
    spec = json.dumps({"flow": flow, "synth_flow": FLOW_VERSION}, sort_keys=True).encode()
    return hashlib.sha256(spec + b"\0" + verilog).hexdigest()[:16]


def run_point(index: int, block: str, params: dict, flow: dict, build: str, out: str) -> dict:
    """Generate, replay, synthesize and measure one point; a row of figures, or of its
    one-line error (the sweep goes on). A point already in ``out/points`` is not run again."""
    row = {"point": index, "block": block, **{f"param.{k}": _plain(v) for k, v in params.items()}}
    started = time.time()
    try:
        row.update(_run(block, params, flow, Path(build), Path(out)))
    except Exception as e:               # noqa: BLE001 - a failed point is a row, not a crash
        row.update(status="failed", error=_one_line(e))
    row["seconds"] = round(time.time() - started, 1)
    return row


def _run(block: str, params: dict, flow: dict, build: Path, out: Path) -> dict:
    from sorbet_hw.hw.blocks import generate, get_block
    from sorbet_hw.operations import make_random_vectors
    from sorbet_hw.sim.runner import config_key, run_bench
    from sorbet_hw.synth.flow import synthesize
    declared = get_block(block)
    real = None
    if isinstance(flow["vectors"], str):                 # a file's parameters under the point's
        from sorbet_hw.model.vectors import load_vectors
        real = load_vectors(Path(flow["vectors"]))
    resolved = declared.resolve({**real.params, **params} if real is not None else params)
    checked = declared.check(resolved)
    rtl = build / "sweep-rtl" / f"{block}-{config_key(block, resolved)}"
    verilog = generate(block, resolved, rtl)
    key = point_key(verilog.read_bytes(), flow)
    done = out / "points" / f"{key}.json"
    cached = read_record(done)
    if cached is not None:
        return {**cached["figures"], "key": key, "cached": True}
    if real is None:
        vectors = make_random_vectors(block, resolved, flow["vectors"], flow["seed"])
    else:
        from sorbet_hw.model.vectors import Vectors
        vectors = Vectors(block, resolved, real.inputs, declared.run_reference(checked, real.inputs),
                          source=real.source, note=real.note)
    replay = run_bench(vectors, flow["simulator"], build_root=build, seed=flow["seed"])
    figures = {"status": "passed" if replay.passed else "failed", "cycles": replay.cycles,
               "cycles_per_element": round(replay.cycles / vectors.expected.size, 4)}
    if not replay.passed:
        figures["error"] = f"not bit exact: {replay.first_mismatch}"[:300]
    else:
        for target in flow["targets"]:
            r = synthesize(block, resolved, target, build_root=build)
            figures[f"{target}.cells"] = r["cells"]
            for name in ("memory_bits", "luts", "dffs", "brams", "dsps", "fmax_mhz", "pnr_error"):
                if name in r:
                    figures[f"{target}.{name}"] = r[name]
        if flow["energy"]:
            from sorbet_hw.synth.activity import measure
            energy = measure(vectors, build_root=build)
            figures["energy_pj_per_element"] = round(energy["energy_per_element_j"] * 1e12, 5)
            figures["energy_ungated_pj_per_element"] = round(energy["energy_per_element_ungated_j"] * 1e12, 5)
    # A failure of the design is a result worth keeping; an error of the flow is not.
    atomic_write(done, json.dumps({"key": key, "params": {k: _plain(v) for k, v in params.items()},
                                   "figures": figures}, indent=2) + "\n")
    return {**figures, "key": key, "cached": False}


def _plain(value):
    import numpy as np
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


# -- the sweep ---------------------------------------------------------------------------------

def sweep(spec: dict, out: Path, build: Path, *, scheduler: str | None = None,
          workers: int | None = None, progress=None) -> list[dict]:
    """Run every point of ``spec`` (:func:`load_sweep`) on Dask; the table and plot are
    rewritten as points finish. Returns the rows in point order."""
    from distributed import as_completed
    out, build = Path(out).resolve(), Path(build).resolve()
    client, cluster = connect(scheduler, workers,         # an unreachable one: nothing written
                              log=build / "logs" / "dask.log")
    (out / "points").mkdir(parents=True, exist_ok=True)
    rows: dict[int, dict] = {}
    try:
        futures = [client.submit(run_point, i, spec["block"], point, spec["flow"], str(build),
                                 str(out), key=f"sweep-{spec['name']}-{i}-{time.time_ns()}", pure=False)
                   for i, point in enumerate(spec["points"])]
        index = {future.key: i for i, future in enumerate(futures)}
        for future in as_completed(futures):
            try:
                row = future.result()
            except Exception as e:       # noqa: BLE001 - e.g. its workers kept dying
                i = index[future.key]
                row = {"point": i, "block": spec["block"], "status": "failed", "error": _one_line(e),
                       **{f"param.{k}": _plain(v) for k, v in spec["points"][i].items()}}
            rows[row["point"]] = row
            write_results([rows[i] for i in sorted(rows)], out)
            if progress is not None:
                failed = sum(r.get("status") == "failed" for r in rows.values())
                left = len(futures) - len(rows)
                workers = len(client.scheduler_info().get("workers", {})) or 1
                progress(len(rows) - failed, failed, min(left, workers), len(futures))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    ordered = [rows[i] for i in sorted(rows)]
    plot_pareto(ordered, out / "pareto.png")
    return ordered


def write_results(rows: list[dict], out: Path) -> None:
    columns = list(dict.fromkeys(k for r in rows for k in r))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in r.items()})
    atomic_write(out / "results.csv", text.getvalue())
    atomic_write(out / "results.json", json.dumps(rows, indent=2) + "\n")


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats in both coordinates (lower is better)."""
    front = []
    for i, (x, y) in enumerate(points):
        if not any((x2 <= x and y2 <= y) and (x2 < x or y2 < y) for x2, y2 in points):
            front.append(i)
    return front


def plot_pareto(rows: list[dict], path: Path) -> Path | None:
    """Energy per element against cycles per element and against LUTs (or cells), the
    Pareto front of each highlighted."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    good = [r for r in rows if r.get("status") == "passed" and "energy_pj_per_element" in r]
    if not good:
        return None
    area = next((k for k in ("ecp5.luts", "ice40.luts", "generic.cells") if k in good[0]), None)
    axes_spec = [("cycles_per_element", "cycles per element")] + ([(area, area)] if area else [])
    fig, axes = plt.subplots(1, len(axes_spec), figsize=(5 * len(axes_spec), 4), squeeze=False)
    for ax, (key, label) in zip(axes[0], axes_spec):
        pts = [(float(r[key]), float(r["energy_pj_per_element"])) for r in good]
        front = set(pareto_front(pts))
        ax.scatter([p[0] for i, p in enumerate(pts) if i not in front],
                   [p[1] for i, p in enumerate(pts) if i not in front], color="0.6", label="point")
        ordered = sorted(pts[i] for i in front)
        ax.plot([p[0] for p in ordered], [p[1] for p in ordered], "o-", color="C3", label="Pareto front")
        ax.set_xlabel(label)
        ax.set_ylabel("energy per element (pJ, gated clock)")
        ax.legend()
    fig.suptitle(f"{good[0]['block']}: {len(good)} points")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return atomic_write(path, buffer.getvalue())


def progress_line(done: int, failed: int, running: int, total: int) -> None:
    """The progress bar: points done, failed and running, on one rewritten line."""
    width = 30
    filled = round(width * (done + failed) / total)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done} done, {failed} failed, "
                     f"{running} running, of {total}")
    if done + failed == total:
        sys.stderr.write("\n")
    sys.stderr.flush()
