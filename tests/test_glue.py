"""GLUE TSV reading and metrics (model/glue.py)."""
import numpy as np
import pytest

from pathlib import Path

from sorbet_hw.model import glue
from sorbet_hw.model.glue import (GlueDataMissing, GlueFormatError, TASKS, dev_tsv, metrics,
                                  read_tsv, train_tsv)

FIXTURES = Path(__file__).parent / "data" / "glue"     # a few hundred training lines
DEV_SIZES = {"sst2": 872, "mrpc": 408, "rte": 277, "stsb": 1500, "cola": 1043}


@pytest.mark.parametrize("task", list(TASKS))
def test_reads_every_shipped_dev_set(task):
    path = dev_tsv(task)
    # Inside the installed package, not in a folder beside the checkout.
    assert path.is_relative_to(Path(glue.__file__).parent) and path.is_file()
    ex = read_tsv(task, path)
    assert len(ex) == DEV_SIZES[task]
    assert (ex.text_b is None) == (TASKS[task].text_b is None)
    if task == "stsb":
        assert ex.labels.min() >= 0 and ex.labels.max() <= 5
    else:
        assert set(np.unique(ex.labels)) == {0, 1}


def test_malformed_rows_name_file_and_line(tmp_path):
    bad = tmp_path / "dev.tsv"
    bad.write_text("sentence\tlabel\ngood film\t1\nno label here\n")
    with pytest.raises(GlueFormatError, match=r"dev.tsv:3: expected 2 tab-separated fields"):
        read_tsv("sst2", bad)
    bad.write_text("sentence\tlabel\ngood film\t7\n")
    with pytest.raises(GlueFormatError, match=r"dev.tsv:2: label '7'"):
        read_tsv("sst2", bad)
    with pytest.raises(GlueFormatError, match="unknown task"):
        read_tsv("qqq", bad)


def test_metrics_on_known_values():
    assert metrics("sst2", [1, 0, 1, 1], [1, 0, 0, 1])["accuracy"] == 75.0
    m = metrics("mrpc", [1, 1, 0, 0], [1, 0, 1, 0])
    assert m["f1"] == pytest.approx(50.0)
    assert metrics("cola", [1, 0, 1, 0], [1, 0, 1, 0])["matthews"] == pytest.approx(100.0)
    assert metrics("cola", [1, 1, 1, 1], [1, 0, 1, 0])["matthews"] == 0.0
    s = metrics("stsb", [1.0, 2.0, 3.0, 4.0], [1.0, 4.0, 9.0, 16.0])
    assert s["spearman"] == pytest.approx(100.0) and 95 < s["pearson"] < 100


def test_training_data_is_the_users_to_give(monkeypatch, tmp_path):
    monkeypatch.delenv("SORBET_GLUE", raising=False)
    with pytest.raises(GlueDataMissing, match=r"ships the dev sets only.*--data DIR.*SORBET_GLUE"):
        train_tsv("sst2")
    assert len(read_tsv("sst2", train_tsv("sst2", FIXTURES))) == 300
    monkeypatch.setenv("SORBET_GLUE", str(FIXTURES))
    assert train_tsv("mrpc") == FIXTURES / "MRPC" / "train.tsv"
    with pytest.raises(GlueDataMissing, match=r"RTE/train.tsv does not exist: \$SORBET_GLUE"):
        train_tsv("rte")
    with pytest.raises(GlueDataMissing, match=r"SST-2/train.tsv does not exist: --data"):
        train_tsv("sst2", tmp_path)
