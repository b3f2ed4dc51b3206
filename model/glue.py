"""GLUE tasks: reading the official TSV layouts, and each task's dev metric.

Plain Python and numpy (no torch), so the data side can be tested and used anywhere.
The five dev sets ship with the package (``model/data/glue``, official TSVs unchanged; see
the README there for their sources); training sets are the user's to give, as a folder
laid out as GLUE's download is (``DIR/SST-2/train.tsv``), by ``--data DIR`` or
``$SORBET_GLUE``. A malformed row is a :class:`GlueFormatError` naming the file and line.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Where the shipped dev sets are, inside the installed package (a checkout or a wheel).
SHIPPED = Path(__file__).resolve().parent / "data" / "glue"
GLUE_HOME = "https://gluebenchmark.com/tasks"


class GlueFormatError(ValueError):
    """A TSV file does not follow its task's GLUE layout."""


class GlueDataMissing(GlueFormatError):
    """A task's training set was asked for and none was given."""


def dev_tsv(task: "Task | str") -> Path:
    """The task's dev set as shipped with sorbet-hw (the official GLUE TSV)."""
    task = get_task(task) if isinstance(task, str) else task
    return SHIPPED / task.folder / "dev.tsv"


def train_tsv(task: "Task | str", data: Path | str | None = None) -> Path:
    """The task's training set in the user's GLUE folder: ``data``, else ``$SORBET_GLUE``.
    Training sets do not ship; a missing one is one line saying where to get it."""
    task = get_task(task) if isinstance(task, str) else task
    folder = data if data is not None else os.environ.get("SORBET_GLUE") or None
    if folder is None:
        raise GlueDataMissing(
            f"no training data for {task.folder}: sorbet-hw ships the dev sets only; download "
            f"GLUE ({GLUE_HOME}) and pass --data DIR (the folder holding {task.folder}/train.tsv) "
            f"or set SORBET_GLUE=DIR")
    path = Path(folder) / task.folder / "train.tsv"
    if not path.is_file():
        source = "--data" if data is not None else "$SORBET_GLUE"
        raise GlueDataMissing(
            f"{path} does not exist: {source} must name the GLUE folder that holds "
            f"{task.folder}/train.tsv (download GLUE from {GLUE_HOME})")
    return path


@dataclass(frozen=True)
class Task:
    name: str
    folder: str
    header: bool
    columns: int                  # fields per row
    text_a: int
    text_b: int | None
    label: int
    header_label: str | None = None    # the label column's name in the header line
    regression: bool = False
    labels: tuple[str, ...] = ("0", "1")
    metric: str = "accuracy"

    @property
    def num_labels(self) -> int:
        return 1 if self.regression else len(self.labels)


TASKS = {
    "sst2": Task("sst2", "SST-2", True, 2, 0, None, 1, "label"),
    "mrpc": Task("mrpc", "MRPC", True, 5, 3, 4, 0, "Quality", metric="f1"),
    "rte": Task("rte", "RTE", True, 4, 1, 2, 3, "label", labels=("not_entailment", "entailment")),
    "stsb": Task("stsb", "STS-B", True, 10, 7, 8, 9, "score", regression=True, metric="pearson"),
    "cola": Task("cola", "CoLA", False, 4, 3, None, 1, metric="matthews"),
}


def get_task(name: str) -> Task:
    key = name.lower().replace("-", "")
    if key not in TASKS:
        raise GlueFormatError(f"unknown task {name!r}; choose one of: {', '.join(TASKS)}")
    return TASKS[key]


@dataclass
class Examples:
    text_a: list[str]
    text_b: list[str] | None
    labels: np.ndarray            # int64 class ids, or float32 scores for regression

    def __len__(self) -> int:
        return len(self.text_a)


def read_tsv(task: Task | str, path: Path) -> Examples:
    """Read a GLUE TSV of ``task``; every row must have the task's columns and a valid label."""
    task = get_task(task) if isinstance(task, str) else task
    path = Path(path)
    if not path.is_file():
        raise GlueFormatError(f"{path} does not exist")
    text_a, text_b, labels = [], [], []
    with open(path, "rb") as f:
        raw_bytes = f.read()
    try:
        text = raw_bytes.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw_bytes[:e.start].count(b"\n") + 1
        raise GlueFormatError(f"{path}:{line}: not UTF-8 text (byte {e.start}); GLUE TSVs are "
                              f"UTF-8: convert the file (iconv -t UTF-8)") from None
    lines = text.split("\n")
    if task.header:
        fields = lines[0].rstrip("\r").split("\t")
        if len(fields) != task.columns or fields[task.label].strip() != task.header_label:
            raise GlueFormatError(f"{path}:1: expected the {task.folder} header line (its "
                                  f"column {task.label + 1} named {task.header_label!r}), found "
                                  f"{lines[0][:60]!r}: add the header the GLUE layout has")
    start = 1 if task.header else 0
    for number, line in enumerate(lines[start:], start=start + 1):
        line = line.rstrip("\r")
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) != task.columns:
            raise GlueFormatError(f"{path}:{number}: expected {task.columns} tab-separated "
                                  f"fields for {task.name}, found {len(fields)}")
        raw = fields[task.label].strip()
        if task.regression:
            try:
                labels.append(float(raw))
            except ValueError:
                raise GlueFormatError(f"{path}:{number}: score {raw!r} is not a number") from None
        else:
            if raw not in task.labels:
                raise GlueFormatError(f"{path}:{number}: label {raw!r} is not one of "
                                      f"{', '.join(task.labels)}")
            labels.append(task.labels.index(raw))
        text_a.append(fields[task.text_a])
        if task.text_b is not None:
            text_b.append(fields[task.text_b])
    if not text_a:
        raise GlueFormatError(f"{path} holds no examples")
    dtype = np.float32 if task.regression else np.int64
    return Examples(text_a, text_b if task.text_b is not None else None, np.asarray(labels, dtype))


def metrics(task: Task | str, predictions, labels) -> dict[str, float]:
    """The task's GLUE dev metrics, in percent. Classification: ``predictions`` are class ids;
    regression: scores."""
    task = get_task(task) if isinstance(task, str) else task
    pred, gold = np.asarray(predictions), np.asarray(labels)
    if task.regression:
        return {"pearson": 100 * _pearson(pred, gold), "spearman": 100 * _pearson(_rank(pred), _rank(gold))}
    out = {"accuracy": 100 * float(np.mean(pred == gold))}
    if task.metric == "f1":
        tp = np.sum((pred == 1) & (gold == 1))
        denom = np.sum(pred == 1) + np.sum(gold == 1)
        out["f1"] = 100 * float(2 * tp / denom) if denom else 0.0
    if task.metric == "matthews":
        tp, tn = np.sum((pred == 1) & (gold == 1)), np.sum((pred == 0) & (gold == 0))
        fp, fn = np.sum((pred == 1) & (gold == 0)), np.sum((pred == 0) & (gold == 1))
        denom = np.sqrt(float((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)))
        out["matthews"] = 100 * float((tp * tn - fp * fn) / denom) if denom else 0.0
    return out


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64) - a.mean(), b.astype(np.float64) - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom else 0.0


def _rank(x: np.ndarray) -> np.ndarray:
    """Ranks with ties averaged (Spearman)."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), np.float64)
    ranks[order] = np.arange(len(x), dtype=np.float64)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return (sums / counts)[inverse]
