"""GLUE TSV reading and metrics (model/glue.py)."""
import numpy as np
import pytest

from sorbet_hw.model.glue import GlueFormatError, TASKS, glue_dir, metrics, read_tsv
DEV_SIZES = {"sst2": 872, "mrpc": 408, "rte": 277, "stsb": 1500, "cola": 1043}


@pytest.mark.parametrize("task", list(TASKS))
def test_reads_every_shipped_dev_set(task):
    path = glue_dir() / TASKS[task].folder / "dev.tsv"
    assert path.is_file(), f"GLUE data missing at {path}: it ships in ../shared/data/glue (or set SORBET_GLUE)"
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
