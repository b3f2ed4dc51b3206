"""The Sorbet student: MiniLM's shape with 1-bit weights, 4-bit activations, PTsoftmax, BSPN.

Trained in floating point with straight-through estimators, but every quantity of the final
stage (``stage="bspn"``) lies exactly on an integer grid whose scales are powers of two, so the
float forward pass *is* the integer model (:mod:`model.integer_model`) evaluated in float32:
every sum is an integer multiple of its unit and stays below 2**24. Tests check the two agree
exactly, layer by layer.

Precision of each part (stage ``bspn``):

- Encoder linear layers (Q, K, V, O, FFN in and out): weights alpha * sign(w - mean(w)), alpha
  a per-layer power of two (ternary: {-alpha, 0, +alpha}); biases on the grid of the layer's
  accumulator. Their inputs and outputs are 4-bit activation levels (IF spike counts).
- Activations: 4 bits with a learned power-of-two step (LSQ-style); signed ones as
  level - 8. The FFN's hidden activation is unsigned (the IF neuron's clamp at 0 is its ReLU).
- Attention: scores are integer dot products of Q and K levels; PTsoftmax on them (scaled by a
  power of two); the context sum_j p_j * v_j uses the powers of two p_j; its result is
  requantized to 4 bits by an IF neuron.
- Residual stream: BSPN outputs, 8-bit signed with 4 fractional bits.
- Embeddings: word 4-bit, position and segment 8-bit, power-of-two steps; then BSPN.
- Classifier head on [CLS]: float32 (2 x 384 weights).

The earlier distillation stages swap in the float parts: ``quant`` keeps softmax and LayerNorm,
``ptsoftmax`` keeps LayerNorm.
"""
from __future__ import annotations

import math

import numpy as np
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from sorbet_hw.model.bert import BertConfig
from sorbet_hw.model.bspn import bspn, group_shift
from sorbet_hw.model.if_layer import quantize_activation
from sorbet_hw.model.params import ParameterError, check_choice, check_divides, check_int, signed_width
from sorbet_hw.model.ptsoftmax import LOG2E, ptsoftmax_of_ceilings, score_shift

STAGES = ("quant", "ptsoftmax", "bspn")
WEIGHT_KINDS = ("binary", "ternary")


@dataclass(frozen=True)
class StudentConfig:
    stage: str = "bspn"
    weight_kind: str = "binary"
    act_bits: int = 4
    time_steps: int = 16
    norm_groups: int = 4
    norm_frac_bits: int = 4
    norm_in_width: int = 12
    norm_out_width: int = 8
    softmax_out_frac_bits: int = 8
    softmax_rounding: str = "up"
    word_bits: int = 4
    position_bits: int = 8

    def check(self, bert: BertConfig) -> "StudentConfig":
        check_choice("stage", self.stage, STAGES)
        check_choice("weight_kind", self.weight_kind, WEIGHT_KINDS)
        check_int("act_bits", self.act_bits, 2, 8)
        check_int("time_steps", self.time_steps, (1 << self.act_bits) - 1, 1024)
        check_int("norm_groups", self.norm_groups, 1, bert.hidden_size)
        check_divides("norm_groups", self.norm_groups, "hidden_size", bert.hidden_size)
        check_int("norm_frac_bits", self.norm_frac_bits, 0, 8)
        check_int("norm_out_width", self.norm_out_width, 4, 16)
        check_int("norm_in_width", self.norm_in_width,
                  self.norm_out_width + 2, 24)
        check_int("softmax_out_frac_bits", self.softmax_out_frac_bits, 2, 16)
        check_choice("softmax_rounding", self.softmax_rounding, ("up", "nearest"))
        check_int("word_bits", self.word_bits, 2, 8)
        check_int("position_bits", self.position_bits, 2, 12)
        return self

    def asdict(self) -> dict:
        return asdict(self)


# --- rounding with straight-through gradients -------------------------------------------------

def _ste(x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Forward exactly q (q + 0.0, unlike x + (q - x)), backward identity to x."""
    return q.detach() + (x - x.detach())


def round_half_up(x: torch.Tensor) -> torch.Tensor:
    """floor(x + 1/2): the integer models' rounding (not torch.round's half-to-even)."""
    return _ste(x, torch.floor(x + 0.5))


def exponent_of(log2: torch.Tensor) -> int:
    """The integer exponent a learned log2 parameter stands for."""
    return int(math.floor(float(log2.detach() if isinstance(log2, torch.Tensor) else log2) + 0.5))


# --- building blocks ----------------------------------------------------------------------------

class QuantAct(nn.Module):
    """Activation quantizer to ``bits`` levels with a learned power-of-two step 2**e.

    level = clamp(floor(x / 2**e + 1/2) + offset, 0, 2**bits - 1), offset 2**(bits-1) when
    signed; the value passed on is (level - offset) * 2**e. The exponent may be bounded by the
    caller (``lo``/``hi``) where the integer model needs it (threshold shifts >= 0, residual
    widths). In calibration mode it passes x through and records mean |x| to set the step
    (LSQ's 2 * mean|x| / sqrt(Q_p)).
    """

    def __init__(self, bits: int, signed: bool):
        super().__init__()
        self.bits, self.signed = bits, signed
        self.log2_step = nn.Parameter(torch.tensor(0.0))
        self.calibrating = False
        # When set, forward keeps min(|x| / step, 1) per element in ``soft_nonzero``: a
        # differentiable stand-in for "level != 0" (a level is nonzero from |x| >= step / 2),
        # whose gradient reaches the step too (a larger step makes more zeros).
        self.track_nonzero = False
        self.soft_nonzero = None

    @property
    def offset(self) -> int:
        return 1 << (self.bits - 1) if self.signed else 0

    def exponent(self, lo: float | None = None, hi: float | None = None) -> int:
        e = exponent_of(self.log2_step)
        if hi is not None:
            e = min(e, int(hi))
        if lo is not None:
            e = max(e, int(lo))
        return e

    def forward(self, x: torch.Tensor, lo: float | None = None, hi: float | None = None):
        if self.calibrating:
            positive = (1 << self.bits) - 1 - self.offset
            with torch.no_grad():
                self.log2_step.fill_(math.log2(max(2 * x.abs().mean().item() / math.sqrt(positive), 1e-8)))
            return x, self.exponent(lo, hi)
        e = self.exponent(lo, hi)
        # The step's gradient flows through 2**log2_step (LSQ), its value is the power of two.
        step = _ste(2.0 ** self.log2_step, torch.tensor(2.0 ** e))
        if self.track_nonzero:
            self.soft_nonzero = torch.clamp((x / step).abs(), max=1.0)
        # The levels are model.if_layer's quantizer's; the gradient is the unrounded clamp's.
        exact = quantize_activation(x.detach(), e, self.bits, self.offset)
        level = _ste(torch.clamp(x / step + self.offset, 0, (1 << self.bits) - 1), exact)
        return (level - self.offset) * step, e


class SpikingLinear(nn.Module):
    """Linear layer with 1-bit (or ternary) weights whose output is an IF neuron's 4-bit level.

    Weights alpha * sign(w - mean(w)) with alpha = 2**round(log2(mean|w - mean(w)|)) (ternary:
    zero where |w - mean| <= 0.7 * its mean, alpha over the rest); the bias is rounded to the
    accumulator's unit 2**(e_in + a); the output step is at least that unit so the IF threshold
    2**threshold_shift is an integer shift.
    """

    def __init__(self, inputs: int, outputs: int, kind: str, bits: int, signed_out: bool):
        super().__init__()
        self.kind = kind
        self.weight = nn.Parameter(torch.empty(outputs, inputs))
        self.bias = nn.Parameter(torch.zeros(outputs))
        self.out = QuantAct(bits, signed_out)
        nn.init.normal_(self.weight, std=0.02)

    def signs_and_alpha(self) -> tuple[torch.Tensor, int]:
        """Weight signs [out, in] in {-1, +1} (or {-1, 0, +1}) and alpha's exponent."""
        with torch.no_grad():
            d = self.weight - self.weight.mean()
            if self.kind == "binary":
                signs = torch.where(d >= 0, 1.0, -1.0)
                scale = d.abs().mean()
            else:
                keep = d.abs() > 0.7 * d.abs().mean()
                signs = torch.sign(d) * keep
                scale = d.abs()[keep].mean() if keep.any() else d.abs().mean()
            return signs, exponent_of(torch.log2(scale.clamp_min(2.0 ** -30)))

    def bounds(self, e_in: int, a: int, lo: int | None, hi: int | None) -> tuple[int, int | None]:
        return (e_in + a if lo is None else max(lo, e_in + a)), hi

    def forward(self, x: torch.Tensor, e_in: int, lo: int | None = None, hi: int | None = None):
        signs, a = self.signs_and_alpha()
        d = self.weight - self.weight.mean()
        weight = _ste(d, signs * 2.0 ** a)
        unit = 2.0 ** (e_in + a)
        bias = round_half_up(self.bias / unit) * unit
        z = F.linear(x, weight, bias)
        return self.out(z, *self.bounds(e_in, a, lo, hi))

    @torch.no_grad()
    def integer_params(self, e_in: int, in_offset: int, lo: int | None = None,
                       hi: int | None = None) -> dict:
        """The IF layer this is: level_out = quantize_activation(bias + levels_in @ weights,
        threshold_shift), input and output offsets folded into the bias."""
        signs, a = self.signs_and_alpha()
        e_out = self.out.exponent(*self.bounds(e_in, a, lo, hi))
        theta = e_out - e_in - a
        weights = signs.T.to(torch.int64)
        b = torch.floor(self.bias / 2.0 ** (e_in + a) + 0.5).to(torch.int64)
        bias = b - in_offset * weights.sum(0) + (self.out.offset << theta)
        return {"weights": weights.numpy().astype("int8"), "bias": bias.numpy(),
                "threshold_shift": theta, "exponent": e_out}


def ptsoftmax_torch(x: torch.Tensor, valid: torch.Tensor, out_frac_bits: int,
                    rounding: str) -> torch.Tensor:
    """:func:`model.ptsoftmax.ptsoftmax` on real scores x (base 2, so 2**x replaces e**x) over
    the keys where ``valid``: the same definition (:func:`model.ptsoftmax.ptsoftmax_of_ceilings`
    on ceil(x)), with base-2 softmax's gradient (straight-through)."""
    ceilings = torch.ceil(x.detach()).to(torch.int64)
    probs = ptsoftmax_of_ceilings(ceilings, out_frac_bits, rounding, valid).to(x.dtype)
    soft = torch.softmax(torch.where(valid, x / LOG2E, -torch.inf), dim=-1)
    return _ste(soft, probs / 2.0 ** out_frac_bits)


class Norm(nn.Module):
    """LayerNorm (stages quant, ptsoftmax) or BSPN (stage bspn) over the residual stream.

    BSPN follows :func:`model.bspn.bspn` exactly on inputs with ``frac_bits`` fractional bits:
    per token and group the shift s = group_shift(sum |x|), x_hat = floor(x * 2**F / 2**s),
    y = clamp(floor(x_hat * 2**g_c) + beta_c, out range), g_c = round(log2_gamma_c).
    """

    def __init__(self, channels: int, cfg: StudentConfig, eps: float):
        super().__init__()
        self.cfg = cfg
        self.layer_norm = nn.LayerNorm(channels, eps=eps)
        self.log2_gamma = nn.Parameter(torch.zeros(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def init_bspn_from_layer_norm(self) -> None:
        """gamma' ~ 1.13 gamma: x / 2**s, 2**s in [psi, 2 psi), psi = mean|x| ~ 0.8 sigma."""
        with torch.no_grad():
            self.log2_gamma.copy_(torch.log2(self.layer_norm.weight.abs().clamp_min(2.0 ** -8)) + 0.18)
            self.beta.copy_(self.layer_norm.bias)

    def gamma_shifts(self) -> torch.Tensor:
        return torch.clamp(torch.floor(self.log2_gamma.detach() + 0.5), -8, 8)

    def forward(self, x: torch.Tensor, in_frac_bits: int, in_width: int | None = None):
        if self.cfg.stage != "bspn":
            return self.layer_norm(x)
        cfg = self.cfg
        width = in_width or cfg.norm_in_width
        F_ = cfg.norm_frac_bits
        lo, hi = -(1 << (cfg.norm_out_width - 1)), (1 << (cfg.norm_out_width - 1)) - 1
        g = self.gamma_shifts()
        beta = torch.clamp(round_half_up(self.beta * 2.0 ** F_), lo, hi)
        # The values: model.bspn's definition on the residual's integers. The gradient: the
        # same arithmetic unrounded, x * 2**(F - s) * gamma + beta (straight-through).
        xi = x * 2.0 ** in_frac_bits
        exact = bspn(xi.detach().to(torch.int64), groups=cfg.norm_groups,
                     gamma_shift=g.to(torch.int64), beta=beta.detach().to(torch.int64),
                     in_width=width, norm_frac_bits=F_, out_width=cfg.norm_out_width)
        n = x.shape[-1] // cfg.norm_groups
        grouped = xi.view(*xi.shape[:-1], cfg.norm_groups, n)
        s = group_shift(grouped.detach().abs().sum(-1, keepdim=True).to(torch.int64), n, width)
        x_hat = (grouped * 2.0 ** F_ / 2.0 ** s.to(x.dtype)).view(xi.shape)
        gamma = _ste(2.0 ** self.log2_gamma.clamp(-8, 8), 2.0 ** g)
        y = _ste(torch.clamp(x_hat * gamma + beta, lo, hi), exact.to(x.dtype))
        return y / 2.0 ** F_


class StudentAttention(nn.Module):
    def __init__(self, bert: BertConfig, cfg: StudentConfig):
        super().__init__()
        self.cfg = cfg
        H = bert.hidden_size
        self.heads = bert.num_attention_heads
        self.head_dim = H // self.heads
        self.shift = score_shift(self.head_dim)
        self.input = QuantAct(cfg.act_bits, signed=True)
        self.query = SpikingLinear(H, H, cfg.weight_kind, cfg.act_bits, True)
        self.key = SpikingLinear(H, H, cfg.weight_kind, cfg.act_bits, True)
        self.value = SpikingLinear(H, H, cfg.weight_kind, cfg.act_bits, True)
        self.context = QuantAct(cfg.act_bits, signed=True)

    def split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, h: torch.Tensor, valid: torch.Tensor, record: dict | None = None):
        x, e_x = self.input(h, lo=-self.cfg.norm_frac_bits)
        (q, e_q), (k, e_k), (v, e_v) = self.query(x, e_x), self.key(x, e_x), self.value(x, e_x)
        scores = self.split(q) @ self.split(k).transpose(-1, -2)
        if self.cfg.stage == "quant":
            mask = torch.where(valid, 0.0, torch.finfo(scores.dtype).min)
            probs = torch.softmax(scores / math.sqrt(self.head_dim) + mask, dim=-1)
        else:
            probs = ptsoftmax_torch(scores * 2.0 ** -self.shift, valid,
                                    self.cfg.softmax_out_frac_bits, self.cfg.softmax_rounding)
        context = (probs @ self.split(v)).transpose(1, 2).reshape(h.shape)
        c, e_c = self.context(context, lo=e_v - self.cfg.softmax_out_frac_bits)
        if record is not None:
            record.update(attention_input=(x, e_x), query=(q, e_q), key=(k, e_k),
                          value=(v, e_v), probs=probs, context=(c, e_c))
        return c, e_c


class StudentLayer(nn.Module):
    def __init__(self, bert: BertConfig, cfg: StudentConfig):
        super().__init__()
        H, I, kind, bits = bert.hidden_size, bert.intermediate_size, cfg.weight_kind, cfg.act_bits
        self.cfg = cfg
        self.attention = StudentAttention(bert, cfg)
        self.attention_output = SpikingLinear(H, H, kind, bits, True)
        self.attention_norm = Norm(H, cfg, bert.layer_norm_eps)
        self.ffn_input = QuantAct(bits, signed=True)
        self.intermediate = SpikingLinear(H, I, kind, bits, False)
        self.output = SpikingLinear(I, H, kind, bits, True)
        self.output_norm = Norm(H, cfg, bert.layer_norm_eps)

    def residual_exponent_bounds(self) -> tuple[int, int]:
        """Block outputs join the residual on its grid 2**-F and must keep the sum within the
        norm's input width: |h| <= 2**(out_width-1), |o| <= 2**(act_bits-1) * 2**(e+F)."""
        c = self.cfg
        return -c.norm_frac_bits, c.norm_in_width - c.act_bits - 1 - c.norm_frac_bits

    def forward(self, h: torch.Tensor, valid: torch.Tensor, record: dict | None = None):
        lo, hi = self.residual_exponent_bounds()
        F_ = self.cfg.norm_frac_bits
        c, e_c = self.attention(h, valid, record)
        a, e_a = self.attention_output(c, e_c, lo, hi)
        h1 = self.attention_norm(h + a, F_)
        x, e_x = self.ffn_input(h1, lo=-F_)
        f, e_f = self.intermediate(x, e_x)
        o, e_o = self.output(f, e_f, lo, hi)
        h2 = self.output_norm(h1 + o, F_)
        if record is not None:
            record.update(attention_output=(a, e_a), attention_norm=h1, ffn_input=(x, e_x),
                          intermediate=(f, e_f), output=(o, e_o), output_norm=h2)
        return h2


class StudentEncoder(nn.Module):
    """Quantized embeddings + student layers; returns every layer's output like BertEncoder."""

    def __init__(self, bert: BertConfig, cfg: StudentConfig):
        super().__init__()
        self.bert, self.cfg = bert, cfg
        H = bert.hidden_size
        self.word_embeddings = nn.Embedding(bert.vocab_size, H)
        self.position_embeddings = nn.Embedding(bert.max_position_embeddings, H)
        self.token_type_embeddings = nn.Embedding(bert.type_vocab_size, H)
        self.word_quant = QuantAct(cfg.word_bits, signed=True)
        self.position_quant = QuantAct(cfg.position_bits, signed=True)
        self.type_quant = QuantAct(cfg.position_bits, signed=True)
        self.embedding_norm = Norm(H, cfg, bert.layer_norm_eps)
        self.layers = nn.ModuleList(StudentLayer(bert, cfg) for _ in range(bert.num_hidden_layers))

    def embedding_grid(self) -> tuple[int, int]:
        """Fractional bits of the embedding sum's grid and the width the sum needs."""
        es = [q.exponent() for q in (self.word_quant, self.position_quant, self.type_quant)]
        bits = [self.cfg.word_bits, self.cfg.position_bits, self.cfg.position_bits]
        unit = min(es)
        bound = sum((1 << (b - 1)) << (e - unit) for b, e in zip(bits, es))
        return -unit, signed_width(-bound, bound)

    def embed(self, input_ids, token_type_ids):
        n = input_ids.shape[1]
        positions = torch.arange(n, device=input_ids.device)
        w, _ = self.word_quant(self.word_embeddings(input_ids))
        p, _ = self.position_quant(self.position_embeddings(positions)[None])
        t, _ = self.type_quant(self.token_type_embeddings(token_type_ids))
        return w + p + t

    def forward(self, input_ids, attention_mask, token_type_ids=None, records: list | None = None):
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        frac, width = self.embedding_grid()
        e = self.embed(input_ids, token_type_ids)
        x = self.embedding_norm(e, frac, width)
        valid = attention_mask[:, None, None, :].bool()
        outputs = [x]
        if records is not None:
            records.append({"embedding": e, "embedding_norm": x})
        for layer in self.layers:
            record = {} if records is not None else None
            x = layer(x, valid, record)
            if records is not None:
                records.append(record)
            outputs.append(x)
        return outputs


class Student(nn.Module):
    """Student encoder + a float head on the [CLS] output."""

    def __init__(self, bert: BertConfig, cfg: StudentConfig, num_labels: int):
        super().__init__()
        self.cfg = cfg.check(bert)
        self.encoder = StudentEncoder(bert, cfg)
        self.head = nn.Linear(bert.hidden_size, num_labels)

    def set_stage(self, stage: str) -> None:
        """Switch every part to a distillation stage (the config object is shared)."""
        check_choice("stage", stage, STAGES)
        old = self.cfg.stage
        self.replace_config(stage=stage)
        if stage == "bspn" and old != "bspn":
            for m in self.modules():
                if isinstance(m, Norm):
                    m.init_bspn_from_layer_norm()

    def replace_config(self, **changes) -> None:
        """The config with ``changes``, in every part (the config object is shared)."""
        new = StudentConfig(**{**self.cfg.asdict(), **changes})
        for m in self.modules():
            if isinstance(getattr(m, "cfg", None), StudentConfig):
                m.cfg = new

    def forward(self, input_ids, attention_mask, token_type_ids=None, records: list | None = None):
        hidden = self.encoder(input_ids, attention_mask, token_type_ids, records)
        return self.head(hidden[-1][:, 0]), hidden

    def quantizers(self):
        return [m for m in self.modules() if isinstance(m, QuantAct)]

    @torch.no_grad()
    def calibrate(self, batch: dict) -> None:
        """Set every activation step from one batch (LSQ initialization), in float."""
        was = self.training
        self.eval()
        for q in self.quantizers():
            q.calibrating = True
        try:
            self(**batch)
        finally:
            for q in self.quantizers():
                q.calibrating = False
            self.train(was)


def student_from_teacher(teacher, cfg: StudentConfig) -> Student:
    """A student with the teacher's weights (linear layers, embeddings, norms, head)."""
    enc = teacher.encoder
    student = Student(enc.cfg, StudentConfig(**{**cfg.asdict(), "stage": "quant"}),
                      teacher.head.out_features)
    renamed = {k.replace("_norm.weight", "_norm.layer_norm.weight")
               .replace("_norm.bias", "_norm.layer_norm.bias"): v
               for k, v in teacher.state_dict().items()}
    missing, unexpected = student.load_state_dict(renamed, strict=False)
    leftover = [k for k in missing if not (k.endswith("log2_step") or k.endswith("log2_gamma")
                                           or k.endswith(".beta"))]
    if leftover or unexpected:
        raise ParameterError(f"teacher does not fit the student: missing {leftover[:3]}, "
                             f"unexpected {unexpected[:3]}")
    if cfg.stage != "quant":
        student.set_stage(cfg.stage)
    return student


def student_from_integer(model) -> Student:
    """A float student in stage ``bspn`` whose integer model (:func:`model.integer_model.from_student`)
    is ``model`` exactly: to train a packed student further (its latent weights are not
    packed; they start at their signs times alpha, which keeps every sign and alpha).

    Every quantizer's step is its exponent, every projection's weight sign * 2**a with
    a = e_out - e_in - threshold_shift, its bias the packed bias with the offsets taken back
    out, in units of 2**(e_in + a); every norm's log2 gamma its shift and beta its level."""
    from sorbet_hw.model.bert import BertConfig
    cfg = StudentConfig(**model.config)
    student = Student(BertConfig(**model.bert), cfg, model.num_labels)
    enc = student.encoder
    F_, off = cfg.norm_frac_bits, 1 << (cfg.act_bits - 1)

    def step(quant: QuantAct, e: int) -> None:
        quant.log2_step.fill_(float(e))

    def norm(module: Norm, packed) -> None:
        module.log2_gamma.copy_(torch.as_tensor(packed.gamma_shift, dtype=torch.float32))
        module.beta.copy_(torch.as_tensor(packed.beta, dtype=torch.float32) / 2.0 ** F_)

    def linear(module: SpikingLinear, packed, e_in: int, in_offset: int) -> None:
        theta = int(packed.threshold_shift)
        a = int(packed.exponent) - e_in - theta
        w = torch.as_tensor(packed.weights.T.astype(np.float32))
        module.weight.copy_(w * 2.0 ** a)
        out_offset = module.out.offset
        b = (torch.as_tensor(packed.bias, dtype=torch.float64)
             + in_offset * torch.as_tensor(packed.weights.astype(np.int64)).sum(0)
             - (out_offset << theta))
        module.bias.copy_((b * 2.0 ** (e_in + a)).to(torch.float32))
        step(module.out, int(packed.exponent))

    with torch.no_grad():
        e_w, e_p, e_t = model.embedding_exponents
        for table, quant, levels, e in ((enc.word_embeddings, enc.word_quant, model.word, e_w),
                                        (enc.position_embeddings, enc.position_quant, model.position, e_p),
                                        (enc.token_type_embeddings, enc.type_quant, model.token_type, e_t)):
            table.weight.copy_(torch.as_tensor(levels.astype(np.float32)) * 2.0 ** e)
            step(quant, e)
        norm(enc.embedding_norm, model.embedding_norm)
        for lay, packed in zip(enc.layers, model.layers):
            lin = packed.linears
            step(lay.attention.input, packed.input_exponent)
            for name in ("query", "key", "value"):
                linear(getattr(lay.attention, name), lin[name], packed.input_exponent, off)
            step(lay.attention.context, packed.context_exponent)
            linear(lay.attention_output, lin["attention_output"], packed.context_exponent, off)
            step(lay.ffn_input, packed.ffn_input_exponent)
            linear(lay.intermediate, lin["intermediate"], packed.ffn_input_exponent, off)
            linear(lay.output, lin["output"], lin["intermediate"].exponent, 0)
            for name in ("attention_norm", "output_norm"):
                norm(getattr(lay, name), packed.norms[name])
        student.head.weight.copy_(torch.as_tensor(model.head_weight))
        student.head.bias.copy_(torch.as_tensor(model.head_bias))
    return student
