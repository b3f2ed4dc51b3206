"""Exporting one real sentence's hardware test vectors from a packed student.

``export_vectors`` runs the spike-level simulation (:mod:`model.spiking`) on a sentence and
writes, for every instance of a hardware block, a vector file (:mod:`model.vectors`, which
carries the block's parameters, weights included) plus ``manifest.json``:

- ``layerL.{query,key,value,attention_output,intermediate,output}.npz`` (if_layer): the
  layer's input spike trains ``[tokens, T, N]`` and output spikes ``[tokens, T, M]``;
- ``layerL.NAME.bwn_layer.npz`` (bwn_layer), the same six projections as the integer model
  computes them: input levels ``[tokens, N]`` (signed, offset folded into the bias, except
  the FFN output layer's ReLU levels) and output levels ``[tokens, M]``;
- ``layerL.NAME.event_if_layer.npz`` (event_if_layer), the same six projections on
  zero-silent signed levels: input levels ``[tokens, N]`` and output levels ``[tokens, M]``,
  offsets off both (the FFN hidden layer's unsigned), the bias moved accordingly;
- ``layerL.ptsoftmax.npz``: every head's attention score rows ``[heads * tokens, tokens]`` as
  the integers PTsoftmax takes, and its probabilities;
- ``embedding_norm.npz``, ``layerL.{attention_norm,output_norm}.npz`` (bspn): the residual
  sums of every token and the normalized stream;
- ``layerL.spiking_attention.npz``: the layer's query, key and value levels ``[1, 3, tokens, H]``
  and its context levels ``[1, tokens, H]``;
- ``layerL.rate_encoder.{attention_input,context,ffn_input}.npz``: the levels the layer turns
  into spike trains ``[tokens, H]`` and the trains ``[tokens, T, H]``;
- ``layerL.spike_counter.{query,key,value,attention_output,output}.npz``: the trains the layer
  counts back into levels, and the levels;
- ``layerL.encoder_layer.npz``: the whole layer, its residual stream in ``[1, tokens, H]``
  and out, with every weight (:mod:`model.encoder_layer`).

``sorbet-hw simulate BLOCK --vectors FILE`` replays any of them; tests replay them in cocotb.
The manifest (format ``sorbet-hw-export``, version 1) lists the instances, the sentence, its
tokens, logits and prediction, and PTsoftmax's error against float softmax on these rows.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sorbet_hw.model.encoder_layer import layer_params, score_width
from sorbet_hw.model.integer_model import LINEARS, IntegerStudent
from sorbet_hw.model.spiking import SpikingStudent
from sorbet_hw.model.vectors import VectorFileError, Vectors, save_vectors

FORMAT, VERSION = "sorbet-hw-export", 1
# SST-2 dev, line 2 (label 1): the default sentence.
DEFAULT_SENTENCE = "it 's a charming and often affecting journey ."
# Hardware-friendly parallelism of the exported IF layers (divides 384 and 1536); the
# block's arithmetic does not depend on it.
IF_LANES, IF_INPUTS_PER_CYCLE = 16, 32


def if_layer_params(model: IntegerStudent, linear, lanes: int = IF_LANES,
                    inputs_per_cycle: int = IF_INPUTS_PER_CYCLE) -> dict:
    n, m = linear.weights.shape
    return {"weights": linear.weights.astype(np.int64), "bias": linear.bias.astype(np.int64),
            "threshold_shift": int(linear.threshold_shift), "act_bits": model.act_bits,
            "steps": int(model.config["time_steps"]), "weight_kind": model.config["weight_kind"],
            "lanes": int(np.gcd(lanes, m)), "inputs_per_cycle": int(np.gcd(inputs_per_cycle, n))}


# Projections whose inputs are the model's offset levels (signed); the FFN output layer takes
# the unsigned ReLU levels of the intermediate layer.
UNSIGNED_INPUTS = ("output",)


def bwn_layer_params(model: IntegerStudent, name: str, linear, lanes: int = IF_LANES,
                     inputs_per_cycle: int = IF_INPUTS_PER_CYCLE) -> dict:
    """The projection as the BWN baseline takes it: signed inputs with the offset folded into
    the bias (:func:`model.bwn_layer.signed_form`), same weights, shift and parallelism."""
    from sorbet_hw.model.bwn_layer import signed_form
    n, m = linear.weights.shape
    signed_inputs = name not in UNSIGNED_INPUTS
    bias = signed_form(linear.bias, linear.weights, model.offset) if signed_inputs else linear.bias
    return {"weights": linear.weights.astype(np.int64), "bias": np.asarray(bias, np.int64),
            "threshold_shift": int(linear.threshold_shift), "act_bits": model.act_bits,
            "weight_kind": model.config["weight_kind"], "signed_inputs": signed_inputs,
            "lanes": int(np.gcd(lanes, m)), "inputs_per_cycle": int(np.gcd(inputs_per_cycle, n)),
            "skip_zeros": False}


# The event-driven layers' lanes: 48 makes G = M / lanes a power of two for 384 and 1536
# outputs (8 and 32), so no weight-ROM word is padding.
EVENT_LANES = 48


def event_if_layer_params(model: IntegerStudent, name: str, linear, lanes: int = EVENT_LANES) -> dict:
    """The projection on zero-silent signed levels (:mod:`model.event_if_layer`): the same
    weights and shift, the bias moved off the offsets, graded events."""
    from sorbet_hw.model.event_if_layer import signed_bias
    m = linear.weights.shape[1]
    input_signed, output_signed = name not in UNSIGNED_INPUTS, name != "intermediate"
    bias = signed_bias(linear.bias, linear.weights, int(linear.threshold_shift),
                       model.offset if input_signed else 0, model.offset if output_signed else 0)
    return {"weights": linear.weights.astype(np.int64), "bias": np.asarray(bias, np.int64),
            "threshold_shift": int(linear.threshold_shift), "act_bits": model.act_bits,
            "weight_kind": model.config["weight_kind"], "input_signed": input_signed,
            "output_signed": output_signed, "event_kind": "graded", "lanes": int(np.gcd(lanes, m))}


def bspn_params(model: IntegerStudent, norm) -> dict:
    c = model.config
    return {"channels": int(model.bert["hidden_size"]), "groups": int(c["norm_groups"]),
            "in_width": int(norm.in_width), "norm_frac_bits": int(c["norm_frac_bits"]),
            "out_width": int(c["norm_out_width"]),
            "gamma_shift": norm.gamma_shift.astype(np.int64), "beta": norm.beta.astype(np.int64)}


def ptsoftmax_params(model: IntegerStudent, layer, tokens: int) -> dict:
    """Score width for the worst case (:func:`model.encoder_layer.score_width`)."""
    at = model.attention_params(layer)
    d = model.bert["hidden_size"] // model.heads
    return {"row_length": int(tokens),
            "score_width": score_width(d, model.act_bits, at["score_left_shift"], at["frac_bits"]),
            "frac_bits": int(at["frac_bits"]), "out_frac_bits": int(model.config["softmax_out_frac_bits"]),
            "rounding": model.config["softmax_rounding"]}


def attention_params(model: IntegerStudent, layer, tokens: int) -> dict:
    """The layer's attention block (:class:`hw.spiking_attention.SpikingAttention`)."""
    at, c = model.attention_params(layer), model.config
    return {"heads": int(model.heads), "tokens": int(tokens),
            "head_dim": int(model.bert["hidden_size"] // model.heads),
            "steps": int(c["time_steps"]), "act_bits": int(model.act_bits),
            "score_left_shift": int(at["score_left_shift"]), "score_frac_bits": int(at["frac_bits"]),
            "out_frac_bits": int(c["softmax_out_frac_bits"]), "rounding": c["softmax_rounding"],
            "context_shift": int(at["context_shift"])}


# The layer's converters between levels and spike trains (see hw.encoder_layer): the trains
# each rate encoder makes, and the IF outputs each spike counter turns back into levels.
RATE_ENCODED = ("attention_input", "context", "ffn_input")
COUNTED = ("query", "key", "value", "attention_output", "output")


def converter_params(model: IntegerStudent) -> dict:
    return {"width": int(model.bert["hidden_size"]), "steps": int(model.config["time_steps"]),
            "level_bits": int(model.act_bits)}


def softmax_error(model: IntegerStudent, layer, scores: np.ndarray, probs: np.ndarray) -> dict:
    """PTsoftmax against float softmax on the same rows: against base-2 softmax of the same
    scaled scores (the rounding alone) and against the teacher's form e**(s / sqrt(d))."""
    at = model.attention_params(layer)
    x = (scores << at["score_left_shift"]) / 2.0 ** at["frac_bits"]      # base-2 exponents
    p = probs / 2.0 ** model.config["softmax_out_frac_bits"]
    d = model.bert["hidden_size"] // model.heads
    out = {}
    for name, logits in (("base2", x * np.log(2.0)),
                         ("teacher_form", x * 2.0 ** model.score_shift / np.sqrt(d))):
        ref = np.exp(logits - logits.max(-1, keepdims=True))
        ref /= ref.sum(-1, keepdims=True)
        out[name] = {
            # mean over rows of sum |p - q| / sum q (rows of q sum to 1): total variation x 2
            "row_l1_relative": float(np.abs(p - ref).sum(-1).mean()),
            "max_prob_relative": float(np.mean(np.abs(p.max(-1) - ref.max(-1)) / ref.max(-1))),
            "rows": int(np.prod(p.shape[:-1])),
        }
    return out


def export_vectors(model: IntegerStudent, sentence: str, out: Path, *, source: str,
                   force: bool = False) -> dict:
    """Write the vectors of ``sentence`` into ``out``; returns the manifest. The directory is
    built in a fresh hidden sibling and swapped in when complete; an existing ``out`` is
    replaced only when sorbet-hw made it (:func:`sorbet_hw.files.staged_directory`), and a
    foreign non-empty one is refused unless ``force`` (which adds files, deleting none)."""
    from sorbet_hw.files import check_output_directory, locked, staged_directory
    check_output_directory(Path(out), force)         # before minutes of work
    with locked(Path(out), f"the vector directory {out}"), \
            staged_directory(Path(out), kind="vectors", force=force) as tmp:
        return _export(model, sentence, tmp, source=source)


def _export(model: IntegerStudent, sentence: str, tmp: Path, *, source: str) -> dict:
    from sorbet_hw.model.tokenizer import load_tokenizer
    tok = load_tokenizer(max_length=int(model.meta.get("max_length", 64)))
    tok.no_padding()
    enc = tok.encode(sentence)
    ids, types = np.array(enc.ids, np.int64), np.array(enc.type_ids, np.int64)
    spiking = SpikingStudent(model)
    trace: list[dict] = []
    logits = spiking.forward(ids, types, trace)
    instances, errors = [], []
    tokens, steps = len(ids), spiking.steps
    note = f"sentence {sentence!r}"

    def add(name: str, block: str, params: dict, inputs, expected):
        path = save_vectors(tmp / f"{name}.npz", Vectors(block, params, np.asarray(inputs),
                                                        np.asarray(expected), source=source,
                                                        note=f"{name}: {note}"))
        instances.append({"name": name, "block": block, "file": path.name,
                          "vectors": int(len(inputs))})

    m = model
    add("embedding_norm", "bspn", bspn_params(m, m.embedding_norm), trace[0]["embedding"],
        trace[0]["embedding_norm"])
    for i, (layer, t) in enumerate(zip(m.layers, trace[1:])):
        spikes_in = {"query": t["attention_input"], "key": t["attention_input"],
                     "value": t["attention_input"], "attention_output": t["context"],
                     "intermediate": t["ffn_input"], "output": t["intermediate"]}
        for name in LINEARS:
            add(f"layer{i}.{name}", "if_layer", if_layer_params(m, layer.linears[name]),
                spikes_in[name].numpy().transpose(1, 0, 2), t[name].numpy().transpose(1, 0, 2))
            # The same projection as the integer model computes it, on the same levels.
            levels = spikes_in[name].numpy().sum(axis=0).astype(np.int64)
            if name not in UNSIGNED_INPUTS:
                levels = levels - m.offset
            add(f"layer{i}.{name}.bwn_layer", "bwn_layer", bwn_layer_params(m, name, layer.linears[name]),
                levels, t[name].numpy().sum(axis=0))
            # On zero-silent events: the same levels, the output's offset taken off too.
            out_offset = 0 if name == "intermediate" else m.offset
            add(f"layer{i}.{name}.event_if_layer", "event_if_layer",
                event_if_layer_params(m, name, layer.linears[name]), levels,
                t[name].numpy().sum(axis=0) - out_offset)
        scores = t["scores"].reshape(-1, tokens) << m.attention_params(layer)["score_left_shift"]
        add(f"layer{i}.ptsoftmax", "ptsoftmax", ptsoftmax_params(m, layer, tokens), scores,
            t["probs"].reshape(-1, tokens))
        errors.append(softmax_error(m, layer, t["scores"], t["probs"]))
        levels = {name: t[name].numpy().sum(axis=0).astype(np.int64) for name in LINEARS}
        add(f"layer{i}.spiking_attention", "spiking_attention", attention_params(m, layer, tokens),
            np.stack([levels["query"], levels["key"], levels["value"]])[None],
            t["context"].numpy().sum(axis=0)[None])
        for name in RATE_ENCODED:
            trains = t[name].numpy().transpose(1, 0, 2)
            add(f"layer{i}.rate_encoder.{name}", "rate_encoder", converter_params(m),
                trains.sum(axis=1), trains)
        for name in COUNTED:
            trains = t[name].numpy().transpose(1, 0, 2)
            add(f"layer{i}.spike_counter.{name}", "spike_counter", converter_params(m),
                trains, trains.sum(axis=1))
        add(f"layer{i}.attention_norm", "bspn", bspn_params(m, layer.norms["attention_norm"]),
            t["attention_sum"], t["attention_norm"])
        add(f"layer{i}.output_norm", "bspn", bspn_params(m, layer.norms["output_norm"]),
            t["output_sum"], t["output_norm"])
        add(f"layer{i}.encoder_layer", "encoder_layer", layer_params(m, i, tokens),
            (trace[i]["embedding_norm"] if i == 0 else trace[i]["output_norm"])[None],
            t["output_norm"][None])
    manifest = {
        "format": FORMAT, "version": VERSION, "source": source, "sentence": sentence,
        "token_ids": ids.tolist(), "tokens": enc.tokens, "time_steps": steps,
        "logits": [float(v) for v in logits], "prediction": int(np.argmax(logits)),
        "instances": instances,
        "ptsoftmax_error": {k: float(np.mean([e[k]["row_l1_relative"] for e in errors]))
                            for k in ("base2", "teacher_form")},
        "ptsoftmax_error_per_layer": errors,
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def load_export(directory: Path) -> dict:
    """The manifest of an export directory, checked: format, version, and every file present."""
    directory = Path(directory)
    path = directory / "manifest.json"
    if not path.is_file():
        raise VectorFileError(f"{directory} holds no manifest.json: run `sorbet-hw export-vectors -o {directory}`")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise VectorFileError(f"{path} is not JSON ({e})") from None
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise VectorFileError(f"{path}: format {manifest.get('format')!r} version "
                              f"{manifest.get('version')!r}, expected {FORMAT!r} version {VERSION}")
    for inst in manifest.get("instances", []):
        if not (directory / inst["file"]).is_file():
            raise VectorFileError(f"{directory}: instance {inst['name']} lacks its file {inst['file']}")
    return manifest
