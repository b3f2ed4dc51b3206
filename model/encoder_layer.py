"""One encoder layer of the integer student as the flat parameters its hardware takes.

The arithmetic is :meth:`model.integer_model.IntegerStudent.layer` itself: :func:`encoder_layer`
rebuilds a one-layer student from the flat parameters and runs it, so the layer block
(`hw.encoder_layer`) and its bench (`sim.encoder_layer`) check against the very function the
model evaluates with. :func:`layer_params` reads those parameters out of a trained student.

Parameters (flat, as generator keywords and vector files carry them):

- per linear L of ``query, key, value, attention_output, intermediate, output``:
  ``L_weights`` [in, out] (+-1 or -1/0/+1), ``L_bias`` [out], ``L_threshold_shift``,
  ``L_exponent`` (the step 2**e of its output levels);
- per norm N of ``attention_norm, output_norm``: ``N_gamma_shift``, ``N_beta`` [H];
- ``input_exponent``, ``ffn_input_exponent``, ``context_exponent``: steps of the levels that
  encode the residual stream for attention and FFN, and of the attention context;
- ``heads``, ``tokens`` (sentence length), ``steps`` (T), ``act_bits``, ``weight_kind``,
  ``norm_groups``, ``norm_in_width``, ``norm_frac_bits``, ``norm_out_width``,
  ``softmax_out_frac_bits``, ``softmax_rounding``.
"""
from __future__ import annotations

import numpy as np

from sorbet_hw.model.integer_model import LINEARS, NORMS, IntegerStudent, Layer, Linear, Norm
from sorbet_hw.model.bspn import GAMMA_SHIFT_LIMIT
from sorbet_hw.model.if_layer import BIAS_LIMIT, WEIGHT_KINDS
from sorbet_hw.model.params import (MAX_DEMO_WEIGHTS, Param, ParameterError, Site, check_divides,
                                    check_int, from_model)
from sorbet_hw.model.ptsoftmax import ROUNDINGS

_SIDES = {"query": ("hidden", "hidden"), "key": ("hidden", "hidden"), "value": ("hidden", "hidden"),
          "attention_output": ("hidden", "hidden"), "intermediate": ("hidden", "ffn"),
          "output": ("ffn", "hidden")}
# The hardware's engines (hw.encoder_layer): the arithmetic is the same integer layer.
ENGINES = ("event", "if")
# A level's step 2**e: the layer shifts by e (and by e plus the norm's fractional bits).
EXPONENT_LIMIT = 24
_EXPONENT = dict(lo=-EXPONENT_LIMIT, hi=EXPONENT_LIMIT)


def _norm_in_width(site) -> int:
    """The config's BSPN input width, which both of the layer's norms must have."""
    width = site.model.config["norm_in_width"]
    for name in NORMS:
        if site.layer.norms[name].in_width != width:
            raise ParameterError(f"{name} has in_width {site.layer.norms[name].in_width}, not the "
                                 f"config's {width}")
    return int(width)


# The declaration's parameters (:mod:`hw.encoder_layer`), with where a student keeps them.
PARAMS = (
    Param("heads", 2, "attention heads", lo=1, hi="hidden", divides="hidden", source="model.heads"),
    Param("tokens", 4, "sentence length", lo=1, hi=512, source="tokens"),
    Param("steps", 16, "time steps T", lo="2 ** act_bits - 1", hi=1024, source="config.time_steps"),
    Param("act_bits", 4, "level width", lo=1, hi=10, source="model.act_bits"),
    Param("weight_kind", "binary", "+-1 or -1/0/+1 weights", choices=WEIGHT_KINDS,
          source="config.weight_kind"),
    Param("norm_groups", None, "BSPN groups a token", lo=1, hi="hidden", divides="hidden",
          source="config.norm_groups"),
    Param("norm_in_width", None, "BSPN input width", lo=2, hi=32, source=_norm_in_width),
    Param("norm_frac_bits", None, "BSPN fractional bits", lo=0, hi=16, source="config.norm_frac_bits"),
    Param("norm_out_width", None, "width of the residual stream", lo=2, hi=32,
          source="config.norm_out_width"),
    Param("softmax_out_frac_bits", None, "PTsoftmax probability bits", lo=1, hi=24,
          source="config.softmax_out_frac_bits"),
    Param("softmax_rounding", None, "PTsoftmax rounding", choices=ROUNDINGS,
          source="config.softmax_rounding"),
    Param("input_exponent", None, "step 2**e of the attention input levels", **_EXPONENT,
          source="layer.input_exponent"),
    Param("ffn_input_exponent", None, "step 2**e of the FFN input levels", **_EXPONENT,
          source="layer.ffn_input_exponent"),
    Param("context_exponent", None, "step 2**e of the context levels", **_EXPONENT,
          source="layer.context_exponent"),
) + tuple(param for name in LINEARS for param in (
    Param(f"{name}_weights", None, f"{name} synapses", shape=_SIDES[name], lo=-1, hi=1,
          source=f"layer.linears.{name}.weights"),
    Param(f"{name}_bias", None, f"{name} bias", shape=_SIDES[name][1:], lo=-BIAS_LIMIT + 1,
          hi=BIAS_LIMIT - 1, source=f"layer.linears.{name}.bias"),
    Param(f"{name}_threshold_shift", None, f"{name} threshold shift", lo=0, hi=24,
          source=f"layer.linears.{name}.threshold_shift"),
    Param(f"{name}_exponent", None, f"step 2**e of {name}'s output levels", **_EXPONENT,
          source=f"layer.linears.{name}.exponent"),
)) + tuple(param for name in NORMS for param in (
    Param(f"{name}_gamma_shift", None, f"{name} power-of-two scales", shape=("hidden",),
          lo=-GAMMA_SHIFT_LIMIT, hi=GAMMA_SHIFT_LIMIT, source=f"layer.norms.{name}.gamma_shift"),
    Param(f"{name}_beta", None, f"{name} offsets", shape=("hidden",),
          lo="-(1 << (norm_out_width - 1))", hi="(1 << (norm_out_width - 1)) - 1",
          source=f"layer.norms.{name}.beta"),
)) + (
    Param("engine", "event", "the projections and attention: event-driven on zero-silent "
          "signed events (membranes in block RAM), or dense IF on offset spike trains", choices=ENGINES),
    Param("lanes", None, "outputs of every IF layer computed in parallel", lo=1),
    Param("inputs_per_cycle", None, "inputs of every IF layer summed a cycle (dense IF engine)", lo=1),
)


# Projections whose inputs are the model's offset levels (signed); the FFN output layer takes
# the unsigned ReLU levels of the intermediate layer, whose own outputs are unsigned.
UNSIGNED_INPUTS = ("output",)
UNSIGNED_OUTPUTS = ("intermediate",)


def projection_site(model: IntegerStudent, layer, name: str) -> Site:
    """Where projection ``name`` of ``layer`` reads its parameters, with its levels' signs."""
    return Site(model, layer, name, input_signed=name not in UNSIGNED_INPUTS,
                output_signed=name not in UNSIGNED_OUTPUTS)


def layer_params(model: IntegerStudent, index: int, tokens: int) -> dict:
    """The flat parameters of ``model``'s layer ``index`` for sentences of ``tokens`` tokens
    (every parameter with a source; the parallelism is the hardware's choice)."""
    try:
        return from_model(PARAMS, Site(model, model.layers[index], tokens=int(tokens)))
    except ParameterError as e:
        raise ParameterError(f"layer {index}: {e}") from None


def layer_student(params: dict) -> tuple[IntegerStudent, Layer]:
    """A one-layer :class:`IntegerStudent` (no embeddings, no head) and its layer."""
    try:
        linears = {name: Linear(np.asarray(params[f"{name}_weights"], np.int64),
                                np.asarray(params[f"{name}_bias"], np.int64),
                                int(params[f"{name}_threshold_shift"]),
                                int(params[f"{name}_exponent"])) for name in LINEARS}
        norms = {name: Norm(np.asarray(params[f"{name}_gamma_shift"], np.int64),
                            np.asarray(params[f"{name}_beta"], np.int64),
                            int(params["norm_in_width"])) for name in NORMS}
        layer = Layer(int(params["input_exponent"]), int(params["ffn_input_exponent"]),
                      int(params["context_exponent"]), linears, norms)
        hidden, ffn = linears["intermediate"].weights.shape
        heads = int(params["heads"])
        config = {"act_bits": int(params["act_bits"]), "time_steps": int(params["steps"]),
                  "weight_kind": params["weight_kind"], "norm_groups": int(params["norm_groups"]),
                  "norm_frac_bits": int(params["norm_frac_bits"]),
                  "norm_in_width": int(params["norm_in_width"]),
                  "norm_out_width": int(params["norm_out_width"]),
                  "softmax_out_frac_bits": int(params["softmax_out_frac_bits"]),
                  "softmax_rounding": params["softmax_rounding"]}
    except KeyError as e:
        raise ParameterError(f"encoder layer parameters lack {e.args[0]!r}") from None
    check_divides("heads", check_int("heads", heads, 1, hidden), "hidden size", hidden)
    bert = {"hidden_size": hidden, "num_attention_heads": heads, "intermediate_size": ffn}
    empty = np.zeros((0, hidden), np.int8)
    model = IntegerStudent(config=config, bert=bert, num_labels=0, word=empty, position=empty,
                           token_type=empty, embedding_exponents=(0, 0, 0),
                           embedding_norm=norms["attention_norm"], layers=[layer],
                           head_weight=np.zeros((0, hidden), np.float32),
                           head_bias=np.zeros(0, np.float32))
    return model, layer


def encoder_layer(h, params: dict, trace: list | None = None) -> np.ndarray:
    """The layer's output residual stream for inputs ``h[..., tokens, H]`` (signed
    ``norm_out_width``-bit integers), as the integer student computes it."""
    model, layer = layer_student(params)
    return model.layer(layer, np.asarray(h, dtype=np.int64), trace)




def demo_params(*, hidden: int = 32, heads: int = 2, ffn: int = 64, tokens: int = 4,
                weight_kind: str = "binary", seed: int = 0) -> dict:
    """The flat parameters of an untrained one-layer student of the given shape (random
    weights, activation steps calibrated on random tokens): a layer for tests and demos."""
    import torch
    from sorbet_hw.model.bert import BertConfig
    from sorbet_hw.model.integer_model import from_student
    from sorbet_hw.model.student import Student, StudentConfig
    check_int("hidden", hidden, 1, 4096)
    check_int("heads", heads, 1, hidden)
    check_divides("heads", heads, "hidden", hidden)
    check_int("ffn", ffn, 1, 16384)
    check_int("tokens", tokens, 1, 512)
    check_int("seed", seed, 0, 2 ** 32 - 1)
    weights = 4 * hidden * hidden + 2 * hidden * ffn
    if weights > MAX_DEMO_WEIGHTS:
        raise ParameterError(f"a demo layer of hidden {hidden} and ffn {ffn} has {weights:,} "
                             f"weights, over the limit of {MAX_DEMO_WEIGHTS:,} (MiniLM's layer "
                             f"has 1,769,472)")
    torch.manual_seed(seed)
    bert = BertConfig(vocab_size=64, hidden_size=hidden, num_hidden_layers=1,
                      num_attention_heads=heads, intermediate_size=ffn,
                      max_position_embeddings=max(tokens, 8))
    student = Student(bert, StudentConfig(stage="quant", weight_kind=weight_kind), 2)
    for m in student.modules():
        if isinstance(m, torch.nn.Embedding):
            torch.nn.init.normal_(m.weight, std=0.05)
    ids = torch.randint(0, 64, (8, tokens))
    student.calibrate({"input_ids": ids, "attention_mask": torch.ones_like(ids),
                       "token_type_ids": torch.zeros_like(ids)})
    student.set_stage("bspn")
    return layer_params(from_student(student.eval()), 0, tokens)


def demo_inputs(params: dict, count: int, seed: int) -> np.ndarray:
    """``count`` random sentences ``[count, tokens, H]`` of the layer's input width."""
    hidden = np.shape(params["query_weights"])[0]
    width = int(params["norm_out_width"])
    rng = np.random.default_rng(seed)
    return rng.integers(-(1 << (width - 1)), 1 << (width - 1), size=(count, int(params["tokens"]), hidden))
