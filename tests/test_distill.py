"""Multi-step distillation: stages chain, a killed run resumes to the very same student."""
import json

import pytest

import numpy as np
import torch

from sorbet_hw.model.bert import BertEncoder, load_tokenizer
from sorbet_hw.model.distill import DistillConfig, run_distillation
from sorbet_hw.model.glue import Examples, get_task
from sorbet_hw.model.params import ParameterError
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


def test_the_event_penalty_counts_spikes_and_trains_toward_silence(tmp_path):
    """expected_events is the integer model's mean |level| over the spiking activations (a
    hand count), and distilling with a heavy penalty ends with fewer events than without."""
    from sorbet_hw.model.bert import encode_batch
    from sorbet_hw.model.distill import expected_events
    from sorbet_hw.model.integer_model import from_student
    teacher = SequenceClassifier(BertEncoder(TINY), 2).eval()
    data = Examples(TEXTS, None, LABELS)
    tokenizer = load_tokenizer(max_length=12)

    def distilled(weight, out):
        torch.manual_seed(1)
        cfg = DistillConfig(batch_size=8, epochs=(3, 1, 2), event_weight=weight)
        return run_distillation(get_task("sst2"), teacher, tokenizer, data, data, cfg, out,
                                progress=False)[0]

    counts = {}
    for name, weight in (("plain", 0.0), ("quiet", WEIGHT)):
        student = distilled(weight, tmp_path / name)
        counts[name] = hand_count(from_student(student), TEXTS[:8])
        with torch.no_grad():
            per_sentence, lengths = [], []
            for text in TEXTS[:8]:
                batch, records = encode_batch(tokenizer, [text]), []
                student(**batch, records=records)
                per_sentence.append(float(expected_events(records, batch["attention_mask"])))
                lengths.append(int(batch["attention_mask"].sum()))
        assert np.average(per_sentence, weights=lengths) == pytest.approx(counts[name], rel=1e-6)
    assert counts["quiet"] < 0.95 * counts["plain"], counts


WEIGHT = 50.0
GRADED_WEIGHT = 50.0


@pytest.mark.parametrize("count", ["graded", "rows"])
def test_the_graded_penalty_trains_toward_fewer_weight_reads(count, tmp_path):
    """--event-count graded (or rows: the rows some token of a tile of 4 uses): distilling
    with a heavy penalty on the synapse-weighted nonzero levels ends with fewer weight rows
    read (a hand count on the integer model) than without; the quantizers keep no stand-in
    once training ends."""
    from sorbet_hw.model.distill import graded_fan_outs
    from sorbet_hw.model.integer_model import from_student
    teacher = SequenceClassifier(BertEncoder(TINY), 2).eval()
    data = Examples(TEXTS, None, LABELS)
    tokenizer = load_tokenizer(max_length=12)
    reads = {}
    for name, weight in (("plain", 0.0), ("quiet", GRADED_WEIGHT)):
        torch.manual_seed(1)
        # Adam moves a step's log2 by about the learning rate a step whatever the penalty:
        # a faster one lets a few tiny epochs show the effect.
        cfg = DistillConfig(batch_size=8, epochs=(3, 1, 2), event_weight=weight, event_count=count,
                            event_tile=4, quantizer_learning_rate=0.05)
        student = run_distillation(get_task("sst2"), teacher, tokenizer, data, data, cfg,
                                   tmp_path / name, progress=False)[0]
        fan_outs = {kind: f for kind, (_, f) in graded_fan_outs(student.encoder.layers[0]).items()}
        assert all(q.soft_nonzero is None and not q.track_nonzero
                   for layer in student.encoder.layers for q, _ in graded_fan_outs(layer).values())
        reads[name] = weight_reads(from_student(student), TEXTS[:8], fan_outs)
    assert reads["quiet"] < 0.9 * reads["plain"], reads
    with pytest.raises(ParameterError, match="event_count"):
        run_distillation(get_task("sst2"), teacher, tokenizer, data, data,
                         DistillConfig(event_count="levels"), tmp_path / "bad", progress=False)


def weight_reads(model, texts, fan_outs: dict) -> float:
    """Nonzero levels weighted by the synapses each drives, per synapse and token."""
    from sorbet_hw.model.evaluate import tokenize
    total = synapses = 0
    for ids, types in tokenize(model, Examples(texts, None, np.zeros(len(texts), np.int64))):
        trace = []
        model.forward(ids, types, trace)
        for layer in trace[1:]:
            for kind, fan_out in fan_outs.items():
                offset = 0 if kind == "intermediate" else model.offset
                total += fan_out * np.count_nonzero(layer[kind] != offset)
                synapses += fan_out * layer[kind].size
    return total / synapses


def hand_count(model, texts) -> float:
    """Mean |level| (signed levels: count - 8) over the spiking activations and tokens."""
    from sorbet_hw.model.distill import SPIKING_ACTIVATIONS
    from sorbet_hw.model.evaluate import tokenize
    total = neurons = 0
    for ids, types in tokenize(model, Examples(texts, None, np.zeros(len(texts), np.int64))):
        trace = []
        model.forward(ids, types, trace)
        for layer in trace[1:]:
            for kind in SPIKING_ACTIVATIONS:
                offset = 0 if kind == "intermediate" else model.offset
                total += np.abs(layer[kind] - offset).sum()
                neurons += layer[kind].size
    return total / neurons


def test_a_packed_student_becomes_a_float_student_with_the_same_integers(tmp_path):
    """student_from_integer: the shipped student's every integer parameter comes back exactly
    from its float reconstruction, and `distill --init FILE.npz` starts from it."""
    from sorbet_hw.model.checkpoint import load_packed, save_packed, shipped_checkpoint
    from sorbet_hw.model.integer_model import from_student
    from sorbet_hw.model.params import ParameterError
    from sorbet_hw.model.student import student_from_integer
    shipped = load_packed(shipped_checkpoint("sst2"), "sst2")
    again = from_student(student_from_integer(shipped))
    for a, b in zip(shipped.layers, again.layers):
        for name in a.linears:
            for field in ("weights", "bias", "threshold_shift", "exponent"):
                assert np.array_equal(getattr(a.linears[name], field), getattr(b.linears[name], field))
        for name in a.norms:
            assert np.array_equal(a.norms[name].gamma_shift, b.norms[name].gamma_shift)
            assert np.array_equal(a.norms[name].beta, b.norms[name].beta)
        assert (a.input_exponent, a.context_exponent, a.ffn_input_exponent) == \
               (b.input_exponent, b.context_exponent, b.ffn_input_exponent)
    assert np.array_equal(shipped.word, again.word)
    ids = np.array([101, 2009, 1005, 1055, 1037, 11951, 1998, 2411, 102])
    assert np.array_equal(shipped.forward(ids), again.forward(ids))

    # A tiny packed student continues from itself in stage bspn.
    teacher = SequenceClassifier(BertEncoder(TINY), 2).eval()
    data = Examples(TEXTS, None, LABELS)
    tokenizer = load_tokenizer(max_length=12)
    first, _ = run_distillation(get_task("sst2"), teacher, tokenizer, data, data,
                                DistillConfig(batch_size=8, epochs=1), tmp_path / "first", progress=False)
    packed = save_packed(from_student(first), tmp_path / "tiny.npz", task="sst2")
    start, records = run_distillation(get_task("sst2"), teacher, tokenizer, data, data,
                                      DistillConfig(batch_size=8, epochs=1), tmp_path / "more",
                                      stages=("bspn",), init=packed, stop_after=0, progress=False)
    assert records == {}
    ids = np.array([101, 1037, 2307, 3185, 102])
    assert np.array_equal(from_student(start).forward(ids), from_student(first).forward(ids))
    with pytest.raises(ParameterError, match="--stages bspn"):
        run_distillation(get_task("sst2"), teacher, tokenizer, data, data,
                         DistillConfig(batch_size=8, epochs=1), tmp_path / "bad", init=packed,
                         progress=False)
    # It can go on with the other PTsoftmax rounding: every part of the student takes it,
    # and so does the packed student.
    nearest, _ = run_distillation(get_task("sst2"), teacher, tokenizer, data, data,
                                  DistillConfig(batch_size=8, epochs=1, softmax_rounding="nearest"),
                                  tmp_path / "nearest", stages=("bspn",), init=packed, stop_after=0,
                                  progress=False)
    assert {m.cfg.softmax_rounding for m in nearest.modules() if hasattr(m, "cfg")} == {"nearest"}
    assert from_student(nearest).config["softmax_rounding"] == "nearest"
    assert from_student(start).config["softmax_rounding"] == "up"
    with pytest.raises(ParameterError, match="softmax_rounding"):
        run_distillation(get_task("sst2"), teacher, tokenizer, data, data,
                         DistillConfig(batch_size=8, epochs=1, softmax_rounding="down"),
                         tmp_path / "down", stages=("bspn",), init=packed, progress=False)
