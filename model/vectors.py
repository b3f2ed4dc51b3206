"""Test-vector files: the versioned exchange format between model/ (which exports them),
sim/ (whose benches replay them) and synth/ (which measures energy on them).

A vector file is an ``.npz`` holding

* ``meta``: a JSON string ``{"format": "sorbet-hw-vectors", "version": 1, "block": NAME,
  "params": {scalar generator parameters}, "source": "...", "note": "..."}``;
* ``inputs`` and ``expected``: int64 arrays whose first axis counts vectors (rows for
  ptsoftmax, tokens for bspn, windows for if_layer); the bench of each block documents the
  other axes;
* ``param.<name>``: array-valued generator parameters (weights, bias, gamma_shift, beta).

The generator parameters travel with the vectors, so replaying a file always simulates the
hardware the vectors were made for.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FORMAT = "sorbet-hw-vectors"
VERSION = 1


class VectorFileError(ValueError):
    """A vector file is missing, malformed, or of another version."""


@dataclass
class Vectors:
    block: str
    params: dict
    inputs: np.ndarray
    expected: np.ndarray
    source: str = "random"
    note: str = ""
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.inputs)


def save_vectors(path: Path, vectors: Vectors) -> Path:
    """Write ``vectors`` to ``path`` atomically (a crash leaves no half-written file)."""
    from sorbet_hw.files import atomic_path
    path = Path(path)
    scalars = {k: v for k, v in vectors.params.items() if not _is_array(v)}
    arrays = {f"param.{k}": _compact(_integers(k, v)) for k, v in vectors.params.items() if _is_array(v)}
    meta = {"format": FORMAT, "version": VERSION, "block": vectors.block, "params": scalars,
            "source": vectors.source, "note": vectors.note, "extra": vectors.extra}
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        _savez(f, {"meta": np.array(json.dumps(meta, sort_keys=True)),
                   "inputs": _compact(np.asarray(vectors.inputs, dtype=np.int64)),
                   "expected": _compact(np.asarray(vectors.expected, dtype=np.int64)), **arrays})
    return path


def _savez(f, arrays: dict) -> None:
    """``np.savez_compressed`` at zlib's fastest level: an export writes hundreds of weight
    arrays, and the default level spent most of its time compressing (same .npz format)."""
    import zipfile
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, arr in arrays.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as out:
                np.lib.format.write_array(out, np.asanyarray(arr), allow_pickle=False)


def load_vectors(path: Path) -> Vectors:
    """Read a vector file; anything malformed is a :class:`VectorFileError` naming it. Array
    headers are checked before any array is loaded (:func:`sorbet_hw.files.read_npz`)."""
    from sorbet_hw.files import FileFormatError, read_npz
    path = Path(path)
    if not path.is_file():
        raise VectorFileError(f"vector file {path} does not exist")
    try:
        contents = read_npz(path)
    except FileFormatError as e:
        raise VectorFileError(f"{path} is not a vector file ({e.reason})") from None
    for key in ("meta", "inputs", "expected"):
        if key not in contents:
            raise VectorFileError(f"{path} lacks the '{key}' entry of a {FORMAT} file")
    if contents["meta"].dtype.kind != "U" or contents["meta"].ndim != 0:
        raise VectorFileError(f"{path}: its meta entry is not a JSON string")
    try:
        meta = json.loads(str(contents["meta"]))
    except json.JSONDecodeError as e:
        raise VectorFileError(f"{path}: its meta entry is not JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise VectorFileError(f"{path} is not a {FORMAT} file (format = "
                              f"{meta.get('format') if isinstance(meta, dict) else meta!r})")
    if meta.get("version") != VERSION:
        raise VectorFileError(f"{path} has format version {meta.get('version')}; this sorbet-hw "
                              f"reads version {VERSION}: regenerate the vectors")
    if not isinstance(meta.get("block"), str) or not isinstance(meta.get("params", {}), dict):
        raise VectorFileError(f"{path}: its meta entry lacks a block name or a params table")
    inputs, expected = contents["inputs"], contents["expected"]
    for name, arr in (("inputs", inputs), ("expected", expected)):
        if arr.dtype.kind not in "iu" or arr.ndim < 2:
            raise VectorFileError(f"{path}: '{name}' must be an integer array with a vector axis "
                                  f"first, got {arr.dtype} of shape {arr.shape}")
    if len(inputs) != len(expected) or len(inputs) == 0:
        raise VectorFileError(f"{path}: {len(inputs)} input vectors but {len(expected)} expected ones")
    params = dict(meta.get("params", {}))
    for key, arr in contents.items():
        if key.startswith("param."):
            # Integers widened back to int64 (files store the narrowest type); anything else
            # is kept, so that the parameter check refuses it rather than truncating it.
            params[key[len("param."):]] = arr.astype(np.int64) if arr.dtype.kind in "iub" else arr
    extra = meta.get("extra", {})
    return Vectors(block=meta["block"], params=params, inputs=inputs.astype(np.int64),
                   expected=expected.astype(np.int64), source=str(meta.get("source", "")),
                   note=str(meta.get("note", "")), extra=extra if isinstance(extra, dict) else {})


def _integers(name: str, value) -> np.ndarray:
    """An array parameter as int64, refusing (never truncating) values that are not integers."""
    from sorbet_hw.model.params import ParameterError
    arr = np.asarray(value)
    if arr.dtype.kind in "iub":
        return arr.astype(np.int64)
    if arr.dtype.kind == "f" and np.isfinite(arr).all() and (arr == np.round(arr)).all() \
            and (arr.size == 0 or np.abs(arr).max() < 2 ** 62):
        return arr.astype(np.int64)
    raise ParameterError(f"parameter {name} must hold integers to be stored in a vector file")


def _compact(arr: np.ndarray) -> np.ndarray:
    """The narrowest signed integer type holding ``arr``: +-1 weights and spike trains as
    int8 compress about 8x faster than as int64 (readers widen every array to int64)."""
    for dtype in (np.int8, np.int16, np.int32):
        info = np.iinfo(dtype)
        if arr.size == 0 or (arr.min() >= info.min and arr.max() <= info.max):
            return arr.astype(dtype)
    return arr


def _is_array(value) -> bool:
    return isinstance(value, (np.ndarray, list, tuple))
