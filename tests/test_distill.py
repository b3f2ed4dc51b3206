"""Multi-step distillation: stages chain, a killed run resumes to the very same student."""
import json

import numpy as np
import torch

from sorbet_hw.model.bert import BertEncoder, load_tokenizer
from sorbet_hw.model.distill import DistillConfig, run_distillation
from sorbet_hw.model.glue import Examples, get_task
from sorbet_hw.model.teacher import SequenceClassifier

from tests.test_student import TINY

TEXTS = ["a great , moving film", "dull and lifeless", "wonderful acting", "a tedious mess",
         "funny and warm", "boring , boring , boring", "a delight", "painfully bad"] * 3
LABELS = np.array([1, 0, 1, 0, 1, 0, 1, 0] * 3)


def distill(out, stop_after=None):
    torch.manual_seed(1)
    teacher = SequenceClassifier(BertEncoder(TINY), 2).eval()
    data = Examples(TEXTS, None, LABELS)
    cfg = DistillConfig(batch_size=8, epochs=2, checkpoint_every=2)
    return run_distillation(get_task("sst2"), teacher, load_tokenizer(max_length=12), data, data,
                            cfg, out, stop_after=stop_after, progress=False)


def test_killed_distillation_resumes_to_the_same_student(tmp_path):
    whole, records = distill(tmp_path / "whole")
    assert list(records) == ["quant", "ptsoftmax", "bspn"] and whole.cfg.stage == "bspn"
    for stage in records:
        assert json.loads((tmp_path / "whole" / f"{stage}.json").read_text())["step"] == 6
    _, first = distill(tmp_path / "killed", stop_after=3)           # killed in stage 1
    assert first == {}
    _, second = distill(tmp_path / "killed", stop_after=4)          # ends stage 1, killed in 2
    assert list(second) == ["quant"]
    assert torch.load(tmp_path / "killed" / "ptsoftmax.pt", weights_only=False)["step"] == 4
    resumed, third = distill(tmp_path / "killed")
    assert list(third) == ["quant", "ptsoftmax", "bspn"]
    for (k, a), (_, b) in zip(whole.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), k
    assert not list((tmp_path / "killed").glob("*.partial"))
    # Run again: every stage is skipped, and the student returned is the trained one.
    again, fourth = distill(tmp_path / "killed")
    assert fourth == third
    for (k, a), (_, b) in zip(whole.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), k


def test_epochs_per_stage_are_checked(tmp_path):
    import pytest
    from sorbet_hw.model.params import ParameterError
    teacher = SequenceClassifier(BertEncoder(TINY), 2).eval()
    data = Examples(TEXTS, None, LABELS)
    for epochs in ((1.0, 2.0), (1.0, 0.0, 1.0)):
        with pytest.raises(ParameterError, match="one per stage"):
            run_distillation(get_task("sst2"), teacher, load_tokenizer(max_length=12), data, data,
                             DistillConfig(batch_size=8, epochs=epochs), tmp_path, progress=False)
    _, records = run_distillation(get_task("sst2"), teacher, load_tokenizer(max_length=12), data,
                                  data, DistillConfig(batch_size=8, epochs=(1, 2, 1)), tmp_path,
                                  progress=False)
    assert [r["step"] for r in records.values()] == [3, 6, 3]


def test_a_finished_stage_trains_further_from_init(tmp_path):
    import pytest
    from sorbet_hw.model.params import ModelFileError
    teacher = SequenceClassifier(BertEncoder(TINY), 2).eval()
    data = Examples(TEXTS, None, LABELS)

    def run(out, **kw):
        return run_distillation(get_task("sst2"), teacher, load_tokenizer(max_length=12), data,
                                data, DistillConfig(batch_size=8, epochs=1), out,
                                progress=False, **kw)
    first, _ = run(tmp_path / "first")
    init = tmp_path / "first" / "bspn.pt"
    start, records = run(tmp_path / "more", stages=("bspn",), init=init, stop_after=0)
    assert records == {}
    for (k, a), (_, b) in zip(first.state_dict().items(), start.state_dict().items()):
        assert torch.equal(a, b), k            # the continued stage starts where init ended
    more, records = run(tmp_path / "more", stages=("bspn",), init=init)
    assert list(records) == ["bspn"] and records["bspn"]["step"] == 3
    assert any(not torch.equal(a, b) for a, b in zip(first.state_dict().values(),
                                                      more.state_dict().values()))
    with pytest.raises(ModelFileError, match="is missing"):
        run(tmp_path / "none", init=tmp_path / "absent.pt")
