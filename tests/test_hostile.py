"""The command line under hostile input: nothing lost, nothing executed, nothing stale.

Every case runs the real CLI as a subprocess and asserts its exit status (2: usage, 1:
failure), a single line on stderr with no traceback, and that nothing was deleted, changed
or left looking finished. The classes: parameters, output locations, vector files,
checkpoints, pickles, TSVs, configs, paths, concurrency and interruption.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from sorbet_hw.model.checkpoint import shipped_checkpoint
from sorbet_hw.model.vectors import Vectors, load_vectors, save_vectors

CLI = [sys.executable, "-m", "sorbet_hw.cli"]
SHIPPED = shipped_checkpoint("sst2")


def sorbet(*args, cwd=None, timeout=600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "SORBET_DEBUG"}
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, env=env)


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (hidden ones included) with a hash of its content."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(root).rglob("*")) if p.is_file() and not p.name.endswith(".lock")}


def leftovers(root: Path) -> list[Path]:
    return [p for p in Path(root).rglob("*") if ".partial" in p.name or p.name.endswith(".old")]


def one_line_error(r: subprocess.CompletedProcess, status: int, *fragments: str) -> str:
    assert r.returncode == status, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("sorbet-hw: error:"), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


# -- crafted files ---------------------------------------------------------------------------

def small_vectors(block: str = "bspn") -> Vectors:
    import importlib
    from sorbet_hw.hw.blocks import get_block
    params = {"bspn": {"channels": 8, "groups": 2}, "ptsoftmax": {"row_length": 4}}[block]
    resolved = get_block(block).resolve(params)
    return importlib.import_module(f"sorbet_hw.sim.{block}").make_vectors(resolved, 4, 1)


def npz_with_header(path: Path, name: str, shape: tuple, dtype: str = "<f8") -> Path:
    """An .npz whose array header claims ``shape``: a few hundred bytes that would inflate to
    whatever the shape says (the data itself is left out: only the header is ever read)."""
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    text = repr(header).encode()
    text += b" " * (63 - (10 + len(text)) % 64) + b"\n"
    npy = b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + b"\0" * 64
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{name}.npy", npy)
    return path


def checkpoint_with(path: Path, change) -> Path:
    """The shipped checkpoint with ``change(arrays, manifest)`` applied."""
    with np.load(SHIPPED) as z:
        arrays = {k: z[k] for k in z.files}
    manifest = json.loads(arrays["manifest"].tobytes().decode())
    change(arrays, manifest)
    arrays["manifest"] = np.frombuffer(json.dumps(manifest).encode(), np.uint8)
    np.savez_compressed(path, **arrays)
    return path


class Payload:
    """Pickled as a call of os.system: loading it with weights_only=False runs the command."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def crafted_pt(path: Path, marker: Path) -> Path:
    import torch
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": {}, "stage": "quant", "step": 0, "hook": Payload(marker)}, path)
    return path


# -- the cases ---------------------------------------------------------------------------------
# Each: (id, setup(tmp) -> args, exit status, fragments of the message).

def _npy(tmp: Path, name: str, value) -> Path:
    np.save(tmp / name, value)
    return tmp / name


PARAMETERS = [
    ("range", lambda t: ["generate", "bspn", "--param", "groups=5", "-o", t / "out"], 2,
     ["groups = 5 must divide channels = 32"]),
    ("unknown-param", lambda t: ["generate", "bspn", "--param", "colour=3", "-o", t / "out"], 2,
     ["bspn has no parameter colour"]),
    ("not-name-value", lambda t: ["generate", "bspn", "--param", "groups", "-o", t / "out"], 2,
     ["name=value"]),
    ("fraction-in-list", lambda t: ["generate", "if_layer", "--param", "weights=1.7,-1.2",
                                    "-o", t / "out"], 2, ["comma-separated integers"]),
    ("fraction-in-npy-weights", lambda t: ["generate", "if_layer", "--param",
                                           f"weights={_npy(t, 'w.npy', np.array([[1.7, -1.2]]))}",
                                           "-o", t / "out"], 2, ["weights must hold integers", "1.7"]),
    ("fraction-in-npy-gamma", lambda t: ["generate", "bspn", "--param", "channels=4", "--param",
                                         "groups=1", "--param",
                                         f"gamma_shift={_npy(t, 'g.npy', np.array([1.9, 0, 0, 0]))}",
                                         "-o", t / "out"], 2, ["gamma_shift must hold integers", "1.9"]),
    ("fraction-scalar", lambda t: ["generate", "if_layer", "--param", "threshold_shift=1.9",
                                   "-o", t / "out"], 2, ["threshold_shift must be an integer"]),
    ("huge-in-range-layer", lambda t: ["generate", "if_layer", "--param", "inputs=65536",
                                       "--param", "outputs=65536", "-o", t / "out"], 2,
     ["demo weights exceed the limit"]),
    ("huge-in-range-encoder", lambda t: ["generate", "encoder_layer", "--param", "hidden=4096",
                                         "--param", "heads=8", "--param", "ffn=16384",
                                         "-o", t / "out"], 2, ["over the limit"]),
    ("npy-of-objects", lambda t: ["generate", "if_layer", "--param",
                                  f"weights={_npy(t, 'o.npy', np.array([{'a': 1}], dtype=object))}",
                                  "-o", t / "out"], 1, ["o.npy holds Python objects"]),
    ("npy-inflated", lambda t: ["generate", "if_layer", "--param",
                                f"weights={_inflated_npy(t)}", "-o", t / "out"], 1, ["the limit is"]),
    ("synth-param-for-all", lambda t: ["synth", "all", "--param", "channels=8", "--build", t], 2,
     ["--param needs one block"]),
    ("synth-fraction", lambda t: ["synth", "bspn", "--param", "channels=1.5", "--build", t], 2,
     ["channels must be an integer"]),
]


def _inflated_npy(tmp: Path) -> Path:
    path = tmp / "big.npy"
    header = repr({"descr": "<i8", "fortran_order": False, "shape": (1 << 36,)}).encode()
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header)
    return path


def _vector_file(tmp: Path, tamper=None, block: str = "bspn") -> Path:
    v = small_vectors(block)
    if tamper:
        v = tamper(v)
    return save_vectors(tmp / "v.npz", v)


def _wider(v):
    v.inputs = np.concatenate([v.inputs, v.inputs[:, :1]], axis=1)
    return v


def _out_of_range(v):
    v.inputs = v.inputs.copy()
    v.inputs[1, 2] = 1 << 20
    return v


def _one_bit(v):
    v.expected = v.expected.copy()
    v.expected[3, 1] ^= 1
    return v


def _fractional_param(v):
    v.params = {**v.params, "beta": np.array([0.5] * 8)}
    return v


def _huge_channels(v):
    # Without gamma_shift and beta, completing BSPN's parameters makes them zero arrays of
    # `channels` entries: 32 GiB here, unless the range is checked first.
    v.params = {k: x for k, x in v.params.items() if k not in ("gamma_shift", "beta")}
    v.params["channels"] = 1 << 32
    return v


def _raw_fractional(tmp: Path) -> Path:
    """save_vectors stores int64 parameters, so a float one has to be written by hand."""
    path = _vector_file(tmp)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["param.beta"] = np.full(8, 0.5)
    np.savez(path, **arrays)
    return path


VECTORS = [
    ("count-negative", lambda t: ["simulate", "bspn", "--count", "-5", "--build", t], 2, ["--count = -5"]),
    ("seed-negative", lambda t: ["simulate", "bspn", "--seed", "-1", "--build", t], 2, ["--seed = -1"]),
    ("count-huge", lambda t: ["simulate", "bspn", "--count", 10 ** 8, "--build", t], 2, ["--count = 100000000"]),
    ("count-times-size", lambda t: ["simulate", "ptsoftmax", "--param", "row_length=4096",
                                    "--count", 100000, "--build", t], 2, ["over the limit"]),
    ("params-before-vectors", lambda t: ["simulate", "bspn", "--param", "groups=5", "--build", t],
     2, ["groups = 5"]),
    ("vectors-of-another-block", lambda t: ["simulate", "bspn", "--vectors",
                                            _vector_file(t, block="ptsoftmax"), "--build", t], 1,
     ["holds ptsoftmax vectors, not bspn ones"]),
    ("vectors-wrong-width", lambda t: ["simulate", "bspn", "--vectors", _vector_file(t, _wider),
                                       "--build", t], 1, ["inputs have shape (9,) per vector"]),
    ("vectors-out-of-range", lambda t: ["simulate", "bspn", "--vectors",
                                        _vector_file(t, _out_of_range), "--build", t], 1,
     ["is out of the block's input range"]),
    ("vectors-one-bit", lambda t: ["simulate", "bspn", "--vectors", _vector_file(t, _one_bit),
                                   "--build", t], 1, ["differ from the reference model's"]),
    ("vectors-huge-channels", lambda t: ["simulate", "bspn", "--vectors", _vector_file(t, _huge_channels),
                                         "--build", t], 1, ["channels = 4294967296 is out of range"]),
    ("vectors-fractional-param", lambda t: ["simulate", "bspn", "--vectors", _raw_fractional(t),
                                            "--build", t], 1, ["beta must hold integers"]),
    ("vectors-empty-file", lambda t: ["simulate", "bspn", "--vectors", _empty(t, "v.npz"),
                                      "--build", t], 1, ["is not a vector file"]),
    ("vectors-inflated", lambda t: ["simulate", "bspn", "--vectors",
                                    npz_with_header(t / "v.npz", "inputs", (1 << 34,)),
                                    "--build", t], 1, ["MiB"]),
    ("vectors-objects", lambda t: ["simulate", "bspn", "--vectors", _objects_npz(t), "--build", t],
     1, ["holds Python objects"]),
    ("vectors-foreign-npz", lambda t: ["simulate", "bspn", "--vectors", _foreign_npz(t),
                                       "--build", t], 1, ["lacks the 'meta' entry"]),
    ("vectors-with-param", lambda t: ["simulate", "bspn", "--vectors", _vector_file(t), "--param",
                                      "groups=2", "--build", t], 2, ["do not go together"]),
    ("build-with-space", lambda t: ["simulate", "bspn", "--count", 3, "--build", t / "a b"], 1,
     ["contains ' '", "GNU Make"]),
    ("energy-sentences", lambda t: ["energy", "--sentences", 0, "--build", t], 2, ["--sentences = 0"]),
    ("energy-sample-tokens", lambda t: ["energy", "--sample-tokens", 100, "--build", t], 2,
     ["--sample-tokens = 100"]),
    ("energy-build-with-space", lambda t: ["energy", "--method", "activity", "--build", t / "x y"],
     1, ["GNU Make"]),
]


def _empty(tmp: Path, name: str) -> Path:
    (tmp / name).write_bytes(b"")
    return tmp / name


def _objects_npz(tmp: Path) -> Path:
    np.savez(tmp / "o.npz", meta=np.array("{}"), inputs=np.array([[{"a": 1}]], dtype=object))
    return tmp / "o.npz"


def _foreign_npz(tmp: Path) -> Path:
    np.savez(tmp / "f.npz", weights=np.ones((3, 3)))
    return tmp / "f.npz"


def _threshold_1000(arrays, manifest):
    manifest["layers"][0]["linears"]["query"]["threshold_shift"] = 1000


def _float64_head(arrays, manifest):
    arrays["head.weight"] = arrays["head.weight"].astype(np.float64)


def _huge_hidden(arrays, manifest):
    manifest["bert"]["hidden_size"] = 10 ** 9


def _truncated(tmp: Path) -> Path:
    data = SHIPPED.read_bytes()
    (tmp / "cut.npz").write_bytes(data[: len(data) // 2])
    return tmp / "cut.npz"


CHECKPOINTS = [
    ("checkpoint-other-task", lambda t: ["export-vectors", "--checkpoint", shipped_checkpoint("mrpc"),
                                         "-o", t / "v"], 1, ["is a 'mrpc' model, not 'sst2'"]),
    ("checkpoint-threshold-1000", lambda t: ["export-vectors", "--checkpoint",
                                             checkpoint_with(t / "c.npz", _threshold_1000),
                                             "-o", t / "v"], 1, ["threshold_shift = 1000 is out of range"]),
    ("checkpoint-float64-head", lambda t: ["eval", "--checkpoint",
                                           checkpoint_with(t / "c.npz", _float64_head)], 1,
     ["'head.weight' is float64, expected float32"]),
    ("checkpoint-huge-config", lambda t: ["eval", "--checkpoint",
                                          checkpoint_with(t / "c.npz", _huge_hidden)], 1,
     ["bert.hidden_size = 1000000000 is out of range"]),
    ("checkpoint-truncated", lambda t: ["eval", "--checkpoint", _truncated(t)], 1,
     ["is not a packed checkpoint"]),
    ("checkpoint-empty", lambda t: ["energy", "--checkpoint", _empty(t, "e.npz"), "--method", "ops",
                                    "--build", t], 1, ["is not a packed checkpoint"]),
    ("checkpoint-inflated", lambda t: ["eval", "--checkpoint",
                                       npz_with_header(t / "big.npz", "word", (1 << 33,), "|u1")],
     1, ["MiB"]),
    ("checkpoint-missing", lambda t: ["eval", "--checkpoint", t / "none.npz"], 1, ["does not exist"]),
    ("checkpoint-is-directory", lambda t: ["eval", "--checkpoint", t], 1, ["is a directory"]),
]


def _tsv(tmp: Path, data: bytes) -> Path:
    (tmp / "d.tsv").write_bytes(data)
    return tmp / "d.tsv"


TSVS = [
    ("tsv-not-utf8", lambda t: ["eval", "--data", _tsv(t, b"sentence\tlabel\ngood\t1\nna\xefve\xff\t0\n")],
     1, ["d.tsv:3: not UTF-8 text"]),
    ("tsv-no-header", lambda t: ["eval", "--data", _tsv(t, b"good film\t1\nbad film\t0\n")], 1,
     ["d.tsv:1: expected the SST-2 header line"]),
    ("tsv-bad-label", lambda t: ["eval", "--data", _tsv(t, b"sentence\tlabel\ngood\tyes\n")], 1,
     ["d.tsv:2: label 'yes'"]),
    ("tsv-empty", lambda t: ["eval", "--data", _tsv(t, b"")], 1, ["d.tsv:1: expected the SST-2 header"]),
    ("tsv-binary", lambda t: ["eval", "--data", _tsv(t, bytes(range(256)) * 4)], 1, ["not UTF-8 text"]),
    ("time-steps", lambda t: ["eval", "--spiking", "--time-steps", -1], 2, ["--time-steps = -1"]),
    ("unknown-task", lambda t: ["eval", "--task", "qqp"], 2, ["invalid choice: 'qqp'"]),
]


def _config(tmp: Path, text: bytes) -> Path:
    (tmp / "c.toml").write_bytes(text)
    return tmp / "c.toml"


CONFIGS = [
    ("config-bad-toml", lambda t: ["run", "--config", _config(t, b"[simulate\n"), "--build", t / "b"],
     2, ["not valid TOML"]),
    ("config-not-utf8", lambda t: ["run", "--config", _config(t, b"[model]\ntask = \"\xff\"\n"),
                                   "--build", t / "b"], 2, ["not UTF-8 text"]),
    ("config-unknown-key", lambda t: ["run", "--config", _config(t, b"[simulate]\ncounts = 3\n"),
                                      "--build", t / "b"], 2, ["unknown key simulate.counts"]),
    ("config-wrong-type", lambda t: ["run", "--config", _config(t, b"[energy]\nsentences = \"all\"\n"),
                                     "--build", t / "b"], 2, ["energy.sentences must be an integer"]),
    ("config-missing-checkpoint", lambda t: ["run", "--config",
                                             _config(t, b"[model]\ncheckpoint = \"gone.npz\"\n"),
                                             "--build", t / "b"], 2, ["gone.npz does not exist"]),
    ("config-unknown-task", lambda t: ["run", "--config", _config(t, b"[model]\ntask = \"qqp\"\n"),
                                       "--build", t / "b"], 2, ["model.task takes"]),
    ("config-missing-file", lambda t: ["run", "--config", t / "none.toml", "--build", t / "b"], 2,
     ["does not exist"]),
    ("run-build-with-space", lambda t: ["run", "--build", t / "my build"], 1, ["GNU Make"]),
    ("train-options", lambda t: ["train-teacher", "--epochs", "-1", "-o", t / "teacher"], 2,
     ["--epochs = -1.0"]),
    ("distill-lr-nan", lambda t: ["distill", "--lr", "nan", "-o", t / "student"], 2, ["--lr = nan"]),
]


@pytest.mark.parametrize("case", PARAMETERS + VECTORS + CHECKPOINTS + TSVS + CONFIGS,
                         ids=lambda c: c[0])
def test_bad_input_is_one_line_and_changes_nothing(case, tmp_path):
    _, setup, status, fragments = case
    work = tmp_path / "work"
    work.mkdir()
    args = setup(work)
    before = snapshot(tmp_path)
    r = sorbet(*args, cwd=tmp_path)
    one_line_error(r, status, *fragments)
    assert snapshot(tmp_path) == before            # nothing written, changed or deleted
    assert not leftovers(tmp_path)


# -- output locations: nothing lost -----------------------------------------------------------

def test_export_refuses_a_foreign_directory_and_the_parent(tmp_path):
    home = tmp_path / "home"
    (home / "project").mkdir(parents=True)
    (home / "notes.txt").write_text("mine")
    (home / "project" / "design.v").write_text("module mine; endmodule\n")
    before = snapshot(tmp_path)
    for out in (home, home / "project", ".."):
        r = sorbet("export-vectors", "-o", out, cwd=home / "project")
        one_line_error(r, 1, "did not create", "--force")
    (home / "file").write_text("a file")
    one_line_error(sorbet("export-vectors", "-o", home / "file"), 1, "is not a directory")
    assert snapshot(tmp_path) == {**before, "home/file": hashlib.sha256(b"a file").hexdigest()}
    assert not leftovers(tmp_path)


def test_export_replaces_only_its_own_directory_and_force_deletes_nothing(tmp_path):
    out = tmp_path / "v"
    assert sorbet("export-vectors", "-o", out).returncode == 0
    assert (out / ".sorbet-hw").is_file() and (out / "manifest.json").is_file()
    (out / "mine.npz").write_text("a user's file")
    assert sorbet("export-vectors", "-o", out).returncode == 0           # ours: replaced whole,
    assert (out / "mine.npz").read_text() == "a user's file"             # the user's file kept
    assert (out / "manifest.json").is_file()
    (out / "mine.npz").unlink()
    (out / ".sorbet-hw").unlink()         # an export made before markers: still recognized
    assert sorbet("export-vectors", "-o", out).returncode == 0 and (out / ".sorbet-hw").is_file()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("keep")
    r = sorbet("export-vectors", "-o", mine, "--force")
    assert r.returncode == 0, r.stderr
    assert (mine / "keep.txt").read_text() == "keep" and (mine / "manifest.json").is_file()
    assert not (mine / ".sorbet-hw").exists()        # still not ours: never replaced whole later
    one_line_error(sorbet("export-vectors", "-o", mine), 1, "did not create")
    assert (mine / "keep.txt").read_text() == "keep"
    assert not leftovers(tmp_path)


def test_outputs_carry_no_absolute_paths(tmp_path):
    out = tmp_path / "v"
    assert sorbet("export-vectors", "-o", out, cwd=tmp_path).returncode == 0
    manifest = (out / "manifest.json").read_text()
    assert "/" not in json.loads(manifest)["source"] and str(tmp_path) not in manifest
    assert str(SHIPPED.parent) not in manifest
    vectors = load_vectors(out / "layer0.query.npz")
    assert "/" not in vectors.source and vectors.source.startswith("sst2.npz sha256:")
    r = sorbet("eval", "--json", "--data", _tsv(tmp_path, b"sentence\tlabel\ngood\t1\n"))
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["checkpoint"]["name"] == "sst2.npz" and str(tmp_path) not in r.stdout


def test_generate_overwrites_only_its_own_verilog(tmp_path):
    mine = tmp_path / "bspn.v"
    mine.write_text("module bspn; // hand-written\nendmodule\n")
    one_line_error(sorbet("generate", "bspn", "-o", tmp_path), 1, "was not generated by sorbet-hw")
    assert "hand-written" in mine.read_text()
    assert sorbet("generate", "bspn", "-o", tmp_path, "--force").returncode == 0
    assert sorbet("generate", "bspn", "-o", tmp_path).returncode == 0     # ours now: regenerated
    assert "Generated by sorbet-hw" in mine.read_text()


def test_paths_with_spaces_work_where_no_make_is_involved(tmp_path):
    spaced = tmp_path / "my designs" / "out put"
    r = sorbet("generate", "ptsoftmax", "-o", spaced)
    assert r.returncode == 0, r.stderr
    assert (spaced / "ptsoftmax.v").is_file()
    r = sorbet("eval", "--data", _tsv(tmp_path, b"sentence\tlabel\ngood\t1\n").rename(
        tmp_path / "my designs" / "dev set.tsv"))
    assert r.returncode == 0, r.stderr


def test_read_only_output(tmp_path):
    """An output where nothing can be written: one line naming the place and the fix. (As
    root, permissions do not stop writes, so sysfs stands in for a read-only location.)"""
    if os.geteuid() == 0:
        target = Path("/sys/sorbet-hw-test")
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        target = ro / "v"
    line = one_line_error(sorbet("export-vectors", "-o", target), 1)
    assert str(target.parent) in line and ("ermission" in line or "read-only" in line)
    line = one_line_error(sorbet("generate", "bspn", "-o", target), 1)
    assert str(target.parent) in line


# -- pickles: nothing executed ---------------------------------------------------------------

def test_crafted_pickles_are_refused_and_never_run(tmp_path):
    import torch
    from sorbet_hw.model.glue import get_task
    from sorbet_hw.model.teacher import new_teacher
    marker = tmp_path / "pwned"
    teacher = tmp_path / "teacher.pt"
    torch.save({"model": new_teacher(get_task("mrpc")).state_dict()}, teacher)
    cases = [
        (["distill", "--task", "mrpc", "--data", FIXTURES, "--teacher", crafted_pt(tmp_path / "t.pt", marker),
          "-o", tmp_path / "s1"], "teacher checkpoint"),
        (["distill", "--task", "mrpc", "--data", FIXTURES, "--teacher", teacher, "--epochs", "0.01", "--init",
          crafted_pt(tmp_path / "init.pt", marker), "-o", tmp_path / "s2"], "stage checkpoint"),
        (["distill", "--task", "mrpc", "--data", FIXTURES, "--teacher", teacher, "--epochs", "0.01",
          "-o", crafted_pt(tmp_path / "s3" / "quant.pt", marker).parent], "resume checkpoint"),
        (["train-teacher", "--task", "mrpc", "--data", FIXTURES, "--epochs", "0.01",
          "-o", crafted_pt(tmp_path / "t4" / "teacher.pt", marker).parent], "resume checkpoint"),
    ]
    for args, what in cases:
        r = sorbet(*args)
        one_line_error(r, 1, "never runs code", what)
        assert not marker.exists(), f"{args[0]} ran the payload"


# -- concurrency and interruption ------------------------------------------------------------

def test_a_second_process_waits_for_the_lock(tmp_path):
    from filelock import FileLock
    out = tmp_path / "v"
    lock = FileLock(tmp_path / ".v.lock")
    lock.acquire()
    proc = subprocess.Popen([*CLI, "export-vectors", "-o", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_interruptible)
    try:
        deadline = time.time() + 120
        line = proc.stderr.readline()                  # it says why it waits
        assert "in use by another sorbet-hw process; waiting" in line, line
        assert time.time() < deadline and proc.poll() is None and not out.exists()
    finally:
        lock.release()
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    assert (out / "manifest.json").is_file() and not leftovers(tmp_path)


def test_concurrent_exports_into_one_directory(tmp_path):
    out = tmp_path / "v"
    procs = [subprocess.Popen([*CLI, "export-vectors", "-o", str(out), "--sentence", s],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for s in ("a fine film", "a dull film")]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0 and "Traceback" not in err, err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["sentence"] in ("a fine film", "a dull film")
    assert len(list(out.glob("*.npz"))) == len(manifest["instances"]) and not leftovers(tmp_path)


def _interruptible():
    """In the child: SIGINT as a terminal sends it. A shell script's background job starts
    with SIGINT ignored, which Python then keeps ignoring."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_interrupted_export_leaves_nothing_and_reruns(tmp_path):
    out = tmp_path / "v"
    proc = subprocess.Popen([*CLI, "export-vectors", "-o", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_interruptible)
    deadline = time.time() + 60
    while time.time() < deadline and not list(tmp_path.glob(".v.*.partial/*.npz")):
        time.sleep(0.02)                               # interrupted while writing its files
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("sorbet-hw: interrupted")
    assert not out.exists() and not leftovers(tmp_path)
    assert sorbet("export-vectors", "-o", out).returncode == 0
    assert (out / "manifest.json").is_file() and not leftovers(tmp_path)


def test_debug_shows_the_traceback_and_bugs_say_so(tmp_path, capsys, monkeypatch):
    r = sorbet("--debug", "generate", "bspn", "--param", "groups=5", "-o", tmp_path)
    assert r.returncode != 0 and "Traceback" in r.stderr
    r = sorbet("generate", "bspn", "--debug", "--param", "groups=5", "-o", tmp_path)
    assert "Traceback" in r.stderr
    from sorbet_hw import cli

    def broken(args):
        raise TypeError("an unexpected failure")
    monkeypatch.setattr(cli, "cmd_generate", broken)
    monkeypatch.delenv("SORBET_DEBUG", raising=False)
    assert cli.main(["generate", "bspn", "-o", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "This is a bug in sorbet-hw" in err[0] and "--debug" in err[0]


def test_interrupted_run_resumes_and_a_changed_input_is_never_stale(tmp_path):
    """SIGINT during the main job, a rerun that reuses what finished, then the same config
    over a data file whose labels were flipped: the evaluation is redone, not reported from
    the earlier file (a user once saw 100 % for a file that scores 0 %)."""
    data = tmp_path / "dev.tsv"
    rows = ["a charming , moving journey .", "dull and lifeless ."]
    data.write_text("sentence\tlabel\n" + "".join(f"{r}\t{1 - i}\n" for i, r in enumerate(rows)))
    config = _config(tmp_path, f'''
[model]
data = "{data}"
[design]
blocks = ["bspn"]
[simulate]
count = 10
simulators = ["icarus"]
[layer]
replay = false
[synth]
targets = ["generic"]
place_and_route = false
[energy]
sentences = 1
method = "ops"
'''.encode())
    build = tmp_path / "build"
    proc = subprocess.Popen([*CLI, "run", "--config", str(config), "--build", str(build)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_interruptible)
    for line in proc.stdout:
        if line.startswith("[3/8] blocks..."):          # evaluate and export are finished
            proc.send_signal(signal.SIGINT)
            break
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("sorbet-hw: interrupted")
    assert {p.name for p in (build / "run").glob("*.json")} == {"evaluate.json", "export.json"}
    assert not leftovers(tmp_path)
    # The report is written after every stage: a partial one that says what is to come.
    assert "still to come: blocks, replay" in (build / "report" / "index.html").read_text()

    def accuracy():
        record = json.loads((build / "run" / "evaluate.json").read_text())["result"]
        assert record["data"]["name"] == "dev.tsv" and str(tmp_path) not in json.dumps(record)
        return record["metrics"]["accuracy"]

    r = sorbet("run", "--config", config, "--build", build)
    assert r.returncode == 0, r.stderr
    assert "[1/8] evaluate: finished before, reused" in r.stdout
    assert "[2/8] export: finished before, reused" in r.stdout
    assert (build / "report" / "index.html").is_file() and not leftovers(tmp_path)
    first = accuracy()
    assert first in (0.0, 100.0)                       # so that flipping the labels shows
    flipped = data.read_text().replace("\t1\n", "\tX\n").replace("\t0\n", "\t1\n").replace("\tX\n", "\t0\n")
    data.write_text(flipped)
    r = sorbet("run", "--config", config, "--build", build)
    assert r.returncode == 0, r.stderr
    assert "[1/8] evaluate..." in r.stdout and "[3/8] blocks: finished before, reused" in r.stdout
    assert accuracy() == 100.0 - first
    report = (build / "report" / "index.html").read_text()
    assert f"accuracy {100.0 - first:.2f}" in report and str(tmp_path) not in report


def test_a_missing_or_malformed_sidecar_is_tolerated_everywhere(tmp_path):
    """The JSON beside a packed checkpoint is for readers: eval, export and run all load the
    manifest inside the .npz, with the sidecar gone or garbled."""
    import shutil
    checkpoint = tmp_path / "student.npz"
    shutil.copyfile(SHIPPED, checkpoint)
    data = _tsv(tmp_path, b"sentence\tlabel\na charming , moving journey .\t1\n")
    config = _config(tmp_path, f'''
[model]
checkpoint = "{checkpoint}"
data = "{data}"
[design]
blocks = []
[layer]
replay = false
[energy]
sentences = 1
method = "ops"
'''.encode())
    for sidecar in (None, b"{not json", b"\xff\xfe"):
        if sidecar is None:
            (tmp_path / "student.json").unlink(missing_ok=True)
        else:
            (tmp_path / "student.json").write_bytes(sidecar)
        r = sorbet("eval", "--checkpoint", checkpoint, "--data", data)
        assert r.returncode == 0 and "accuracy 100.00" in r.stdout, r.stderr
    assert sorbet("export-vectors", "--checkpoint", checkpoint, "-o", tmp_path / "v").returncode == 0
    r = sorbet("run", "--config", config, "--build", tmp_path / "build")
    assert r.returncode == 0, r.stderr
    assert "accuracy 100.00" in (tmp_path / "build" / "report" / "index.html").read_text()



# -- training data: the user's to give -------------------------------------------------------

FIXTURES = Path(__file__).parent / "data" / "glue"


@pytest.mark.parametrize("command", ["train-teacher", "distill"])
def test_training_without_data_says_where_to_get_it(tmp_path, command, monkeypatch):
    monkeypatch.delenv("SORBET_GLUE", raising=False)
    r = sorbet(command, "--task", "sst2", "-o", tmp_path / "out", cwd=tmp_path)
    one_line_error(r, 1, "ships the dev sets only", "--data DIR", "SORBET_GLUE")
    assert not (tmp_path / "out").exists()
    r = sorbet(command, "--task", "mrpc", "--data", tmp_path, "-o", tmp_path / "out", cwd=tmp_path)
    one_line_error(r, 1, "MRPC/train.tsv does not exist: --data")


def test_the_teacher_trains_on_a_shipped_fixture(tmp_path):
    """--data DIR in GLUE's layout; the dev set is the shipped one."""
    r = sorbet("train-teacher", "--task", "sst2", "--data", FIXTURES, "--epochs", "0.05",
               "--batch-size", "8", "--max-length", "16", "-o", tmp_path / "t", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    metrics = json.loads((tmp_path / "t" / "metrics.json").read_text())
    assert metrics["step"] == metrics["total"] == 2 and 0 <= metrics["dev"]["accuracy"] <= 100
