"""The install: one namespace (sorbet_hw.*), and it works from a wheel, not only a checkout."""
import os
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wheel_has_one_namespace_and_runs_from_elsewhere(tmp_path):
    # Built offline with this environment's setuptools (no build isolation, no downloads).
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps",
                            "--no-build-isolation", "-q", "-w", str(tmp_path / "dist")],
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "dist").glob("sorbet_hw-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"sorbet_hw"}, tops
    for module in ("sorbet_hw/hw/blocks.py", "sorbet_hw/model/ptsoftmax.py", "sorbet_hw/sim/bench.py",
                   "sorbet_hw/synth/activity.py", "sorbet_hw/model/checkpoints/sst2.npz"):
        assert module in names

    site = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                                "--target", str(site), str(wheel)], capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr
    assert not {"hw", "model", "sim", "synth"} & {p.name for p in site.iterdir()}

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}

    def sorbet(*args):
        return subprocess.run([sys.executable, "-m", "sorbet_hw.cli", *args], cwd=elsewhere, env=env,
                              capture_output=True, text=True)

    where = subprocess.run([sys.executable, "-c", "import sorbet_hw.hw.blocks as b, sys; "
                            "print(b.__file__); print(sorted(m for m in ('hw', 'model', 'sim', 'synth') "
                            "if m in sys.modules))"], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert where.returncode == 0, where.stderr
    path, leaked = where.stdout.splitlines()
    assert Path(path).is_relative_to(site) and leaked == "[]"
    assert sorbet("generate", "ptsoftmax", "-o", "v").returncode == 0
    # cocotb imports the bench from the wheel; the shipped checkpoint is package data.
    run = sorbet("simulate", "ptsoftmax", "--simulator", "icarus", "--count", "20", "--build", "b")
    assert run.returncode == 0 and "pass" in run.stdout, run.stdout + run.stderr
    run = sorbet("export-vectors", "-o", "vectors")
    assert run.returncode == 0 and (elsewhere / "vectors" / "layer0.query.npz").is_file(), run.stderr
