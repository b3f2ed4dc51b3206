"""The command line and the vector file format."""
import subprocess
import sys

import numpy as np
import pytest

from sorbet_hw.model.vectors import Vectors, VectorFileError, load_vectors, save_vectors


def sorbet(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "sorbet_hw.cli", *args], capture_output=True,
                          text=True, cwd=cwd)


def test_generate_writes_the_same_bytes_twice(tmp_path):
    for out in ("a", "b"):
        r = sorbet("generate", "if_layer", "--param", "inputs=8", "--param", "outputs=4",
                   "--param", "weight_kind=ternary", "-o", str(tmp_path / out))
        assert r.returncode == 0, r.stderr
    assert (tmp_path / "a/if_layer.v").read_bytes() == (tmp_path / "b/if_layer.v").read_bytes()


@pytest.mark.parametrize("args, message, status", [
    (["generate", "bspn", "--param", "groups=5"], "groups = 5 must divide channels = 32", 2),
    (["generate", "bspn", "--param", "beta=1,x"], "comma-separated integers", 2),
    (["generate", "ptsoftmax", "--param", "rownumber"], "name=value", 2),
    (["generate", "if_layer", "--param", "weights=missing.npy"], "does not exist", 2),
    (["simulate", "ptsoftmax", "--vectors", "missing.npz"], "does not exist", 1),
    (["synth", "bspn", "--seeds", "1,x"], "comma-separated integers", 2),
    (["synth", "bspn", "--seeds", "2,2"], "distinct integers", 2),
])
def test_bad_input_is_one_clear_line(args, message, status, tmp_path):
    """Usage errors exit 2, failures (a missing file) 1; either way one line."""
    r = sorbet(*args, "-o" if args[0] == "generate" else "--build", str(tmp_path))
    assert r.returncode == status
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in r.stderr


def test_weights_from_a_npy_file(tmp_path):
    np.save(tmp_path / "w.npy", np.array([[1, -1], [-1, 1], [1, 1]]))
    r = sorbet("generate", "if_layer", "--param", f"weights={tmp_path / 'w.npy'}", "-o", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "input [2:0] i_stream__payload" in (tmp_path / "if_layer.v").read_text()


def test_vector_files_round_trip_and_reject_damage(tmp_path):
    v = Vectors("bspn", {"channels": 4, "beta": np.arange(4)}, np.ones((3, 4)), np.zeros((3, 4)))
    path = save_vectors(tmp_path / "v.npz", v)
    back = load_vectors(path)
    assert back.block == "bspn" and back.params["channels"] == 4
    assert np.array_equal(back.params["beta"], np.arange(4)) and back.inputs.shape == (3, 4)

    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(VectorFileError, match="not a vector file"):
        load_vectors(tmp_path / "junk.npz")
    np.savez(tmp_path / "nometa.npz", inputs=np.ones((1, 1)))
    with pytest.raises(VectorFileError, match="lacks the 'meta'"):
        load_vectors(tmp_path / "nometa.npz")
    import json
    meta = json.dumps({"format": "sorbet-hw-vectors", "version": 99, "block": "bspn"})
    np.savez(tmp_path / "v99.npz", meta=np.array(meta), inputs=np.ones((1, 1)), expected=np.ones((1, 1)))
    with pytest.raises(VectorFileError, match="version 99"):
        load_vectors(tmp_path / "v99.npz")
    meta = json.dumps({"format": "sorbet-hw-vectors", "version": 1, "block": "bspn"})
    np.savez(tmp_path / "short.npz", meta=np.array(meta), inputs=np.ones((2, 1), int), expected=np.ones((1, 1), int))
    with pytest.raises(VectorFileError, match="2 input vectors but 1"):
        load_vectors(tmp_path / "short.npz")
    assert not list(tmp_path.glob("*.partial"))
