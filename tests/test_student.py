"""The student's quantizers and operators agree with the integer definitions; the trained-model
path (float student -> integer model -> spiking simulation) is exact, layer by layer."""
import numpy as np
import pytest
import torch

from sorbet_hw.model.bert import BertConfig, encode_batch, load_tokenizer
from sorbet_hw.model.bspn import bspn
from sorbet_hw.model.distill import distillation_loss
from sorbet_hw.model.glue import get_task
from sorbet_hw.model.if_layer import if_layer
from sorbet_hw.model.integer_model import from_student
from sorbet_hw.model.params import ParameterError
from sorbet_hw.model.ptsoftmax import ptsoftmax
from sorbet_hw.model.spiking import KINDS, SpikeTally, SpikingStudent
from sorbet_hw.model.student import (Norm, QuantAct, SpikingLinear, Student, StudentConfig, ptsoftmax_torch,
                           round_half_up)

TINY = BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128)
SENTENCES = ["a great , moving film", "dull and lifeless , but with a surprisingly strong ending",
             "it 's a charming and often affecting journey ."]
STAGES = ("attention_input", "query", "key", "value", "context", "attention_output", "ffn_input",
          "intermediate", "output")


def test_round_half_up_is_the_integer_models_rounding():
    x = torch.tensor([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.49])
    assert round_half_up(x).tolist() == [-2, -1, 0, 1, 2, 3, 0]


def test_activation_quantizer_levels_steps_and_gradient():
    q = QuantAct(4, signed=True)
    with torch.no_grad():
        q.log2_step.fill_(-1.7)              # rounds to 2**-2
    x = torch.linspace(-5, 5, 101, requires_grad=True)
    y, e = q(x)
    assert e == -2
    levels = y.detach() / 0.25
    assert torch.equal(levels, levels.round()) and levels.min() == -8 and levels.max() == 7
    y.sum().backward()
    assert q.log2_step.grad is not None and q.log2_step.grad != 0          # LSQ: the step learns
    assert x.grad[50] == 1 and x.grad[0] == 0                               # STE inside, clipped outside
    unsigned = QuantAct(4, signed=False)
    y, _ = unsigned(torch.tensor([-3.0, 0.2, 100.0]))
    assert y.tolist() == [0.0, 0.0, 15.0]


@pytest.mark.parametrize("kind", ["binary", "ternary"])
def test_weights_are_signs_times_a_power_of_two(kind):
    torch.manual_seed(0)
    layer = SpikingLinear(48, 16, kind, 4, True)
    signs, a = layer.signs_and_alpha()
    values = set(signs.unique().tolist())
    assert values == ({-1.0, 1.0} if kind == "binary" else {-1.0, 0.0, 1.0})
    d = (layer.weight - layer.weight.mean()).detach()
    scale = d.abs().mean() if kind == "binary" else d.abs()[signs != 0].mean()
    assert 2.0 ** -0.5 <= float(scale) / 2.0 ** a <= 2.0 ** 0.5
    params = layer.integer_params(e_in=-2, in_offset=8)
    assert params["threshold_shift"] >= 0
    assert set(np.unique(params["weights"]).tolist()) <= {-1, 0, 1}


@pytest.mark.parametrize("rounding", ["up", "nearest"])
def test_training_ptsoftmax_equals_the_integer_definition(rounding):
    rng = np.random.default_rng(3)
    scores = rng.integers(-300, 300, size=(4, 3, 9, 9))          # 3 fractional bits
    valid = torch.ones(4, 1, 1, 9, dtype=torch.bool)
    valid[1, ..., 6:] = False                                      # padded keys
    got = ptsoftmax_torch(torch.tensor(scores / 8.0, dtype=torch.float32), valid, 8, rounding)
    for b in range(4):
        n = 6 if b == 1 else 9
        want = ptsoftmax(scores[b, :, :, :n], frac_bits=3, out_frac_bits=8, rounding=rounding)
        assert np.array_equal(got[b, :, :, :n].numpy() * 256, want)
        assert not got[b, :, :, n:].any()


def test_training_bspn_equals_the_integer_definition():
    cfg = StudentConfig(norm_groups=4)
    norm = Norm(64, cfg, 1e-12)
    rng = np.random.default_rng(4)
    with torch.no_grad():
        norm.log2_gamma.copy_(torch.tensor(rng.uniform(-3, 3, 64)))
        norm.beta.copy_(torch.tensor(rng.uniform(-2, 2, 64)))
    x = rng.integers(-1500, 1500, size=(5, 64))
    got = norm(torch.tensor(x / 16.0, dtype=torch.float32), in_frac_bits=4) * 16
    gamma = norm.gamma_shifts().numpy().astype(np.int64)
    beta = np.floor(norm.beta.detach().numpy().astype(np.float32) * 16 + 0.5).astype(np.int64)
    want = bspn(x, groups=4, gamma_shift=gamma, beta=beta, in_width=12, norm_frac_bits=4, out_width=8)
    assert np.array_equal(got.detach().numpy(), want)


def test_distillation_loss_terms():
    task = get_task("sst2")
    torch.manual_seed(0)
    t_logits, t_hidden = torch.randn(3, 2), [torch.randn(3, 5, 8) for _ in range(3)]
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]])
    logit, hidden = distillation_loss(task, t_logits, t_logits, t_hidden, t_hidden, mask)
    assert abs(float(logit)) < 1e-6 and float(hidden) == 0
    # Padded tokens do not count; real ones do.
    moved = [h.clone() for h in t_hidden]
    moved[1][0, 4] += 10
    assert float(distillation_loss(task, t_logits, t_logits, moved, t_hidden, mask)[1]) == 0
    moved[1][0, 0] += 1
    _, hidden = distillation_loss(task, t_logits, t_logits, moved, t_hidden, mask)
    assert float(hidden) == pytest.approx(8 / (10 * 8))      # one token off by 1: 8 of 10 x 8 values
    logit, _ = distillation_loss(task, t_logits + torch.tensor([2.0, -2.0]), t_logits, t_hidden,
                                 t_hidden, mask)
    assert float(logit) > 0.1


def tiny_student(stage="bspn", kind="binary"):
    torch.manual_seed(0)
    s = Student(TINY, StudentConfig(stage="quant", weight_kind=kind), 2)
    for m in s.modules():
        if isinstance(m, torch.nn.Embedding):
            torch.nn.init.normal_(m.weight, std=0.05)
    batch = encode_batch(load_tokenizer(max_length=32), SENTENCES)
    s.calibrate(batch)
    s.set_stage(stage)
    return s.eval(), batch


@pytest.mark.parametrize("kind", ["binary", "ternary"])
def test_student_integer_model_and_spiking_model_agree_exactly(kind):
    student, batch = tiny_student(kind=kind)
    records = []
    with torch.no_grad():
        logits, hidden = student(**batch, records=records)
    integer = from_student(student)
    spiking = SpikingStudent(integer)
    for i in range(len(SENTENCES)):
        n = int(batch["attention_mask"][i].sum())
        ids, types = batch["input_ids"][i, :n].numpy(), batch["token_type_ids"][i, :n].numpy()
        int_trace, spike_trace = [], []
        int_logits = integer.forward(ids, types, int_trace)
        spike_logits = spiking.forward(ids, types, spike_trace)
        assert np.allclose(int_logits, logits[i].numpy(), atol=1e-5)
        assert np.array_equal(int_logits, spike_logits)
        assert np.array_equal(int_trace[0]["embedding_norm"], (hidden[0][i, :n] * 16).numpy())
        for layer in range(1, len(int_trace)):
            rec, it, st = records[layer], int_trace[layer], spike_trace[layer]
            for stage in STAGES:
                counts = st[stage].sum(0).numpy()
                assert np.array_equal(it[stage], counts), (layer, stage)
                if stage in rec:                        # the float student's levels
                    value, e = rec[stage]
                    offset = 0 if stage == "intermediate" else 8
                    assert np.array_equal((value[i, :n] / 2.0 ** e + offset).numpy(), it[stage]), (layer, stage)
            for stage in ("scores", "probs", "attention_norm", "output_norm"):
                assert np.array_equal(it[stage], st[stage]), (layer, stage)
            assert np.array_equal(it["output_norm"], (hidden[layer][i, :n] * 16).numpy())
            # Spike level: the query layer's trains are model.if_layer's, bit for bit.
            q = integer.layers[layer - 1].linears["query"]
            want = if_layer(st["attention_input"].numpy().transpose(1, 0, 2), q.weights, bias=q.bias,
                            threshold_shift=q.threshold_shift, weight_kind=kind)
            assert np.array_equal(want, st["query"].numpy().transpose(1, 0, 2))


def test_earlier_stages_are_not_integer_models():
    student, _ = tiny_student(stage="ptsoftmax")
    with pytest.raises(ParameterError, match="stage 'bspn'"):
        from_student(student)


def test_too_few_time_steps_is_an_error():
    student, _ = tiny_student()
    with pytest.raises(ParameterError, match="at least 15"):
        SpikingStudent(from_student(student), time_steps=8)


def test_spike_tally_counts_what_the_integer_levels_say():
    """The running totals of `eval --spiking` (kept instead of every sentence's trains): rates
    and nonzero fractions per kind and layer, from the integer model's levels by hand."""
    student, batch = tiny_student()
    integer = from_student(student)
    spiking = SpikingStudent(integer)
    tally, levels, steps = SpikeTally(integer.offset), [], {}
    for i in range(len(SENTENCES)):
        n = int(batch["attention_mask"][i].sum())
        ids, types = batch["input_ids"][i, :n].numpy(), batch["token_type_ids"][i, :n].numpy()
        int_trace, spike_trace = [], []
        integer.forward(ids, types, int_trace)
        spiking.forward(ids, types, spike_trace)
        tally.add(spike_trace)
        levels.append(int_trace[1:])
        steps = {k: spike_trace[1][k].shape[0] for k in KINDS}
    assert tally.layers == len(integer.layers)
    for kind in KINDS:
        offset = 0 if kind == "intermediate" else integer.offset
        for layer in range(tally.layers):
            got = [x[layer][kind] for x in levels]
            size = sum(g.size for g in got)
            assert tally.nonzero_levels()[kind][layer] == pytest.approx(
                sum(int((g != offset).sum()) for g in got) / size)
            assert tally.rates()[kind][layer] == pytest.approx(
                sum(int(g.sum()) for g in got) / (size * steps[kind]))
            assert tally.rates(signed=True)[kind][layer] == pytest.approx(
                sum(int(np.abs(g.astype(np.int64) - offset).sum()) for g in got) / (size * steps[kind]))
