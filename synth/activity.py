"""Energy from measured switching activity: the gates Yosys made, toggled by real vectors.

Method 2 of the energy model. For one block configuration and one vector file:

1. ``gate_netlist``: Yosys ``synth -flatten`` to its generic gates, written as Verilog (to
   simulate) and JSON (to know, for every net bit, which cell pins it drives).
2. The block's own cocotb bench replays the vectors on that gate netlist in Icarus Verilog at
   full speed (no stalls), checks the outputs bit for bit as always, and dumps every net
   (``sim.runner.run_bench(netlist=..., dump_all=True)``).
3. ``count_toggles`` reads the VCD: 0<->1 transitions of every net bit (x and z ignored).
4. ``switching_energy``: each toggle of a net charges or discharges the capacitance it
   drives, E = 1/2 C V^2, with C = the input pins of every cell it feeds (table below) plus
   the driver's own output (diffusion) capacitance, taken equal to its input capacitance
   (gamma = 1: Weste & Harris, *CMOS VLSI Design*, 4th ed., section 4.3.2). The clock's
   toggles charge every flip-flop's clock pin the same way, so clock energy is included.
   Not included: short-circuit current, leakage, wires (no placement), memories as macros.

Pin capacitances: NanGate FreePDK45 Open Cell Library, ``NangateOpenCellLibrary_typical.lib``
(typical corner, 1.10 V), X1 drive strength, in fF: NAND2_X1 A1 1.599032, NOR2_X1 A1
1.714471, AND2_X1 A1 0.918145, OR2_X1 A1 0.946814, XOR2_X1 A 2.411453, INV_X1 A 1.700230,
BUF_X1 A 0.974659. Yosys cells without a direct X1 counterpart are modelled from these:
XNOR as XOR2; ANDNOT / ORNOT as AND2 / OR2 with an inverter on B; MUX data inputs as AND2
(a transmission or AND-OR path) and its select as an inverter; a flip-flop's D, enable,
reset and clock pins as inverter inputs (each enters an inverter or a pass gate of that size).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sorbet_hw.files import atomic_write, locked, read_record
from sorbet_hw.tools import ToolError
from synth.yosys import run_yosys

VDD = 1.10                  # V, NangateOpenCellLibrary_typical.lib nominal voltage
FF = 1e-15

# Input pin capacitance (fF) of the NanGate45 X1 cells (see the module docstring).
NAND2, NOR2, AND2, OR2, XOR2, INV, BUF = 1.599032, 1.714471, 0.918145, 0.946814, 2.411453, 1.700230, 0.974659

# Yosys generic cell type -> capacitance of each input pin (fF).
PIN_CAPACITANCE = {
    "$_BUF_": {"A": BUF},
    "$_NOT_": {"A": INV},
    "$_AND_": {"A": AND2, "B": AND2},
    "$_NAND_": {"A": NAND2, "B": NAND2},
    "$_OR_": {"A": OR2, "B": OR2},
    "$_NOR_": {"A": NOR2, "B": NOR2},
    "$_XOR_": {"A": XOR2, "B": XOR2},
    "$_XNOR_": {"A": XOR2, "B": XOR2},
    "$_ANDNOT_": {"A": AND2, "B": INV},
    "$_ORNOT_": {"A": OR2, "B": INV},
    "$_MUX_": {"A": AND2, "B": AND2, "S": INV},
    "$_NMUX_": {"A": AND2, "B": AND2, "S": INV},
    "$_AOI3_": {"A": AND2, "B": AND2, "C": NOR2},
    "$_OAI3_": {"A": OR2, "B": OR2, "C": NAND2},
    "$_AOI4_": {"A": AND2, "B": AND2, "C": AND2, "D": AND2},
    "$_OAI4_": {"A": OR2, "B": OR2, "C": OR2, "D": OR2},
}
FLIP_FLOP_PIN = INV            # D, C, E, R, S pins of every $_DFF*/$_SDFF*/$_DFFE* cell
OUTPUT_PORT_LOAD = INV         # a primary output drives one inverter input


def pin_capacitance(cell_type: str, pin: str) -> float:
    if cell_type in PIN_CAPACITANCE:
        try:
            return PIN_CAPACITANCE[cell_type][pin]
        except KeyError:
            raise ToolError(f"no capacitance for pin {pin} of {cell_type}") from None
    if re.fullmatch(r"\$_(S?DFFE?|DFFSRE?|ALDFFE?|SDFFCE)_[PN01]+_", cell_type):
        return FLIP_FLOP_PIN
    raise ToolError(f"no energy model for Yosys cell {cell_type}: add it to "
                    f"synth.activity.PIN_CAPACITANCE")


def gate_netlist(verilog: Path, top: str, work: Path) -> tuple[Path, Path]:
    """Synthesize ``verilog`` to generic gates; returns (gate Verilog, gate JSON) in ``work``.
    ``rename -enumerate`` gives every internal net a plain name, identical in both files."""
    work.mkdir(parents=True, exist_ok=True)
    src = work / "rtl.v"
    src.write_text(Path(verilog).read_text())
    run_yosys(f"read_verilog rtl.v; synth -top {top} -flatten; check -assert; "
              f"rename -enumerate; opt_clean -purge; "
              f"write_verilog -noattr gate.v; write_json gate.json", work)
    return work / "gate.v", work / "gate.json"


def _plain(name: str) -> str:
    return name[1:] if name.startswith("\\") else name


def count_toggles(vcd: Path) -> dict[str, list[int]]:
    """0<->1 transitions of every bit of every net in a VCD, by net name (bit 0 = LSB).
    Transitions from or to x/z are not counted (initialization, undriven)."""
    ids: dict[str, list[tuple[str, int]]] = {}
    toggles: dict[str, list[int]] = {}
    last: dict[str, str] = {}
    with open(vcd) as f:
        for line in f:                                   # header
            if line.startswith("$var"):
                parts = line.split()
                width, code, name = int(parts[2]), parts[3], _plain(parts[4])
                if name not in toggles:
                    toggles[name] = [0] * width
                    ids.setdefault(code, []).append((name, width))
            elif line.startswith("$enddefinitions"):
                break
        for line in f:
            c = line[:1]
            if c == "b":
                value, code = line[1:].split()
            elif c in "01xzXZ":
                value, code = c, line[1:].strip()
            else:
                continue                                 # timestamps, $dumpvars, comments
            previous = last.get(code)
            last[code] = value
            if previous is None or code not in ids:
                continue
            for name, width in ids[code]:
                a, b = previous.rjust(width, previous[0] if previous[0] in "xz" else "0"), \
                    value.rjust(width, value[0] if value[0] in "xz" else "0")
                counts = toggles[name]
                for i in range(width):
                    x, y = a[width - 1 - i], b[width - 1 - i]
                    if x != y and x in "01" and y in "01":
                        counts[i] += 1
    return toggles


@dataclass
class Activity:
    energy_j: float                    # total switching energy of the run
    by_driver: dict[str, float]        # by the driver of each net: cell type, "clock" (the
                                       # clock net into every flip-flop), "input ports" (J)
    toggles: int                       # 0<->1 transitions counted over all net bits
    nets: int                          # net bits with a driver
    unmatched: int                     # net bits with a driver but absent from the VCD
    cells: int                         # cells of the netlist

    def as_dict(self) -> dict:
        return {"energy_j": self.energy_j, "by_driver": self.by_driver, "toggles": self.toggles,
                "nets": self.nets, "unmatched": self.unmatched, "cells": self.cells}


def switching_energy(netlist_json: Path, toggles: dict[str, list[int]], top: str) -> Activity:
    """Sum over driven net bits of toggles x 1/2 C V^2 (C: sink pins + driver, see above)."""
    module = json.loads(Path(netlist_json).read_text())["modules"][top]
    load: dict[int, float] = {}                 # bit -> sink capacitance (fF)
    driver: dict[int, str] = {}                 # bit -> driving cell type, "clock" or "input ports"
    for cell in module["cells"].values():
        kind = cell["type"]
        for pin, bits in cell["connections"].items():
            direction = cell["port_directions"][pin]
            for bit in bits:
                if not isinstance(bit, int):
                    continue                     # a constant
                if direction == "input":
                    load[bit] = load.get(bit, 0.0) + pin_capacitance(kind, pin)
                else:
                    driver[bit] = kind
    for name, port in module["ports"].items():
        for bit in port["bits"]:
            if isinstance(bit, int):
                if port["direction"] == "input":
                    driver.setdefault(bit, "clock" if name == "clk" else "input ports")
                else:
                    load[bit] = load.get(bit, 0.0) + OUTPUT_PORT_LOAD
    bit_toggles: dict[int, int] = {}
    for name, net in module["netnames"].items():
        counts = toggles.get(_plain(name))
        if counts is None:
            continue
        for i, bit in enumerate(net["bits"]):
            if isinstance(bit, int) and i < len(counts):
                bit_toggles.setdefault(bit, counts[i])
    by_driver: dict[str, float] = {}
    total_toggles, unmatched = 0, 0
    for bit, kind in driver.items():
        if bit not in bit_toggles:
            unmatched += 1
            continue
        n = bit_toggles[bit]
        self_cap = 0.0 if kind in ("clock", "input ports") else _driver_capacitance(kind)
        energy = n * 0.5 * (load.get(bit, 0.0) + self_cap) * FF * VDD ** 2
        by_driver[kind] = by_driver.get(kind, 0.0) + energy
        total_toggles += n
    return Activity(sum(by_driver.values()), dict(sorted(by_driver.items())), total_toggles,
                    len(driver), unmatched, len(module["cells"]))


def _driver_capacitance(cell_type: str) -> float:
    """Output (diffusion) capacitance of a driver = its input capacitance (gamma = 1)."""
    pins = PIN_CAPACITANCE.get(cell_type)
    return max(pins.values()) if pins else FLIP_FLOP_PIN


def elements(vectors) -> int:
    """What a block's energy is divided by: scores (softmax rows), channel values (norms), or
    synapse events, token x inputs x outputs (layers)."""
    weights = vectors.params.get("weights")
    if weights is not None:
        inputs, outputs = (len(weights), len(weights[0]))
        return len(vectors.inputs) * inputs * outputs
    return int(vectors.expected.size)


def measure(vectors, *, build_root: Path = Path("build")) -> dict:
    """Switching energy of ``vectors`` replayed on the gates of the block they were made for;
    the bench's bit-exact check must pass or this raises. Results are kept per configuration
    and inputs under ``build_root/activity/`` and reused."""
    from hw.blocks import get_block
    from sim.runner import config_key
    block = get_block(vectors.block)
    params = block.resolve(vectors.params)
    work = Path(build_root) / "activity" / f"{vectors.block}-{config_key(vectors.block, params)}"
    with locked(work, f"the gate-level run of {vectors.block} in {build_root}"):
        return _measure(vectors, params, work, build_root)


def _measure(vectors, params: dict, work: Path, build_root: Path) -> dict:
    import hashlib
    from hw.blocks import generate
    from sim.runner import config_key, run_bench
    digest = hashlib.sha256(np.ascontiguousarray(vectors.inputs, np.int64).tobytes()).hexdigest()[:12]
    # Results and the gate netlist are reused only for the same RTL: a changed generator
    # (or a netlist cut short by a kill, which leaves no stamp) is synthesized again.
    verilog = generate(vectors.block, params, work / "rtl")
    rtl = hashlib.sha256(verilog.read_bytes()).hexdigest()[:12]
    done = work / f"result-{digest}-{rtl}.json"
    record = read_record(done)
    if record is not None and "energy_per_element_j" in record:
        return record
    netlist, netlist_json, stamp = work / "gate.v", work / "gate.json", work / "gate.stamp"
    if not (netlist_json.is_file() and stamp.is_file() and stamp.read_text() == rtl):
        stamp.unlink(missing_ok=True)
        gate_netlist(verilog, vectors.block, work)
        atomic_write(stamp, rtl)
    result = run_bench(vectors, "icarus", build_root=build_root, netlist=netlist, dump_all=True)
    if not result.passed:
        raise ToolError(f"the gate netlist of {vectors.block} failed its bench: "
                        f"{result.first_mismatch} (log: {result.log})")
    activity = switching_energy(netlist_json, count_toggles(result.vcd), vectors.block)
    result.vcd.unlink()                 # tens of MB; the counts are what is kept
    n = elements(vectors)
    record = {"block": vectors.block, "config": config_key(vectors.block, params),
              "vectors": len(vectors), "elements": n, "cycles": result.cycles,
              **activity.as_dict(), "energy_per_element_j": activity.energy_j / n}
    atomic_write(done, json.dumps(record, indent=2) + "\n")
    return record
