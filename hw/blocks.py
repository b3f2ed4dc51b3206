"""The generator of every block, by the name `sorbet-hw generate` takes.

A block registers its component class, its default parameters and how to read its array
parameters; adding a block means one entry here.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from sorbet_hw.hw.bspn import BSPN
from sorbet_hw.hw.bwn_layer import BWNLayer
from sorbet_hw.hw.encoder_layer import EncoderLayer, default_parallelism
from sorbet_hw.hw.if_layer import IFLayer
from sorbet_hw.hw.layernorm import LayerNorm
from sorbet_hw.hw.mac_layer import MACLayer
from sorbet_hw.hw.ptsoftmax import PTSoftmax
from sorbet_hw.hw.rate_encoder import RateEncoder
from sorbet_hw.hw.softmax import Softmax
from sorbet_hw.hw.spike_counter import SpikeCounter
from sorbet_hw.hw.spiking_attention import SpikingAttention
from sorbet_hw.hw.verilog import to_verilog
from sorbet_hw.model.encoder_layer import PARAMS as LAYER_PARAMS
from sorbet_hw.model.integer_model import LINEARS, NORMS
from sorbet_hw.model.params import ParameterError, check_int


@dataclass(frozen=True)
class Block:
    name: str
    component: type
    # Parameters that are arrays (comma-separated integers or a .npy file on the command line).
    arrays: tuple[str, ...] = ()
    # Parameters a component takes as **keywords (a layer's flat parameters).
    keywords: tuple[str, ...] = ()
    # Parameters that `complete` consumes (not the component's own), for error messages.
    extra_params: tuple[str, ...] = ()
    # For a conventional baseline: the spiking block it stands in for (synthesis ratios).
    baseline_of: str | None = None
    # Built of other blocks (the encoder layer): not part of `all` and the per-block stages.
    composite: bool = False
    # Uses multipliers (the conventional baselines); every other block must infer none.
    multiplies: bool = False
    # What `synth all` and the main job synthesize when no parameter is given: for the
    # layers, the partly serial configuration that the ratios benchmark compares (their
    # fully parallel defaults are 512 multipliers in the MAC layer: minutes of Yosys and
    # no FPGA fit, and they would compare nothing the benchmark measures).
    synth_params: dict = field(default_factory=dict)
    # Turns parameters (defaults already merged in) into explicit ones: arrays for the
    # defaults given as None, demo weights from a seed.
    complete: Callable[[dict], dict] = field(default=lambda params: params)

    def defaults(self) -> dict:
        sig = inspect.signature(self.component.__init__)
        return {k: p.default for k, p in sig.parameters.items()
                if k != "self" and p.default is not inspect.Parameter.empty}

    def resolve(self, params: dict) -> dict:
        """Every parameter of the generator, explicit (what a vector file records). Values
        must be integers where integers are meant: 1.7 is refused, never truncated."""
        defaults = self.defaults()
        params = {k: _exact(self.name, k, v, k in self.arrays)
                  for k, v in {**defaults, **params}.items()}
        for k, v in params.items():             # the kind of each default, before any use
            kind = type(defaults.get(k))
            if kind in (int, str) and not isinstance(v, kind) or kind is int and isinstance(v, bool):
                raise ParameterError(f"{self.name} parameter {k} must be "
                                     f"{'an integer' if kind is int else 'a string'}, got {v!r}")
        params = self.complete(params)
        sig = inspect.signature(self.component.__init__).parameters
        known = {k for k, p in sig.items() if p.kind != p.VAR_KEYWORD} - {"self"} | set(self.keywords)
        unknown = sorted(set(params) - known)
        if unknown:
            raise ParameterError(f"{self.name} has no parameter {', '.join(unknown)}; "
                                 f"known: {', '.join(sorted(known | set(self.extra_params)))}")
        return params

    def build(self, params: dict):
        return self.component(**self.resolve(params))

    def check(self, params: dict) -> None:
        """Raise ParameterError for resolved ``params`` the generator refuses (constructing
        the component checks them; nothing is elaborated)."""
        component = self.component(**params)
        component._MustUse__silence = True        # built to be checked, not elaborated


def _exact(block: str, name: str, value, is_array: bool):
    """``value`` as the generator takes it, or a ParameterError naming the parameter when it
    is not an integer (or an array of integers)."""
    if value is None or isinstance(value, str):
        return value
    if is_array or isinstance(value, (np.ndarray, list, tuple)):
        try:
            arr = np.asarray(value)
        except ValueError:
            raise ParameterError(f"{block} parameter {name} is not a rectangular array") from None
        ndim = 2 if name.endswith("weights") else 1       # matrices [in, out]; per-channel rows
        if is_array and arr.ndim != ndim:
            raise ParameterError(f"{block} parameter {name} must be a {ndim}-D array, got shape "
                                 f"{arr.shape}")
        if arr.dtype.kind in "iub":
            return arr.astype(np.int64)
        if arr.dtype.kind == "f":
            bad = arr[~(np.isfinite(arr) & (arr == np.round(arr)))]
            if bad.size == 0 and (arr.size == 0 or np.abs(arr).max() < 2 ** 62):
                return arr.astype(np.int64)
            shown = bad.reshape(-1)[0] if bad.size else np.abs(arr).max()
            raise ParameterError(f"{block} parameter {name} must hold integers, found {shown}")
        raise ParameterError(f"{block} parameter {name} must be an integer array, got {arr.dtype}")
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        raise ParameterError(f"{block} parameter {name} = {value} is not an integer")
    raise ParameterError(f"{block} parameter {name} has the wrong type ({type(value).__name__})")


# Demo weights are made from (inputs, outputs) before the generator checks anything else: a
# bound on their count keeps an in-range but huge shape from allocating gigabytes.
MAX_DEMO_WEIGHTS = 1 << 22


def _layer_complete(demo_weights: Callable[[np.random.Generator, dict, tuple], np.ndarray]):
    """Completion of a layer block: without weights, seeded random demo weights of
    (inputs, outputs); zero bias; lanes and inputs_per_cycle fully parallel by default."""
    def complete(params: dict) -> dict:
        seed = params.pop("seed", 0)
        shape = (params.pop("inputs", 32), params.pop("outputs", 16))
        if params.get("weights") is None:
            check_int("inputs", shape[0], 1, 65536)
            check_int("outputs", shape[1], 1, 65536)
            check_int("seed", seed, 0, 2 ** 32 - 1)
            if shape[0] * shape[1] > MAX_DEMO_WEIGHTS:
                raise ParameterError(f"inputs x outputs = {shape[0] * shape[1]:,} demo weights "
                                     f"exceed the limit of {MAX_DEMO_WEIGHTS:,}: pass weights")
            params["weights"] = demo_weights(np.random.default_rng(seed), params, shape)
        params["weights"] = np.asarray(params["weights"], dtype=np.int64)
        inputs, outputs = params["weights"].shape if params["weights"].ndim == 2 else shape
        if params.get("bias") is None:
            params["bias"] = np.zeros(outputs, np.int64)
        if params.get("lanes") is None:
            params["lanes"] = outputs
        if params.get("inputs_per_cycle") is None:
            params["inputs_per_cycle"] = inputs
        return params
    return complete


_if_layer_complete = _layer_complete(lambda rng, p, shape: rng.choice(
    [-1, 1] if p.get("weight_kind") == "binary" else [-1, 0, 1], size=shape))
_bwn_layer_complete = _if_layer_complete
_mac_layer_complete = _layer_complete(lambda rng, p, shape: rng.integers(
    -(1 << (check_int("weight_width", p["weight_width"], 2, 16) - 1)),
    1 << (p["weight_width"] - 1), size=shape))


def _layernorm_complete(params: dict) -> dict:
    check_int("channels", params["channels"], 2, 65536)
    check_int("gamma_width", params["gamma_width"], 2, 16)
    check_int("gamma_frac_bits", params["gamma_frac_bits"], 0, params["gamma_width"] - 1)
    if params.get("gamma") is None:
        params["gamma"] = np.full(params["channels"], 1 << params["gamma_frac_bits"], np.int64)
    if params.get("beta") is None:
        params["beta"] = np.zeros(params["channels"], np.int64)
    return params


def _bspn_complete(params: dict) -> dict:
    check_int("channels", params["channels"], 1, 65536)
    for name in ("gamma_shift", "beta"):
        if params.get(name) is None:
            params[name] = np.zeros(params["channels"], np.int64)
    return params


def _encoder_layer_complete(params: dict) -> dict:
    """Without weights: the demo layer of (hidden, heads, ffn, tokens, seed)."""
    from sorbet_hw.model.encoder_layer import demo_params
    shape = {k: params.pop(k) for k in ("hidden", "ffn", "seed") if k in params}
    if params.get("query_weights") is None:
        demo = demo_params(hidden=shape.get("hidden", 32), ffn=shape.get("ffn", 64),
                           heads=params.get("heads", 2), tokens=params.get("tokens", 4),
                           weight_kind=params.get("weight_kind", "binary"), seed=shape.get("seed", 0))
        params = {**demo, **{k: v for k, v in params.items() if v is not None}}
    parallelism = default_parallelism(*np.shape(params["intermediate_weights"]))
    for name in ("lanes", "inputs_per_cycle"):
        if params.get(name) is None:
            params[name] = parallelism
    return params


LAYER_SYNTH = {"lanes": 4, "inputs_per_cycle": 8}     # synth.workloads slices the query projection alike

BLOCKS = {
    "ptsoftmax": Block("ptsoftmax", PTSoftmax),
    "bspn": Block("bspn", BSPN, arrays=("gamma_shift", "beta"), complete=_bspn_complete),
    "if_layer": Block("if_layer", IFLayer, arrays=("weights", "bias"), complete=_if_layer_complete,
                      extra_params=("inputs", "outputs", "seed"), synth_params=LAYER_SYNTH),
    # The encoder layer's converters between levels and spike trains.
    "rate_encoder": Block("rate_encoder", RateEncoder),
    "spike_counter": Block("spike_counter", SpikeCounter),
    # The layer's attention (three input streams), PTsoftmax inside.
    "spiking_attention": Block("spiking_attention", SpikingAttention),
    "encoder_layer": Block("encoder_layer", EncoderLayer, complete=_encoder_layer_complete,
                           arrays=tuple(f"{name}_{part}" for name in LINEARS for part in ("weights", "bias"))
                           + tuple(f"{name}_{part}" for name in NORMS for part in ("gamma_shift", "beta")),
                           keywords=LAYER_PARAMS, extra_params=("hidden", "ffn", "seed"),
                           composite=True),
    # Conventional baselines of the blocks above, for synthesis and energy ratios.
    "softmax": Block("softmax", Softmax, baseline_of="ptsoftmax", multiplies=True, complete=lambda p: {
        **p, "exp_bits": p["out_frac_bits"] if p.get("exp_bits") is None else p["exp_bits"]}),
    "layernorm": Block("layernorm", LayerNorm, arrays=("gamma", "beta"), complete=_layernorm_complete,
                       baseline_of="bspn", multiplies=True),
    # The integer model's own layer built directly (1-bit weights, 4-bit levels, add and
    # subtract, one pass): the fair baseline; skip_zeros=1 makes it sparsity-aware.
    "bwn_layer": Block("bwn_layer", BWNLayer, arrays=("weights", "bias"), complete=_bwn_layer_complete,
                       extra_params=("inputs", "outputs", "seed"), baseline_of="if_layer",
                       synth_params=LAYER_SYNTH),
    "mac_layer": Block("mac_layer", MACLayer, arrays=("weights", "bias"), complete=_mac_layer_complete,
                       extra_params=("inputs", "outputs", "seed"), baseline_of="if_layer",
                       synth_params=LAYER_SYNTH, multiplies=True),
}


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
