"""Every block, by the name `sorbet-hw generate` takes: the declarations (:mod:`hw.block`)
found in the modules of the ``hw`` package, and the Verilog generation they share.

A block is registered by declaring ``BLOCK = Block(...)`` in its own ``hw/<block>.py``;
nothing here names one.
"""
from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import numpy as np

from sorbet_hw.hw.block import Block
from sorbet_hw.hw.verilog import to_verilog
from sorbet_hw.model.params import ParameterError


def _discover() -> dict[str, Block]:
    import sorbet_hw.hw as package
    found = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        block = getattr(module, "BLOCK", None)
        if isinstance(block, Block):
            if block.name != info.name:
                raise RuntimeError(f"hw/{info.name}.py declares block {block.name!r}: a block "
                                   f"lives in the module of its name")
            found[block.name] = block
    # Spiking blocks first, then the baselines, then the composite layer: the order of
    # listings and of the main job's stages.
    return dict(sorted(found.items(), key=lambda kv: (kv[1].composite, kv[1].baseline_of is not None)))


BLOCKS = _discover()

# The single blocks: what `synth all` and the main job's per-block stages cover.
SINGLE_BLOCKS = [name for name, block in BLOCKS.items() if not block.composite]


def get_block(name: str) -> Block:
    try:
        return BLOCKS[name]
    except KeyError:
        raise ParameterError(f"unknown block {name!r}; choose one of: {', '.join(BLOCKS)}") from None


def describe(name: str, params: dict) -> str:
    shown = ", ".join(f"{k}={_short(v)}" for k, v in sorted(params.items()))
    return f"{name}({shown})"


def _short(value) -> str:
    if isinstance(value, np.ndarray) or isinstance(value, (list, tuple)):
        arr = np.asarray(value)
        return f"<array {'x'.join(map(str, arr.shape))} crc={_crc(arr)}>"
    return repr(value)


def _crc(arr: np.ndarray) -> str:
    import zlib
    return f"{zlib.crc32(np.ascontiguousarray(arr, dtype=np.int64).tobytes()):08x}"


def generate(name: str, params: dict, out_dir: Path, *, wrap=None) -> Path:
    """Write ``<out_dir>/<name>.v`` atomically and return its path. ``wrap``, if given, maps
    the component to another with the same ports (a deliberately broken one, in a test)."""
    block = get_block(name)
    params = block.resolve(params)
    component = block.component(**params)
    if wrap is not None:
        component = wrap(component)
    text = to_verilog(component, name, describe(name, params))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.v"
    if path.exists() and path.read_text() == text:
        return path                    # unchanged: keep the timestamp, so builds are reused
    from sorbet_hw.files import atomic_write
    return atomic_write(path, text)
