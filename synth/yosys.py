"""Run YoWASP Yosys on generated Verilog and read its `stat -json` report."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from sorbet_hw.tools import ToolError, yosys_executable

# Word-level cells that would make a block more than accumulate-only.
MULTIPLIER_CELLS = ("$mul", "$macc", "$macc_v2", "$div", "$mod", "$divfloor", "$modfloor", "$pow")


def run_yosys(script: str, cwd: Path) -> str:
    """Run a Yosys script in ``cwd`` (YoWASP sees only that folder: use relative paths)."""
    result = subprocess.run([yosys_executable(), "-q", "-p", script], cwd=cwd,
                            capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ToolError(f"yosys failed in {cwd}: {tail[0]}")
    return result.stdout


def word_level_cells(verilog: Path, top: str) -> dict[str, int]:
    """Cell counts of the elaborated, optimized word-level netlist (before `alumacc` and
    techmapping, which turn any adder tree into $macc and any product into gates)."""
    verilog = Path(verilog).resolve()
    stat = "stat-wordlevel.json"
    run_yosys(f"read_verilog {verilog.name}; hierarchy -top {top}; proc; flatten; opt; "
              f"wreduce; peepopt; opt_clean; tee -q -o {stat} stat -json", verilog.parent)
    report = json.loads((verilog.parent / stat).read_text())
    return dict(report["design"]["num_cells_by_type"])
