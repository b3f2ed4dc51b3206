"""Parameter sets the tests exercise, gathered from the benches (each ``sim/<block>.py``
declares its ``CONFIGURATIONS``: the default plus at least three others)."""
import importlib

from sorbet_hw.hw.blocks import BLOCKS


def _bench(block: str):
    return importlib.import_module(f"sorbet_hw.sim.{block}")


# A bench that declares none runs its block's default configuration; the composite layer
# has its own tests (tests/test_encoder_layer.py).
CONFIGS = {block: getattr(_bench(block), "CONFIGURATIONS", {"default": {}})
           for block in BLOCKS if not BLOCKS[block].composite}
VERILATOR_EXCLUDED = {(block, name) for block in CONFIGS
                      for name in getattr(_bench(block), "ICARUS_ONLY", ())}

RANDOM_VECTORS = {"default": 3_000}       # every other configuration: 1,000


def vector_count(block: str, name: str) -> int:
    counts = getattr(_bench(block), "VECTORS", None)
    if counts is not None:
        return counts.get(name, counts["*"])
    return RANDOM_VECTORS.get(name, 1000)
