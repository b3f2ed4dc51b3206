"""Energy from measured switching activity: the gates Yosys made, toggled by real vectors.

Method 2 of the energy model. For one block configuration and one vector file:

1. ``gate_netlist``: Yosys ``synth -flatten`` to its generic gates, memories kept as macros
   (``$mem_v2``, as an ASIC flow takes SRAM/ROM from a memory compiler), written as Verilog
   (to simulate) and JSON (to know, for every net bit, which cell pins it drives).
2. The block's own cocotb bench replays the vectors on that gate netlist in Verilator at full
   speed (no stalls), checks the outputs bit for bit as always, and writes every net's
   switching activity as SAIF (``sim.runner.run_bench(netlist=..., saif=True)``): toggle count
   TC and the time at 1, T1, of every net bit, the format power tools read.
3. ``read_saif`` reads it; ``switching_energy`` charges:

   - **nets**: each toggle charges or discharges the capacitance the net drives, E = 1/2 C V^2,
     with C = the input pins of every cell it feeds (table below) plus the driver's own
     output (diffusion) capacitance, taken equal to its input capacitance (gamma = 1: Weste &
     Harris, *CMOS VLSI Design*, 4th ed., section 4.3.2);
   - **the clock**, two ways. *Ungated*: every clock edge charges every flip-flop's clock pin
     (and every memory macro's). *Gated*, as clock-gating insertion in an ASIC flow does it:
     flip-flops that share an enable net (a bank of at least :data:`MIN_GATED_BANK`, the
     minimum bit width of Synopsys Power Compiler's default clock-gating style) get one
     integrated clock gate (ICG), whose own clock pin is charged every cycle, and their clock
     pins only in the cycles their enable is active (from the enable's T1); flip-flops
     without an enable, or in smaller banks, are clocked every cycle. Granularity: one ICG
     per enable net.
   - **memories**: each macro read port charges :func:`memory_bit_energy` per bit in every
     cycle its enable is active (a constant enable: every cycle), each write port per bit
     written, at the size of one bank: a memory larger than :data:`BANK_BITS` is built of
     banks of that size, and an access reads or writes one word of one of them. The
     monolithic figure (every memory one macro) is kept beside it.

   Not included: short-circuit current, leakage, wires (no placement).

Pin capacitances: NanGate FreePDK45 Open Cell Library, ``NangateOpenCellLibrary_typical.lib``
(typical corner, 1.10 V), X1 drive strength, in fF: NAND2_X1 A1 1.599032, NOR2_X1 A1
1.714471, AND2_X1 A1 0.918145, OR2_X1 A1 0.946814, XOR2_X1 A 2.411453, INV_X1 A 1.700230,
BUF_X1 A 0.974659. Yosys cells without a direct X1 counterpart are modelled from these:
XNOR as XOR2; ANDNOT / ORNOT as AND2 / OR2 with an inverter on B; MUX data inputs as AND2
(a transmission or AND-OR path) and its select as an inverter; a flip-flop's D, enable,
reset and clock pins, and every input pin of a memory macro, as inverter inputs (each enters
an inverter or a pass gate of that size); an ICG's clock pin as its latch's clock (an
inverter input) plus its AND gate's input.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sorbet_hw.files import atomic_write, locked, read_record
from sorbet_hw.tools import ToolError
from sorbet_hw.synth.yosys import run_yosys

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
MEMORY_PIN = INV               # every input pin of a $mem_v2 macro
ICG_CLOCK_PIN = INV + AND2     # an integrated clock gate: latch clock + AND input (modelled)
# Synopsys Power Compiler's default clock-gating style gates banks of 3 flip-flops or more.
MIN_GATED_BANK = 3
# Energy of a memory macro access: Horowitz, "Computing's energy problem", ISSCC 2014, Figure
# 1.1.9, 45 nm: a 64-bit access costs 10 pJ in an 8 KB SRAM, 20 pJ in a 32 KB one (4x the
# size, 2x the energy: the square-root law of bit- and word-line lengths). The blocks'
# memories are far smaller; their energy per bit is extrapolated down by that law.
E_64BIT_8KB = 10e-12
SRAM_8KB_BITS = 8 * 1024 * 8


# Memories come in banks of at most 16 Kbit: the data bits of an 18 Kbit FPGA block RAM
# (Xilinx RAMB18, Lattice ECP5 DP16KD), or a small SRAM macro.
BANK_BITS = 16 * 1024
# Bump when the energy model changes: a kept measurement of another model is measured again.
MODEL_VERSION = 2


def memory_bit_energy(bits: int, *, banked: bool = False) -> float:
    """Energy per bit accessed in a memory of ``bits`` bits (see E_64BIT_8KB); ``banked``: in
    one bank of it (:data:`BANK_BITS` at most)."""
    bits = min(bits, BANK_BITS) if banked else bits
    return E_64BIT_8KB / 64 * (max(bits, 1) / SRAM_8KB_BITS) ** 0.5
FLOP = re.compile(r"\$_(S?DFFE?|DFFSRE?|ALDFFE?|SDFFCE)_([PN01]+)_")


def pin_capacitance(cell_type: str, pin: str) -> float:
    if cell_type in PIN_CAPACITANCE:
        try:
            return PIN_CAPACITANCE[cell_type][pin]
        except KeyError:
            raise ToolError(f"no capacitance for pin {pin} of {cell_type}") from None
    if FLOP.fullmatch(cell_type):
        return FLIP_FLOP_PIN
    if cell_type == "$mem_v2":
        return MEMORY_PIN
    raise ToolError(f"no energy model for Yosys cell {cell_type}: add it to "
                    f"synth.activity.PIN_CAPACITANCE")


def gate_netlist(verilog: Path, top: str, work: Path, rtlil: str | None = None) -> tuple[Path, Path]:
    """Synthesize ``verilog`` (or the same design as ``rtlil`` text, which Yosys reads in
    seconds where a large ROM's Verilog, one initial statement a word, takes it many
    minutes) to generic gates; returns (gate Verilog, gate JSON) in ``work``.
    ``rename -enumerate`` gives every internal net a plain name, identical in both files."""
    work.mkdir(parents=True, exist_ok=True)
    if rtlil is None:
        (work / "rtl.v").write_text(Path(verilog).read_text())
        read = "read_verilog rtl.v"
    else:
        (work / "rtl.il").write_text(rtlil)
        read = "read_rtlil rtl.il"
    # synth up to `fine`, then that step without memory_map: memories stay macros ($mem_v2),
    # charged per access (as an ASIC flow takes them from a memory compiler).
    run_yosys(f"{read}; synth -top {top} -flatten -run begin:fine; "
              f"opt -fast -full; opt -full; techmap; opt -fast; abc; opt -fast; check -assert; "
              f"rename -enumerate; opt_clean -purge; "
              f"write_verilog -noattr gate.v; write_json gate.json", work)
    return work / "gate.v", work / "gate.json"


def _plain(name: str) -> str:
    return name[1:] if name.startswith("\\") else name


@dataclass
class Saif:
    """A SAIF file's activity for one instance: per net bit, (toggles, time at 1)."""
    duration: int                                  # in the file's time unit
    nets: dict[str, list[tuple[int, int]]]         # name -> per bit (bit 0 = LSB)

    def cycles(self, clock: str = "clk") -> int:
        return self.nets[clock][0][0] // 2

    def period(self, clock: str = "clk") -> float:
        return self.duration / max(self.cycles(clock), 1)


_SAIF_NET = re.compile(r"\s*\((\S+) \(T0 (\d+)\) \(T1 (\d+)\).*?\(TC (\d+)\)")


def read_saif(path: Path, instance: str) -> Saif:
    """The nets of ``instance`` in a SAIF file (as Verilator writes it: one net bit a line,
    ``name\\[i\\]`` for bit i)."""
    from sorbet_hw.files import FileFormatError
    duration, nets, inside = None, {}, False
    bits: dict[str, dict[int, tuple[int, int]]] = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            stripped = line.strip()
            if stripped.startswith("(DURATION"):
                duration = int(stripped.split()[1].rstrip(")"))
            elif stripped.startswith("(INSTANCE"):
                inside = stripped.split()[1] == instance
            elif inside:
                m = _SAIF_NET.match(line)
                if m:
                    name = m.group(1).replace("\\", "")
                    index = 0
                    if name.endswith("]") and "[" in name:
                        name, _, rest = name.rpartition("[")
                        index = int(rest[:-1])
                    bits.setdefault(name, {})[index] = (int(m.group(4)), int(m.group(3)))
    if duration is None or not bits:
        raise FileFormatError(f"{path}: no DURATION or no nets of instance {instance}: not a "
                              f"SAIF file of that design")
    for name, by_index in bits.items():
        nets[name] = [by_index.get(i, (0, 0)) for i in range(max(by_index) + 1)]
    return Saif(duration, nets)


@dataclass
class Activity:
    energy_j: float                    # total, clock gated (what an ASIC flow would build)
    energy_ungated_j: float            # total, every flip-flop clocked every cycle
    by_driver: dict[str, float]        # gated total by the driver of each net: cell type,
                                       # "input ports", "clock (gated)", "memory reads/writes" (J)
    clock_ungated_j: float
    clock_gated_j: float               # ICGs included
    toggles: int                       # 0<->1 transitions counted over all net bits
    nets: int                          # net bits with a driver
    unmatched: int                     # net bits with a driver but absent from the SAIF
    cells: int                         # cells of the netlist
    flops: int
    gated_flops: int
    clock_gates: int
    memory_monolithic_j: float = 0.0   # the memory accesses if every memory were one macro
    # Per memory (its name in the design): bits, bits read, bits written.
    memories: dict = None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class _Netlist:
    """A gate netlist's nets as the energy model sees them, bit by bit."""
    module: dict
    load: dict[int, float]                     # sink capacitance (fF), clock pins apart
    driver: dict[int, tuple[str, str]]         # (cell name or port name, cell type or "input ports")
    sinks: dict[int, list[tuple[str, str]]]    # (cell name, pin), or (port name, "") for an output
    clock_bits: set[int]
    activity: dict[int, tuple[int, int]]       # (toggles, time at 1)

    def energy(self, bit: int) -> float:
        """A driven net bit's switching energy (J): its toggles x 1/2 C V^2."""
        kind = self.driver[bit][1]
        self_cap = 0.0 if kind == "input ports" else _driver_capacitance(kind)
        return self.activity[bit][0] * HALF_V2 * (self.load.get(bit, 0.0) + self_cap)


HALF_V2 = 0.5 * VDD ** 2 * FF


def _read_netlist(netlist_json: Path, saif: Saif, top: str) -> _Netlist:
    module = json.loads(Path(netlist_json).read_text())["modules"][top]
    nl = _Netlist(module, {}, {}, {}, set(), {})
    for name, port in module["ports"].items():
        for bit in port["bits"]:
            if isinstance(bit, int) and port["direction"] == "input":
                nl.driver[bit] = (name, "input ports")
                if name == "clk":
                    nl.clock_bits.add(bit)
    for cell_name, cell in module["cells"].items():
        kind = cell["type"]
        for pin, bits in cell["connections"].items():
            direction = cell["port_directions"][pin]
            for bit in bits:
                if not isinstance(bit, int):
                    continue                     # a constant
                if direction == "input":
                    if bit not in nl.clock_bits:
                        nl.load[bit] = nl.load.get(bit, 0.0) + pin_capacitance(kind, pin)
                        nl.sinks.setdefault(bit, []).append((cell_name, pin))
                else:
                    nl.driver[bit] = (cell_name, kind)
    for name, port in module["ports"].items():
        if port["direction"] == "output":
            for bit in port["bits"]:
                if isinstance(bit, int):
                    nl.load[bit] = nl.load.get(bit, 0.0) + OUTPUT_PORT_LOAD
                    nl.sinks.setdefault(bit, []).append((name, ""))
    for name, net in module["netnames"].items():
        per_bit = saif.nets.get(_plain(name))
        if per_bit is None:
            continue
        for i, bit in enumerate(net["bits"]):
            if isinstance(bit, int) and i < len(per_bit):
                nl.activity.setdefault(bit, per_bit[i])
    return nl


def switching_energy(netlist_json: Path, saif: Saif, top: str) -> Activity:
    """Nets, clock (gated and ungated) and memory accesses, as the module docstring says."""
    nl = _read_netlist(netlist_json, saif, top)
    by_driver: dict[str, float] = {}
    total_toggles, unmatched = 0, 0
    for bit, (_, kind) in nl.driver.items():
        if bit in nl.clock_bits:
            continue
        if bit not in nl.activity:
            unmatched += 1
            continue
        by_driver[kind] = by_driver.get(kind, 0.0) + nl.energy(bit)
        total_toggles += nl.activity[bit][0]
    ungated, gated, flops, gated_flops, gates = _clock_energy(nl.module, saif, nl.activity)
    by_driver["clock (gated)"] = gated
    memory = _memory_energy(nl.module, saif, nl.activity)
    monolithic, memories = memory.pop("monolithic"), memory.pop("traffic")
    by_driver.update(memory)
    logic = sum(v for k, v in by_driver.items() if k != "clock (gated)")
    return Activity(logic + gated, logic + ungated, dict(sorted(by_driver.items())), ungated, gated,
                    total_toggles, len(nl.driver), unmatched, len(nl.module["cells"]), flops,
                    gated_flops, gates, monolithic, memories)


def energy_by_register(netlist_json: Path, saif: Saif, top: str) -> dict[str, float]:
    """Where a block's gated energy goes, by register (J; the same total as
    :func:`switching_energy`). A register is the flip-flops whose outputs share a net name
    (Yosys keeps the RTL's names on them). Each gate's output net is charged to what its
    fanout reaches first: registers (``name`` for the next value, ``name.E`` / ``name.R``
    for the enable / reset logic), memory ports (``memory.PIN``) and output ports, several
    joined by `` + `` when a gate feeds several; a register's own output net to
    ``name (output)``; each clock bank to ``clock: names``; the memories' accesses as
    :func:`switching_energy` charges them."""
    nl = _read_netlist(netlist_json, saif, top)
    module = nl.module
    names: dict[int, str] = {}              # bit -> the net's most telling name
    for name, net in module["netnames"].items():
        for bit in net["bits"]:
            if isinstance(bit, int) and (bit not in names or names[bit][0] in "_$\\"):
                names[bit] = name.lstrip("\\")

    def register(cell: dict) -> str:
        return names.get(cell["connections"]["Q"][0], "?")

    reached: dict[int, frozenset] = {}

    def destinations(bit: int) -> frozenset:
        if bit not in reached:
            reached[bit] = frozenset()          # a loop through gates charges nothing twice
            found: set[str] = set()
            for cell_name, pin in nl.sinks.get(bit, []):
                cell = module["cells"].get(cell_name)
                if cell is None:
                    found.add(cell_name)        # an output port
                elif FLOP.fullmatch(cell["type"]):
                    found.add(register(cell) + ("" if pin == "D" else f".{pin}"))
                elif cell["type"] == "$mem_v2":
                    found.add(f"memory.{pin}")
                else:
                    for out in cell["connections"]["Y"]:
                        found |= destinations(out)
            reached[bit] = frozenset(found)
        return reached[bit]

    by_register: dict[str, float] = {}

    def charge(key: str, joules: float) -> None:
        by_register[key] = by_register.get(key, 0.0) + joules
    for bit, (cell_name, kind) in nl.driver.items():
        if bit in nl.clock_bits or bit not in nl.activity:
            continue
        if FLOP.fullmatch(kind):
            key = f"{register(module['cells'][cell_name])} (output)"
        elif kind in ("$mem_v2", "input ports"):
            key = "memory (read data)" if kind == "$mem_v2" else f"input port {cell_name}"
        else:
            key = " + ".join(sorted(destinations(bit))) or "(nothing)"
        charge(key, nl.energy(bit))
    for cells, joules in _clock_banks(module, saif, nl.activity)[1]:
        charge("clock: " + ", ".join(sorted({register(module["cells"][c]) for c in cells}))
               if cells else "clock: memory ports", joules)
    memory = _memory_energy(module, saif, nl.activity)
    for key in ("memory reads", "memory writes"):
        charge(key, memory.get(key, 0.0))
    return dict(sorted(by_register.items(), key=lambda kv: -kv[1]))


def _clock_banks(module: dict, saif: Saif, activity: dict):
    """(ungated J, [(flip-flop cells, gated J)], flip-flops, gated flip-flops, clock gates): a
    bank is the flip-flops of one enable (gated, with its ICG, from MIN_GATED_BANK on), each other
    flip-flop its own; the memory ports' clock pins are a bank of no flip-flops. A clock
    cycle is two edges: C V^2 a pin a cycle, 1/2 C V^2 an edge."""
    if "clk" not in saif.nets:                 # a combinational design
        return 0.0, [], 0, 0, 0
    edges = saif.nets["clk"][0][0]
    period = saif.period()
    banks: dict[tuple[int, str], list[str]] = {}     # (enable bit, active level) -> flip-flops
    alone: list[str] = []
    flops = memory_pins = 0
    for cell_name, cell in module["cells"].items():
        m = FLOP.fullmatch(cell["type"])
        if m:
            flops += 1
            enable = cell["connections"].get("E", [None])[0]
            if isinstance(enable, int):
                # The last polarity letter is the enable's (Yosys $_DFFE_PN_: clock P, enable N).
                banks.setdefault((enable, m.group(2)[-1]), []).append(cell_name)
            else:
                alone.append(cell_name)
        elif cell["type"] == "$mem_v2":
            memory_pins += sum(isinstance(b, int) for pin in ("RD_CLK", "WR_CLK")
                               for b in cell["connections"].get(pin, []))
    ungated = edges * HALF_V2 * (flops * FLIP_FLOP_PIN + memory_pins * MEMORY_PIN)
    charged = [([], edges * HALF_V2 * memory_pins * MEMORY_PIN)] if memory_pins else []
    gated_flops = gates = 0
    for (enable, level), cells in banks.items():
        if len(cells) < MIN_GATED_BANK:
            alone += cells
            continue
        toggles, high = activity.get(enable, (0, 0))
        active_time = high if level == "P" else saif.duration - high
        active_edges = 2 * active_time / period
        charged.append((cells, edges * HALF_V2 * ICG_CLOCK_PIN
                        + active_edges * HALF_V2 * len(cells) * FLIP_FLOP_PIN))
        gated_flops += len(cells)
        gates += 1
    charged += [([c], edges * HALF_V2 * FLIP_FLOP_PIN) for c in alone]
    return ungated, charged, flops, gated_flops, gates


def _clock_energy(module: dict, saif: Saif, activity: dict):
    """(ungated J, gated J, flip-flops, gated flip-flops, clock gates)."""
    ungated, charged, flops, gated_flops, gates = _clock_banks(module, saif, activity)
    return ungated, sum(j for _, j in charged), flops, gated_flops, gates


def _memory_energy(module: dict, saif: Saif, activity: dict) -> dict[str, float]:
    """Read ports: width x the cycles their enable is high (a constant 1: every cycle); write
    ports: every enabled bit a cycle; :func:`memory_bit_energy` of a bank each. Also the
    total at monolithic size (``monolithic``)."""
    if "clk" not in saif.nets:
        return {"monolithic": 0.0, "traffic": {}}
    cycles, period = saif.cycles(), saif.period()
    reads = writes = monolithic = 0.0
    traffic = {}

    def cycles_high(enable) -> float:
        if isinstance(enable, int):
            return activity.get(enable, (0, 0))[1] / period
        return cycles if enable == "1" else 0
    for cell in module["cells"].values():
        if cell["type"] != "$mem_v2":
            continue
        c, p = cell["connections"], cell["parameters"]
        ports, width = int(p["RD_PORTS"], 2), int(p["WIDTH"], 2)
        bits = width * int(p["SIZE"], 2)
        read_bits = width * sum(cycles_high(c["RD_EN"][i]) for i in range(ports))
        written_bits = sum(cycles_high(e) for e in c["WR_EN"])   # one enable a data bit
        per_bit = memory_bit_energy(bits, banked=True)
        reads += per_bit * read_bits
        writes += per_bit * written_bits
        monolithic += memory_bit_energy(bits) * (read_bits + written_bits)
        name = str(p.get("MEMID", "")).lstrip("\\") or "memory"
        traffic[name] = {"bits": bits, "read_bits": round(read_bits), "written_bits": round(written_bits)}
    return {"memory reads": reads, "memory writes": writes, "monolithic": monolithic,
            "traffic": traffic}


def _driver_capacitance(cell_type: str) -> float:
    """Output (diffusion) capacitance of a driver = its input capacitance (gamma = 1)."""
    pins = PIN_CAPACITANCE.get(cell_type)
    if pins:
        return max(pins.values())
    return MEMORY_PIN if cell_type == "$mem_v2" else FLIP_FLOP_PIN


def elements(vectors) -> int:
    """What a block's energy is divided by: scores (softmax rows), channel values (norms), or
    synapse events, token x inputs x outputs (layers)."""
    weights = vectors.params.get("weights")
    if weights is not None:
        inputs, outputs = (len(weights), len(weights[0]))
        return len(vectors.inputs) * inputs * outputs
    return int(vectors.expected.size)


# Above this many expected cycles the gate-level model is compiled with optimization, if it
# has at most OPTIMIZED_BUILD_CELLS cells.
QUICK_BUILD_CYCLES = 20_000
OPTIMIZED_BUILD_CELLS = 40_000


def _cells(netlist_json: Path, top: str) -> int:
    return len(json.loads(Path(netlist_json).read_text())["modules"][top]["cells"])


def expected_cycles(vectors) -> float:
    """The bench's own bound on the cycles of a replay at full speed (an estimate)."""
    import importlib
    from sorbet_hw.hw.blocks import get_block
    bench = importlib.import_module(f"sorbet_hw.sim.{vectors.block}")
    block = get_block(vectors.block)
    ports = block.encode(block.check(vectors.params), vectors.inputs)
    return sum(map(len, ports.values())) * bench.cycles_per_beat(vectors)


def measure(vectors, *, build_root: Path = Path("build")) -> dict:
    """Switching energy of ``vectors`` replayed on the gates of the block they were made for;
    the bench's bit-exact check must pass or this raises. Results are kept per configuration
    and inputs under ``build_root/activity/`` and reused."""
    params, work = _work(vectors, build_root)
    with locked(work, f"the gate-level run of {vectors.block} in {build_root}"):
        return _measure(vectors, params, work, build_root)


def _work(vectors, build_root: Path) -> tuple[dict, Path]:
    """The block's resolved parameters and its folder under ``build_root/activity/``."""
    from sorbet_hw.hw.blocks import get_block
    from sorbet_hw.sim.runner import config_key
    params = get_block(vectors.block).resolve(vectors.params)
    return params, Path(build_root) / "activity" / f"{vectors.block}-{config_key(vectors.block, params)}"


def _replay(vectors, verilog: Path, work: Path, build_root: Path):
    """The gate netlist of ``verilog`` (kept in ``work`` while the RTL is the same) replaying
    ``vectors`` on Verilator with SAIF: (netlist JSON, bench result, time synthesis ended)."""
    from sorbet_hw.sim.runner import run_bench
    rtl = hashlib.sha256(verilog.read_bytes()).hexdigest()[:12]
    netlist, netlist_json, stamp = work / "gate.v", work / "gate.json", work / "gate.stamp"
    if not (netlist_json.is_file() and stamp.is_file() and stamp.read_text() == rtl):
        stamp.unlink(missing_ok=True)
        from amaranth.back import rtlil
        from sorbet_hw.hw.blocks import get_block
        component = get_block(vectors.block).build(vectors.params)
        gate_netlist(verilog, vectors.block, work,
                     rtlil=rtlil.convert(component, name=vectors.block, emit_src=False))
        atomic_write(stamp, rtl)
    synthesized = time.time()
    # An unoptimized C++ model builds several times faster; a long replay (a real layer's
    # 240k cycles) runs several times faster optimized, which then pays for its build, unless
    # the netlist is so large that the optimized build takes most of an hour.
    long_run = (expected_cycles(vectors) > QUICK_BUILD_CYCLES
                and _cells(netlist_json, vectors.block) <= OPTIMIZED_BUILD_CELLS)
    result = run_bench(vectors, "verilator", build_root=build_root, netlist=netlist, saif=True,
                       quick_build=not long_run)
    if not result.passed:
        raise ToolError(f"the gate netlist of {vectors.block} failed its bench: "
                        f"{result.first_mismatch} (log: {result.log})")
    return netlist_json, result, synthesized


def breakdown(vectors, *, build_root: Path = Path("build")) -> dict[str, float]:
    """:func:`energy_by_register` of ``vectors`` replayed on their block's gates (replayed
    again each call; the netlist is reused)."""
    from sorbet_hw.hw.blocks import generate
    params, work = _work(vectors, build_root)
    with locked(work, f"the gate-level run of {vectors.block} in {build_root}"):
        netlist_json, result, _ = _replay(vectors, generate(vectors.block, params, work / "rtl"),
                                          work, build_root)
        return energy_by_register(netlist_json, read_saif(result.saif, vectors.block), vectors.block)


def _measure(vectors, params: dict, work: Path, build_root: Path) -> dict:
    from sorbet_hw.hw.blocks import generate
    from sorbet_hw.sim.runner import config_key
    digest = hashlib.sha256(np.ascontiguousarray(vectors.inputs, np.int64).tobytes()).hexdigest()[:12]
    # Results and the gate netlist are reused only for the same RTL: a changed generator
    # (or a netlist cut short by a kill, which leaves no stamp) is synthesized again.
    verilog = generate(vectors.block, params, work / "rtl")
    rtl = hashlib.sha256(verilog.read_bytes()).hexdigest()[:12]
    done = work / f"result-{digest}-{rtl}.json"
    record = read_record(done)
    if record is not None and record.get("model") == MODEL_VERSION:
        return record
    started = time.time()
    netlist_json, result, synthesized = _replay(vectors, verilog, work, build_root)
    simulated = time.time()
    activity = switching_energy(netlist_json, read_saif(result.saif, vectors.block), vectors.block)
    n = elements(vectors)
    # Where a measurement's time goes (synthesis, the C++ model's build, the replay, reading
    # the activity back), for whoever sizes a run.
    seconds = {"synthesis": synthesized - started, "build": result.build_seconds,
               "simulation": result.sim_seconds, "activity": time.time() - simulated}
    record = {"model": MODEL_VERSION, "block": vectors.block, "config": config_key(vectors.block, params),
              "vectors": len(vectors), "elements": n, "cycles": result.cycles,
              **activity.as_dict(), "energy_per_element_j": activity.energy_j / n,
              "energy_per_element_ungated_j": activity.energy_ungated_j / n,
              "energy_monolithic_j": activity.energy_j - activity.by_driver.get("memory reads", 0.0)
              - activity.by_driver.get("memory writes", 0.0) + activity.memory_monolithic_j,
              "seconds": {k: round(v, 1) for k, v in seconds.items()}}
    atomic_write(done, json.dumps(record, indent=2) + "\n")
    return record
