"""The student as integers: what the hardware computes, built on the operator definitions.

:class:`IntegerStudent` holds every parameter as an integer (weight signs, biases with their
offsets folded in, threshold shifts, BSPN shifts and offsets, embedding levels) and runs one
sentence with :func:`model.if_layer.quantize_activation`, :func:`model.ptsoftmax.ptsoftmax`
and :func:`model.bspn.bspn` — the same functions the hardware benches check against. Only the
classifier head is float32. It is made from a trained :class:`model.student.Student`
(:func:`from_student`) or from a packed checkpoint (:mod:`model.checkpoint`), and a test
checks it equals the student's float forward pass exactly, stage by stage.

Per layer (h: residual stream, int8 with F = 4 fractional bits; levels: 4-bit spike counts):

    x   = encode(h)                        levels of h, signed (offset 8)
    q, k, v = IF(x; W_q), IF(x; W_k), IF(x; W_v)
    s   = (q - 8)(k - 8)^T per head         integer dot products
    p   = ptsoftmax(s << max(0, e_q + e_k - sigma), frac_bits = max(0, sigma - e_q - e_k))
    c   = quantize_activation(p (v - 8) + 8 << th_c, th_c)
    a   = IF(c; W_o);   h1 = bspn(h + ((a - 8) << (e_a + F)))
    f   = IF(encode(h1); W_in) (unsigned: the ReLU);   o = IF(f; W_out)
    h2  = bspn(h1 + ((o - 8) << (e_o + F)))

with IF(x; W) = quantize_activation(bias + x @ W, threshold_shift).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sorbet_hw.model.bspn import bspn
from sorbet_hw.model.exact import matmul
from sorbet_hw.model.if_layer import quantize_activation
from sorbet_hw.model.params import ParameterError
from sorbet_hw.model.spiking_attention import spiking_attention

LINEARS = ("query", "key", "value", "attention_output", "intermediate", "output")
# The activation each projection reads: its input levels (spikes, events).
PROJECTION_INPUTS = {"query": "attention_input", "key": "attention_input", "value": "attention_input",
                     "attention_output": "context", "intermediate": "ffn_input", "output": "intermediate"}
NORMS = ("attention_norm", "output_norm")


@dataclass
class Linear:
    weights: np.ndarray            # [in, out] int8 in {-1, +1} (or {-1, 0, +1})
    bias: np.ndarray               # [out] int64, offsets folded in
    threshold_shift: int
    exponent: int                  # output step 2**exponent

    def __call__(self, levels: np.ndarray, act_bits: int) -> np.ndarray:
        if getattr(self, "_float", None) is None:      # converted once, reused per sentence
            self._float = self.weights.astype(np.float32)
        return quantize_activation(self.bias + matmul(levels, self._float), self.threshold_shift,
                                   act_bits)


@dataclass
class Norm:
    gamma_shift: np.ndarray        # [C] int
    beta: np.ndarray               # [C] int
    in_width: int


@dataclass
class Layer:
    input_exponent: int            # step of the attention input's levels
    ffn_input_exponent: int
    context_exponent: int
    linears: dict[str, Linear]
    norms: dict[str, Norm]


@dataclass
class IntegerStudent:
    config: dict                   # StudentConfig fields
    bert: dict                     # BertConfig fields
    num_labels: int
    word: np.ndarray               # [vocab, H] int8 levels (signed)
    position: np.ndarray           # [positions, H]
    token_type: np.ndarray         # [types, H]
    embedding_exponents: tuple[int, int, int]
    embedding_norm: Norm
    layers: list[Layer]
    head_weight: np.ndarray        # [labels, H] float32
    head_bias: np.ndarray
    meta: dict = field(default_factory=dict)

    # -- derived constants ------------------------------------------------------------------
    @property
    def act_bits(self) -> int:
        return self.config["act_bits"]

    @property
    def offset(self) -> int:
        return 1 << (self.act_bits - 1)

    @property
    def frac_bits(self) -> int:
        return self.config["norm_frac_bits"]

    @property
    def heads(self) -> int:
        return self.bert["num_attention_heads"]

    @property
    def score_shift(self) -> int:
        from sorbet_hw.model.ptsoftmax import score_shift
        return score_shift(self.bert["hidden_size"] // self.heads)

    def norm(self, x: np.ndarray, p: Norm) -> np.ndarray:
        c = self.config
        return bspn(x, groups=c["norm_groups"], gamma_shift=p.gamma_shift, beta=p.beta,
                    in_width=p.in_width, norm_frac_bits=c["norm_frac_bits"],
                    out_width=c["norm_out_width"])

    def encode(self, h: np.ndarray, exponent: int) -> np.ndarray:
        """Signed levels of the residual stream: the spike encoder's counts."""
        theta = exponent + self.frac_bits
        return quantize_activation(h + (self.offset << theta), theta, self.act_bits)

    def attention_params(self, layer: Layer) -> dict:
        """PTsoftmax score alignment and the context neuron's threshold."""
        e_q, e_k = layer.linears["query"].exponent, layer.linears["key"].exponent
        P = self.config["softmax_out_frac_bits"]
        return {"score_left_shift": max(0, e_q + e_k - self.score_shift),
                "frac_bits": max(0, self.score_shift - e_q - e_k),
                "context_shift": layer.context_exponent - layer.linears["value"].exponent + P}

    # -- inference --------------------------------------------------------------------------
    def embed(self, ids: np.ndarray, types: np.ndarray) -> np.ndarray:
        e_w, e_p, e_t = self.embedding_exponents
        unit = min(self.embedding_exponents)
        n = ids.shape[-1]
        if n > len(self.position):
            raise ParameterError(f"sentence of {n} tokens exceeds the {len(self.position)} positions")
        return ((self.word[ids].astype(np.int64) << (e_w - unit))
                + (self.position[:n].astype(np.int64) << (e_p - unit))
                + (self.token_type[types].astype(np.int64) << (e_t - unit)))

    def forward(self, ids, types=None, trace: list | None = None) -> np.ndarray:
        """Logits of one sentence (token ids [n], no padding), or of a batch of sentences of
        one length ([B, n]). ``trace`` receives, per stage, every integer quantity (levels,
        scores, probabilities, residual stream)."""
        ids = np.asarray(ids, dtype=np.int64)
        types = np.zeros_like(ids) if types is None else np.asarray(types, dtype=np.int64)
        e = self.embed(ids, types)
        h = self.norm(e, self.embedding_norm)
        if trace is not None:
            trace.append({"embedding": e, "embedding_norm": h})
        for layer in self.layers:
            h = self.layer(layer, h, trace)
        return self.head(h[..., 0, :])

    def layer(self, layer: Layer, h: np.ndarray, trace: list | None = None) -> np.ndarray:
        bits, off, F_ = self.act_bits, self.offset, self.frac_bits
        lin = layer.linears
        x = self.encode(h, layer.input_exponent)
        q, k, v = (lin[name](x, bits) for name in ("query", "key", "value"))
        at = self.attention_params(layer)
        inner: dict = {}
        c = spiking_attention(q, k, v, heads=self.heads, act_bits=bits,
                              score_left_shift=at["score_left_shift"], score_frac_bits=at["frac_bits"],
                              out_frac_bits=self.config["softmax_out_frac_bits"],
                              rounding=self.config["softmax_rounding"],
                              context_shift=at["context_shift"], trace=inner)
        scores, probs, context_sum = inner["scores"], inner["probs"], inner["context_sum"]
        a = lin["attention_output"](c, bits)
        h1 = self.norm(h + ((a - off) << (lin["attention_output"].exponent + F_)),
                       layer.norms["attention_norm"])
        x2 = self.encode(h1, layer.ffn_input_exponent)
        f = lin["intermediate"](x2, bits)
        o = lin["output"](f, bits)
        h2 = self.norm(h1 + ((o - off) << (lin["output"].exponent + F_)), layer.norms["output_norm"])
        if trace is not None:
            trace.append({"attention_input": x, "query": q, "key": k, "value": v,
                          "scores": scores, "probs": probs, "context_sum": context_sum,
                          "context": c, "attention_output": a, "attention_norm": h1,
                          "ffn_input": x2, "intermediate": f, "output": o, "output_norm": h2})
        return h2

    def head(self, cls: np.ndarray) -> np.ndarray:
        """The float32 classifier on [CLS] (the only float part; numpy, as the rest)."""
        x = np.asarray(cls, dtype=np.float32) / np.float32(2.0 ** self.frac_bits)
        return x @ np.asarray(self.head_weight, np.float32).T + np.asarray(self.head_bias, np.float32)




def from_student(student) -> IntegerStudent:
    """The integer parameters of a trained student in its final stage (``bspn``)."""
    import torch
    from sorbet_hw.model.student import StudentConfig
    cfg: StudentConfig = student.cfg
    if cfg.stage != "bspn":
        raise ParameterError(f"only a student in stage 'bspn' is an integer model, not {cfg.stage!r}")
    enc = student.encoder
    F_, off = cfg.norm_frac_bits, 1 << (cfg.act_bits - 1)

    def levels(table, quant):
        e = quant.exponent()
        lvl = torch.clamp(torch.floor(table / 2.0 ** e + 0.5), -quant.offset,
                          (1 << quant.bits) - 1 - quant.offset)
        return lvl.to(torch.int8 if quant.bits <= 8 else torch.int16).numpy(), e

    def norm(m, in_width):
        lo, hi = -(1 << (cfg.norm_out_width - 1)), (1 << (cfg.norm_out_width - 1)) - 1
        beta = torch.clamp(torch.floor(m.beta * 2.0 ** F_ + 0.5), lo, hi)
        return Norm(m.gamma_shifts().to(torch.int64).numpy(), beta.to(torch.int64).numpy(), in_width)

    with torch.no_grad():
        word, e_w = levels(enc.word_embeddings.weight, enc.word_quant)
        position, e_p = levels(enc.position_embeddings.weight, enc.position_quant)
        types, e_t = levels(enc.token_type_embeddings.weight, enc.type_quant)
        _, width = enc.embedding_grid()
        layers = []
        for lay in enc.layers:
            att = lay.attention
            lo, hi = lay.residual_exponent_bounds()
            e_x = att.input.exponent(lo=-F_)
            linears = {name: Linear(**getattr(att, name).integer_params(e_x, off))
                       for name in ("query", "key", "value")}
            e_c = att.context.exponent(lo=linears["value"].exponent - cfg.softmax_out_frac_bits)
            linears["attention_output"] = Linear(**lay.attention_output.integer_params(e_c, off, lo, hi))
            e_f = lay.ffn_input.exponent(lo=-F_)
            linears["intermediate"] = Linear(**lay.intermediate.integer_params(e_f, off))
            linears["output"] = Linear(**lay.output.integer_params(
                linears["intermediate"].exponent, 0, lo, hi))
            norms = {name: norm(getattr(lay, name), cfg.norm_in_width) for name in NORMS}
            layers.append(Layer(e_x, e_f, e_c, linears, norms))
        return IntegerStudent(
            config=cfg.asdict(), bert=dict(vars(enc.bert)), num_labels=student.head.out_features,
            word=word, position=position, token_type=types, embedding_exponents=(e_w, e_p, e_t),
            embedding_norm=norm(enc.embedding_norm, width), layers=layers,
            head_weight=student.head.weight.detach().numpy().astype(np.float32).copy(),
            head_bias=student.head.bias.detach().numpy().astype(np.float32).copy())
