"""Checks of a vector file against the block it names, before any simulation
(the file format itself: :mod:`model.vectors`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sorbet_hw.model.vectors import VectorFileError, Vectors


def check_vectors(vectors: Vectors, path: Path | str, block: str | None = None) -> Vectors:
    """Check a loaded vector file against its block before any simulation: the block named
    (``block``, if given), parameters the generator accepts, inputs of the shape and range
    the hardware takes, and expected outputs that are the reference's for those inputs. A
    defect is a :class:`VectorFileError`, so a malformed file is never reported as a
    hardware mismatch. Returns the vectors with their parameters resolved."""
    from sorbet_hw.hw.blocks import BLOCKS, get_block
    from sorbet_hw.model.params import ParameterError
    if vectors.block not in BLOCKS:
        raise VectorFileError(f"{path} holds vectors of {vectors.block!r}, which is no block of "
                              f"this sorbet-hw")
    if block is not None and vectors.block != block:
        raise VectorFileError(f"{path} holds {vectors.block} vectors, not {block} ones: run "
                              f"`sorbet-hw simulate {vectors.block} --vectors {path}`")
    declared = get_block(vectors.block)
    try:
        params = declared.resolve(dict(vectors.params))
        checked = declared.check(params)
    except ParameterError as e:
        raise VectorFileError(f"{path}: its {vectors.block} parameters are invalid ({e})") from None
    shape, lo, hi = declared.input_spec(checked)
    inputs = vectors.inputs
    if inputs.shape[1:] != tuple(shape):
        raise VectorFileError(f"{path}: inputs have shape {inputs.shape[1:]} per vector, the "
                              f"{vectors.block} it describes takes {tuple(shape)}")
    if inputs.size and (inputs.min() < lo or inputs.max() > hi):
        bad = np.argwhere((inputs < lo) | (inputs > hi))[0]
        raise VectorFileError(f"{path}: input {inputs[tuple(bad)]} at {tuple(int(i) for i in bad)} "
                              f"is out of the block's input range {lo}..{hi}")
    try:
        reference = np.asarray(declared.run_reference(checked, inputs))
    except (ParameterError, ValueError) as e:
        raise VectorFileError(f"{path}: the reference rejects its inputs ({e})") from None
    if vectors.expected.shape != reference.shape:
        raise VectorFileError(f"{path}: expected outputs have shape {vectors.expected.shape}, "
                              f"the reference gives {reference.shape}")
    wrong = np.flatnonzero((vectors.expected != reference).reshape(len(reference), -1).any(axis=1))
    if wrong.size:
        raise VectorFileError(f"{path}: the expected outputs of {wrong.size} vector(s) (first: "
                              f"vector {int(wrong[0])}) differ from the reference model's: the "
                              f"file is damaged or from another model version; re-export it")
    return Vectors(vectors.block, params, inputs, vectors.expected, vectors.source, vectors.note,
                   vectors.extra)
