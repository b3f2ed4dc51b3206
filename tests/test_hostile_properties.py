"""Hypothesis against the input boundaries: generated configs, parameter sets and vector
files corrupted byte by byte either work or fail with the tool's own one-line error, never
with another exception (which the CLI would report as a bug)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sorbet_hw.hw.blocks import BLOCKS, SINGLE_BLOCKS, get_block
from sorbet_hw.model.params import ParameterError
from sorbet_hw.model.vectors import VectorFileError, load_vectors, save_vectors
from sorbet_hw.sim.vectors import check_vectors
from sorbet_hw.flow import SECTIONS, load_config

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.one_of(st.integers(-(1 << 40), 1 << 40), st.integers(-3, 40), st.booleans(),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8))
values = st.one_of(scalars, st.lists(scalars, max_size=4))


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return {float("inf"): "inf", float("-inf"): "-inf"}.get(v, "nan" if v != v else repr(v))
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, str):
        return json.dumps(v)
    return str(v)


section_names = st.one_of(st.sampled_from(list(SECTIONS)), st.text("abcxyz_", min_size=1, max_size=6))


@st.composite
def configs(draw) -> str:
    lines = []
    for section in draw(st.lists(section_names, max_size=4, unique=True)):
        lines.append(f"[{section}]")
        known = list(SECTIONS.get(section, {})) or ["x"]
        keys = draw(st.lists(st.one_of(st.sampled_from(known), st.text("abkz_", min_size=1, max_size=5)),
                             max_size=4, unique=True))
        lines += [f"{k} = {toml_value(draw(values))}" for k in keys]
    return "\n".join(lines) + "\n"


@SETTINGS
@given(text=configs())
def test_generated_configs_load_or_fail_with_one_error(tmp_path, text):
    path = tmp_path / "c.toml"
    path.write_text(text)
    try:
        config = load_config(path)
    except ParameterError as e:
        assert "\n" not in str(e).strip() or "TOML" in str(e)
        return
    assert set(config) == set(SECTIONS)


@SETTINGS
@given(data=st.binary(max_size=200), flips=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)),
                                                      max_size=4))
def test_config_bytes_mutated_load_or_fail_with_one_error(tmp_path, data, flips):
    base = bytearray(b'[simulate]\ncount = 50\nsimulators = ["icarus"]\n[energy]\nmethod = "ops"\n' + data)
    for position, byte in flips:
        base[position % len(base)] = byte
    path = tmp_path / "c.toml"
    path.write_bytes(bytes(base))
    try:
        load_config(path)
    except ParameterError:
        pass


@st.composite
def parameter_sets(draw):
    name = draw(st.sampled_from(SINGLE_BLOCKS))
    block = BLOCKS[name]
    known = list(block.defaults()) + list(block.extra_params)
    keys = draw(st.lists(st.one_of(st.sampled_from(known), st.just("bogus")), max_size=4, unique=True))
    params = {}
    for key in keys:
        if key in block.arrays:
            params[key] = draw(st.one_of(
                st.lists(st.integers(-3, 3), min_size=0, max_size=40).map(np.array),
                st.lists(st.one_of(st.floats(-3, 3), st.just(float("nan"))), min_size=1, max_size=40).map(np.array),
                st.lists(st.lists(st.integers(-1, 1), min_size=2, max_size=2), min_size=1,
                         max_size=8).map(np.array)))
        else:
            params[key] = draw(st.one_of(st.integers(-5, 70000), st.integers(-(1 << 62), 1 << 62),
                                         st.floats(allow_nan=True), st.text(max_size=6),
                                         st.sampled_from(["up", "nearest", "binary", "ternary"])))
    return name, params


@SETTINGS
@given(case=parameter_sets())
def test_generated_parameter_sets_resolve_or_fail_with_one_error(case):
    """What `generate` and `simulate` do with parameters before any elaboration (the
    composite encoder layer, whose demo builds a torch model, is left out for time)."""
    name, params = case
    block = get_block(name)
    try:
        block.check(block.resolve(params))
    except ParameterError as e:
        assert str(e) and "\n" not in str(e)


@pytest.fixture(scope="module")
def vector_file(tmp_path_factory):
    import sorbet_hw.sim.bspn as bench
    params = get_block("bspn").resolve({"channels": 8, "groups": 2})
    path = tmp_path_factory.mktemp("vectors") / "v.npz"
    save_vectors(path, bench.make_vectors(params, 6, 3))
    return path


@SETTINGS
@given(flips=st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1, max_size=3),
       cut=st.one_of(st.none(), st.integers(0, 1 << 16)))
def test_vector_files_corrupted_byte_by_byte_are_refused_or_intact(tmp_path, vector_file, flips, cut):
    original = load_vectors(vector_file)
    data = bytearray(vector_file.read_bytes())
    for position, byte in flips:
        data[position % len(data)] = byte
    if cut is not None:
        data = data[:cut % len(data)]
    path = tmp_path / "corrupt.npz"
    path.write_bytes(bytes(data))
    try:
        damaged = check_vectors(load_vectors(path), path, "bspn")
    except VectorFileError as e:
        assert str(path) in str(e)
        return
    # Accepted only if what the simulation would see is exactly the original (a flip in
    # the zip's slack, say): the CRCs guard the arrays.
    assert np.array_equal(damaged.inputs, original.inputs)
    assert np.array_equal(damaged.expected, original.expected)


@SETTINGS
@given(case=parameter_sets(), inputs=st.lists(st.lists(st.integers(-300, 300), min_size=1, max_size=20),
                                              min_size=1, max_size=3),
       block=st.sampled_from(SINGLE_BLOCKS))
def test_vector_files_with_generated_contents_are_checked_not_simulated(tmp_path, case, inputs, block):
    """A vector file whose parameters and inputs are anything: refused as a malformed file
    before any simulation, or accepted only when consistent with its block."""
    from sorbet_hw.model.vectors import Vectors
    _, params = case
    width = max(len(row) for row in inputs)
    arr = np.array([row + [0] * (width - len(row)) for row in inputs], dtype=np.int64)
    path = tmp_path / "v.npz"
    try:
        save_vectors(path, Vectors(block, params, arr, arr))
    except (TypeError, ValueError, OverflowError):
        return                            # not even writable as a vector file: nothing to test
    try:
        checked = check_vectors(load_vectors(path), path)
    except VectorFileError as e:
        assert str(path) in str(e) and "\n" not in str(e)
        return
    assert checked.block == block


# -- sweep files and worker counts ---------------------------------------------------------------

axis = st.lists(st.integers(1, 64), min_size=0, max_size=40)


@SETTINGS
@given(grid=st.dictionaries(st.sampled_from(["row_length", "score_width", "frac_bits",
                                             "out_frac_bits", "bogus"]), axis, max_size=4),
       max_points=st.one_of(st.none(), st.integers(-5, 20_000), st.integers(10 ** 6, 10 ** 12)),
       points=st.one_of(st.none(), st.lists(st.fixed_dictionaries({"row_length": st.integers(1, 64)}),
                                             max_size=30)),
       vectors=st.one_of(st.integers(-10, 200_000), st.just("none.npz")))
def test_generated_sweep_files_are_counted_and_checked_before_anything_is_built(
        tmp_path_factory, grid, max_points, points, vectors):
    """A generated sweep file is accepted with exactly the points its grid or list names, all
    within max_points and the hard limit, or refused with the tool's one-line error (which
    names the count when the count is the problem); never another exception."""
    import math
    from sorbet_hw.files import FileFormatError
    from sorbet_hw.sweep import POINTS_LIMIT, load_sweep
    lines = ['block = "ptsoftmax"']
    if max_points is not None:
        lines.append(f"max_points = {max_points}")
    if points is not None:
        lines += [f"[[points]]\nrow_length = {p['row_length']}" for p in points]
    lines.append("[grid]" if grid else "")
    lines += [f"{k} = {v}" for k, v in grid.items()]
    lines += ["[flow]", 'targets = ["generic"]', f"vectors = {json.dumps(vectors)}"]
    path = tmp_path_factory.mktemp("sweep") / "s.toml"
    path.write_text("\n".join(lines) + "\n")
    limit = 256 if max_points is None else max_points
    count = len(points) if points is not None else (math.prod(len(v) for v in grid.values()) if grid else 0)
    try:
        spec = load_sweep(path)
    except (ParameterError, FileFormatError) as e:
        message = str(e)
        assert "\n" not in message and str(path) in message
        if points is None and grid and count > min(limit, POINTS_LIMIT) and 1 <= limit <= POINTS_LIMIT:
            assert f"{count:,} points" in message
        return
    assert points is None or not grid                 # both: refused
    assert len(spec["points"]) == count and 1 <= count <= min(limit, POINTS_LIMIT)
    assert 1 <= max_points if max_points is not None else True


@SETTINGS
@given(workers=st.one_of(st.none(), st.integers(-3, 200)), oversubscribe=st.booleans())
def test_worker_counts_are_capped_or_refused(workers, oversubscribe, capsys):
    import os
    from sorbet_hw.sweep import WORKERS_LIMIT, check_workers
    cores = os.cpu_count() or 1
    try:
        got = check_workers(workers, oversubscribe)
    except ParameterError as e:
        assert workers is not None and (workers < 1 or workers > WORKERS_LIMIT), e
        return
    said = capsys.readouterr().err
    if workers is None:
        assert got is None and not said
    elif workers > cores and not oversubscribe:
        assert got == cores and said.count("\n") == 1 and f"capped at this machine's {cores} cores" in said
    else:
        assert got == workers and 1 <= got <= WORKERS_LIMIT and not said
