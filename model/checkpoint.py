"""Packed checkpoints of the integer student: bits packed, one `.npz` plus a JSON sidecar.

Layout of ``NAME.npz`` (format ``sorbet-hw-student``, version 1):

- ``manifest``: UTF-8 JSON (as uint8) with the format, version, task, configs, every exponent
  and threshold shift, array shapes, and the metrics the model reached;
- ``word``: 4-bit embedding levels packed two per byte (low nibble first, level + 8), or int8
  for other widths; ``position``, ``token_type``: int8 levels;
- ``embedding_norm.*``, ``layers.L.NORM.*``: BSPN ``gamma_shift`` (int8) and ``beta`` (int16);
- ``layers.L.LINEAR.signs``: weight signs as bits (1 = +1), row-major [in, out]; ternary
  layers add ``layers.L.LINEAR.nonzero``; ``layers.L.LINEAR.bias``: int32;
- ``head.weight``, ``head.bias``: float32.

``NAME.json`` repeats the manifest for readers; loading uses the one inside the `.npz`.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sorbet_hw.model.integer_model import LINEARS, NORMS, IntegerStudent, Layer, Linear, Norm
from sorbet_hw.model.params import (ModelFileError, ParameterError, check_choice, check_divides,
                          check_int)

FORMAT, VERSION = "sorbet-hw-student", 1
SHIPPED = Path(__file__).resolve().parent / "checkpoints"


def shipped_checkpoint(task: str) -> Path:
    return SHIPPED / f"{task}.npz"


def _pack_levels(levels: np.ndarray, bits: int) -> np.ndarray:
    if bits != 4:
        return levels.astype(np.int8)
    u = (levels.astype(np.int16) + 8).astype(np.uint8).reshape(-1)
    if u.size % 2:
        u = np.append(u, np.uint8(8))
    return (u[0::2] | (u[1::2] << 4)).astype(np.uint8)


def _unpack_levels(packed: np.ndarray, bits: int, shape: tuple) -> np.ndarray:
    if bits != 4:
        return packed.astype(np.int8).reshape(shape)
    u = np.empty(packed.size * 2, np.uint8)
    u[0::2], u[1::2] = packed & 15, packed >> 4
    return (u[:int(np.prod(shape))].astype(np.int16) - 8).astype(np.int8).reshape(shape)


def save_packed(model: IntegerStudent, path: Path, *, task: str, metrics: dict | None = None) -> Path:
    """Write ``path`` (.npz) and its JSON sidecar; files appear only when complete."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = {
        "word": _pack_levels(model.word, model.config["word_bits"]),
        "position": model.position.astype(np.int8 if model.config["position_bits"] <= 8 else np.int16),
        "token_type": model.token_type.astype(np.int8 if model.config["position_bits"] <= 8 else np.int16),
        "head.weight": model.head_weight.astype(np.float32),
        "head.bias": model.head_bias.astype(np.float32),
    }
    norms = {"embedding_norm": model.embedding_norm.in_width}
    layers = []
    for i, layer in enumerate(model.layers):
        entry = {"input_exponent": layer.input_exponent,
                 "ffn_input_exponent": layer.ffn_input_exponent,
                 "context_exponent": layer.context_exponent, "linears": {}, "norms": {}}
        for name in LINEARS:
            lin = layer.linears[name]
            arrays[f"layers.{i}.{name}.signs"] = np.packbits(lin.weights.reshape(-1) > 0)
            if model.config["weight_kind"] == "ternary":
                arrays[f"layers.{i}.{name}.nonzero"] = np.packbits(lin.weights.reshape(-1) != 0)
            arrays[f"layers.{i}.{name}.bias"] = lin.bias.astype(np.int32)
            entry["linears"][name] = {"shape": list(lin.weights.shape),
                                      "threshold_shift": lin.threshold_shift, "exponent": lin.exponent}
        for name in NORMS:
            entry["norms"][name] = {"in_width": layer.norms[name].in_width}
            _put_norm(arrays, f"layers.{i}.{name}", layer.norms[name])
        layers.append(entry)
    _put_norm(arrays, "embedding_norm", model.embedding_norm)
    manifest = {"format": FORMAT, "version": VERSION, "task": task, "num_labels": model.num_labels,
                "config": model.config, "bert": model.bert,
                "embedding_exponents": list(model.embedding_exponents),
                "embedding_shapes": {"word": list(model.word.shape),
                                     "position": list(model.position.shape),
                                     "token_type": list(model.token_type.shape)},
                "norm_in_width": norms, "layers": layers, "metrics": metrics or {},
                **{k: v for k, v in model.meta.items() if k not in ("metrics",)}}
    arrays["manifest"] = np.frombuffer(json.dumps(manifest).encode(), np.uint8)
    from sorbet_hw.files import atomic_path, atomic_write
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    atomic_write(path.with_suffix(".json"),
                 json.dumps({k: v for k, v in manifest.items() if k != "layers"}, indent=2) + "\n")
    return path


def _put_norm(arrays: dict, prefix: str, norm: Norm) -> None:
    arrays[f"{prefix}.gamma_shift"] = norm.gamma_shift.astype(np.int8)
    arrays[f"{prefix}.beta"] = norm.beta.astype(np.int16)


def load_packed(path: Path, task: str | None = None) -> IntegerStudent:
    """Read a packed checkpoint; any defect is a :class:`ModelFileError` naming it."""
    path = Path(path)
    if path.is_dir():
        raise ModelFileError(f"checkpoint {path} is a directory: name the packed .npz file")
    if not path.is_file():
        raise ModelFileError(f"checkpoint {path} does not exist (the shipped ones are in {SHIPPED}; "
                             f"`sorbet-hw distill` makes new ones)")
    from sorbet_hw.files import FileFormatError, read_npz
    try:
        arrays = read_npz(path)
    except FileFormatError as e:
        raise ModelFileError(f"{path} is not a packed checkpoint ({e.reason})") from None
    if "manifest" not in arrays:
        raise ModelFileError(f"{path} has no manifest: not a {FORMAT} checkpoint")
    if arrays["manifest"].dtype != np.uint8:
        raise ModelFileError(f"{path}: its manifest is not UTF-8 JSON bytes")
    try:
        m = json.loads(arrays["manifest"].tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError(f"{path}: manifest is not JSON ({e})") from None
    if not isinstance(m, dict):
        raise ModelFileError(f"{path}: manifest is not a JSON object")
    if m.get("format") != FORMAT or m.get("version") != VERSION:
        raise ModelFileError(f"{path}: format {m.get('format')!r} version {m.get('version')!r}, "
                             f"expected {FORMAT!r} version {VERSION}")
    if task is not None and m.get("task") != task:
        raise ModelFileError(f"{path} is a {m.get('task')!r} model, not {task!r}: pass --task "
                             f"{m.get('task')} or another --checkpoint")
    try:
        _check_manifest(m)
        _check_dtypes(arrays)
        model = _build(m, arrays)
        _check_values(model)
        return model
    except ParameterError as e:
        raise ModelFileError(f"{path}: value out of range ({e}): the file is damaged or was "
                             f"not written by sorbet-hw") from None
    except (KeyError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise ModelFileError(f"{path}: damaged or inconsistent checkpoint ({type(e).__name__}: {e})") from None


# Everything a checkpoint configures, with the ranges the model and the hardware accept:
# refused on load, so that no later stage meets a 1000-bit shift or a float64 head.
_CONFIG_RANGES = {"act_bits": (2, 8), "time_steps": (3, 1024), "norm_groups": (1, 4096),
                  "norm_frac_bits": (0, 8), "norm_out_width": (4, 16), "norm_in_width": (2, 32),
                  "softmax_out_frac_bits": (2, 16), "word_bits": (2, 8), "position_bits": (2, 12)}
_BERT_RANGES = {"vocab_size": (1, 1 << 20), "hidden_size": (1, 4096), "num_hidden_layers": (1, 48),
                "num_attention_heads": (1, 4096), "intermediate_size": (1, 16384),
                "max_position_embeddings": (1, 4096), "type_vocab_size": (1, 16)}
_DTYPES = {"word": ("uint8", "int8"), "position": ("int8", "int16"), "token_type": ("int8", "int16"),
           "head.weight": ("float32",), "head.bias": ("float32",), "manifest": ("uint8",),
           ".signs": ("uint8",), ".nonzero": ("uint8",), ".bias": ("int32",),
           ".gamma_shift": ("int8",), ".beta": ("int16",)}


def _check_manifest(m: dict) -> None:
    cfg, bert = m["config"], m["bert"]
    for name, (lo, hi) in _CONFIG_RANGES.items():
        check_int(f"config.{name}", cfg[name], lo, hi)
    check_int("config.time_steps", cfg["time_steps"], (1 << cfg["act_bits"]) - 1, 1024)
    check_choice("config.weight_kind", cfg["weight_kind"], ("binary", "ternary"))
    check_choice("config.softmax_rounding", cfg["softmax_rounding"], ("up", "nearest"))
    for name, (lo, hi) in _BERT_RANGES.items():
        check_int(f"bert.{name}", bert[name], lo, hi)
    check_divides("bert.num_attention_heads", bert["num_attention_heads"], "bert.hidden_size",
                  bert["hidden_size"])
    check_divides("config.norm_groups", cfg["norm_groups"], "bert.hidden_size", bert["hidden_size"])
    check_int("num_labels", m["num_labels"], 1, 16)
    for e in m["embedding_exponents"]:
        check_int("embedding_exponents", e, -32, 32)
    if len(m["embedding_exponents"]) != 3:
        raise ValueError("embedding_exponents must hold 3 integers")
    for name, width in m["norm_in_width"].items():
        check_int(f"norm_in_width.{name}", width, 2, 32)
    for i, entry in enumerate(m["layers"]):
        for name in ("input_exponent", "ffn_input_exponent", "context_exponent"):
            check_int(f"layers.{i}.{name}", entry[name], -32, 32)
        for name, info in entry["linears"].items():
            check_int(f"layers.{i}.{name}.threshold_shift", info["threshold_shift"], 0, 24)
            check_int(f"layers.{i}.{name}.exponent", info["exponent"], -32, 32)
            for n in info["shape"]:
                check_int(f"layers.{i}.{name}.shape", n, 1, 16384)
        for name, info in entry["norms"].items():
            check_int(f"layers.{i}.{name}.in_width", info["in_width"], 2, 32)


def _check_dtypes(arrays: dict) -> None:
    for name, arr in arrays.items():
        allowed = _DTYPES.get(name) or next(
            (v for k, v in _DTYPES.items() if k.startswith(".") and name.endswith(k)), None)
        if allowed is None:
            raise ValueError(f"unexpected array {name!r}")
        if arr.dtype.name not in allowed:
            raise ValueError(f"array {name!r} is {arr.dtype.name}, expected {' or '.join(allowed)}")


def _check_values(model: IntegerStudent) -> None:
    from sorbet_hw.model.bspn import GAMMA_SHIFT_LIMIT
    from sorbet_hw.model.params import signed_range
    lo, hi = signed_range(model.config["norm_out_width"])
    norms = [model.embedding_norm] + [n for layer in model.layers for n in layer.norms.values()]
    for norm in norms:
        if np.abs(norm.gamma_shift).max(initial=0) > GAMMA_SHIFT_LIMIT:
            raise ParameterError(f"a BSPN gamma_shift exceeds +-{GAMMA_SHIFT_LIMIT}")
        if norm.beta.size and (norm.beta.min() < lo or norm.beta.max() > hi):
            raise ParameterError(f"a BSPN beta lies outside {lo}..{hi}")
    for name in ("head_weight", "head_bias"):
        if not np.isfinite(getattr(model, name)).all():
            raise ParameterError(f"the classifier {name.replace('_', ' ')} holds NaN or infinity")


def _get(arrays: dict, name: str, size: int | None = None) -> np.ndarray:
    if name not in arrays:
        raise KeyError(f"array {name!r} is missing")
    a = arrays[name]
    if size is not None and a.size != size:
        raise ValueError(f"array {name!r} has {a.size} elements, expected {size}")
    return a


def _norm(arrays: dict, prefix: str, channels: int, in_width: int) -> Norm:
    return Norm(_get(arrays, f"{prefix}.gamma_shift", channels).astype(np.int64),
                _get(arrays, f"{prefix}.beta", channels).astype(np.int64), int(in_width))


def _build(m: dict, arrays: dict) -> IntegerStudent:
    cfg, bert = m["config"], m["bert"]
    H = bert["hidden_size"]
    shapes = {k: tuple(v) for k, v in m["embedding_shapes"].items()}
    if shapes["word"] != (bert["vocab_size"], H):
        raise ValueError(f"word embeddings {shapes['word']} do not match the config")
    word_size = int(np.prod(shapes["word"]))
    word = _get(arrays, "word", (word_size + 1) // 2 if cfg["word_bits"] == 4 else word_size)
    layers = []
    if len(m["layers"]) != bert["num_hidden_layers"]:
        raise ValueError(f"{len(m['layers'])} layers stored, the config has {bert['num_hidden_layers']}")
    for i, entry in enumerate(m["layers"]):
        linears = {}
        for name in LINEARS:
            info = entry["linears"][name]
            n_in, n_out = info["shape"]
            signs = np.unpackbits(_get(arrays, f"layers.{i}.{name}.signs"))[:n_in * n_out]
            if signs.size != n_in * n_out:
                raise ValueError(f"layers.{i}.{name}.signs holds too few bits for {n_in}x{n_out}")
            w = np.where(signs > 0, 1, -1).astype(np.int8)
            if cfg["weight_kind"] == "ternary":
                w = w * np.unpackbits(_get(arrays, f"layers.{i}.{name}.nonzero"))[:n_in * n_out].astype(np.int8)
            linears[name] = Linear(w.reshape(n_in, n_out),
                                   _get(arrays, f"layers.{i}.{name}.bias", n_out).astype(np.int64),
                                   int(info["threshold_shift"]), int(info["exponent"]))
        norms = {name: _norm(arrays, f"layers.{i}.{name}", H, entry["norms"][name]["in_width"])
                 for name in NORMS}
        layers.append(Layer(int(entry["input_exponent"]), int(entry["ffn_input_exponent"]),
                            int(entry["context_exponent"]), linears, norms))
    return IntegerStudent(
        config=cfg, bert=bert, num_labels=int(m["num_labels"]),
        word=_unpack_levels(word, cfg["word_bits"], shapes["word"]),
        position=_get(arrays, "position", int(np.prod(shapes["position"]))).reshape(shapes["position"]),
        token_type=_get(arrays, "token_type", int(np.prod(shapes["token_type"]))).reshape(shapes["token_type"]),
        embedding_exponents=tuple(int(e) for e in m["embedding_exponents"]),
        embedding_norm=_norm(arrays, "embedding_norm", H, m["norm_in_width"]["embedding_norm"]),
        layers=layers,
        head_weight=_get(arrays, "head.weight", m["num_labels"] * H).reshape(m["num_labels"], H),
        head_bias=_get(arrays, "head.bias", m["num_labels"]),
        meta={"task": m["task"], "metrics": m.get("metrics", {}),
              **{k: m[k] for k in ("max_length", "teacher", "training") if k in m}})
