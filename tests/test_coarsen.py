"""Coarser activation steps after training (model.coarsen): the named quantizer's exponent
moves and nothing else does, its levels are the coarser quantization of the same values, and
the coarsened student is still an integer model the spiking model equals exactly."""
import numpy as np
import pytest

from sorbet_hw.model.coarsen import coarsen, describe, parse_changes
from sorbet_hw.model.integer_model import from_student
from sorbet_hw.model.params import ParameterError
from sorbet_hw.model.spiking import SpikingStudent

from test_student import tiny_student


def _trace(model, ids, types):
    trace: list = []
    model.forward(ids, types, trace)
    return trace


def test_a_coarser_step_quantizes_the_same_values_coarser_and_keeps_spiking_exact():
    student, batch = tiny_student()
    base = from_student(student)
    coarse = coarsen(base, {(0, "attention_input"): 1, (1, "ffn_input"): 2})
    assert coarse.layers[0].input_exponent == base.layers[0].input_exponent + 1
    assert coarse.layers[1].ffn_input_exponent == base.layers[1].ffn_input_exponent + 2
    for field in ("input_exponent", "context_exponent", "ffn_input_exponent"):
        for i in range(len(base.layers)):
            if (i, field) not in ((0, "input_exponent"), (1, "ffn_input_exponent")):
                assert getattr(coarse.layers[i], field) == getattr(base.layers[i], field), (i, field)
    nonzero = {"base": 0, "coarse": 0}
    for i in range(len(batch["input_ids"])):
        n = int(batch["attention_mask"][i].sum())
        ids, types = batch["input_ids"][i, :n].numpy(), batch["token_type_ids"][i, :n].numpy()
        before, after = _trace(base, ids, types), _trace(coarse, ids, types)
        # Layer 0's input is the embedding norm's output, which no change touches.
        h = after[0]["embedding_norm"]
        assert np.array_equal(h, before[0]["embedding_norm"])
        assert np.array_equal(after[1]["attention_input"], coarse.encode(h, base.layers[0].input_exponent + 1))
        for name, trace in (("base", before), ("coarse", after)):
            nonzero[name] += np.count_nonzero(trace[1]["attention_input"] - base.offset)
        spikes = []
        logits = SpikingStudent(coarse).forward(ids, types, spikes)
        assert np.array_equal(logits, coarse.forward(ids, types))
        for layer in range(1, len(after)):
            assert np.array_equal(spikes[layer]["attention_input"].sum(0).numpy(), after[layer]["attention_input"])
    assert nonzero["coarse"] < nonzero["base"]


def test_a_step_the_integer_model_cannot_take_is_refused():
    base = from_student(tiny_student()[0])
    with pytest.raises(ParameterError, match="bound"):
        coarsen(base, {(0, "attention_input"): -20})
    with pytest.raises(ParameterError, match="no quantizer"):
        coarsen(base, {(5, "attention_input"): 1})


def test_changes_are_parsed_and_written_back_the_same():
    changes = parse_changes("attention_input:0,1,2+ffn_input:2+context:1:-1", 6)
    assert changes == {(0, "attention_input"): 1, (1, "attention_input"): 1, (2, "attention_input"): 1,
                       (2, "ffn_input"): 1, (1, "context"): -1}
    assert parse_changes(describe(changes), 6) == changes
    for bad, words in (("attention:0", "KIND:LAYERS"), ("ffn_input:a", "KIND:LAYERS"),
                       ("ffn_input:6", "layers 0..5"), ("ffn_input:1:x", "DELTA")):
        with pytest.raises(ParameterError, match=words):
            parse_changes(bad, 6)
