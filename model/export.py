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
- ``layerL.event_attention.npz``: the same attention in the event design, on zero-silent
  signed levels (offsets off): query, key and value ``[1, 3, tokens, H]``, context ``[1, tokens, H]``;
- ``layerL.rate_encoder.{attention_input,context,ffn_input}.npz``: the levels the layer turns
  into spike trains ``[tokens, H]`` and the trains ``[tokens, T, H]``;
- ``layerL.spike_counter.{query,key,value,attention_output,output}.npz``: the trains the layer
  counts back into levels, and the levels;
- ``layerL.event_encoder.{...}.npz`` and ``layerL.event_counter.{...}.npz``: the same
  conversions in the event design, on zero-silent signed levels (offsets off): the levels a
  layer sends as events, and the levels it counts back from them;
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

from sorbet_hw.model import (bspn, bwn_layer, event_attention, event_encoder, event_if_layer, if_layer,
                             ptsoftmax, rate_encoder, spike_counter, spiking_attention)
from sorbet_hw.model.encoder_layer import layer_params, projection_site
from sorbet_hw.model.integer_model import LINEARS, PROJECTION_INPUTS, IntegerStudent
from sorbet_hw.model.params import Site, from_model
from sorbet_hw.model.spiking import SpikingStudent
from sorbet_hw.model.vectors import VectorFileError, Vectors, save_vectors

FORMAT, VERSION = "sorbet-hw-export", 1
# SST-2 dev, line 2 (label 1): the default sentence.
DEFAULT_SENTENCE = "it 's a charming and often affecting journey ."
# Hardware-friendly parallelism of the exported IF layers (divides 384 and 1536); the
# block's arithmetic does not depend on it.
IF_LANES, IF_INPUTS_PER_CYCLE = 16, 32
# The event-driven layers' lanes: 48 makes G = M / lanes a power of two for 384 and 1536
# outputs (8 and 32), so no weight-ROM word is padding.
EVENT_LANES = 48
# The layer's converters between levels and spike trains (see hw.encoder_layer): the trains
# each rate encoder makes, and the IF outputs each spike counter turns back into levels.
RATE_ENCODED = ("attention_input", "context", "ffn_input")
COUNTED = ("query", "key", "value", "attention_output", "output")


def parallelism(site: Site, lanes: int, inputs_per_cycle: int | None = None) -> dict:
    """The hardware's choice for a projection: ``lanes`` outputs (and ``inputs_per_cycle``
    inputs) at a time, cut down to divisors of the layer's sides."""
    n, m = site.linear.weights.shape
    out = {"lanes": int(np.gcd(lanes, m))}
    if inputs_per_cycle is not None:
        out["inputs_per_cycle"] = int(np.gcd(inputs_per_cycle, n))
    return out


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
                   force: bool = False, tile: int = 1) -> dict:
    """Write the vectors of ``sentence`` into ``out``; returns the manifest. The directory is
    built in a fresh hidden sibling and swapped in when complete; an existing ``out`` is
    replaced only when sorbet-hw made it (:func:`sorbet_hw.files.staged_directory`), and a
    foreign non-empty one is refused unless ``force`` (which adds files, deleting none).
    ``tile``: the BWN and event-driven projections read each weight once per ``tile`` tokens
    (0: the whole sentence; :mod:`hw.tiles`)."""
    from sorbet_hw.files import check_output_directory, locked, staged_directory
    check_output_directory(Path(out), force)         # before minutes of work
    with locked(Path(out), f"the vector directory {out}"), \
            staged_directory(Path(out), kind="vectors", force=force) as tmp:
        return _export(model, sentence, tmp, source=source, tile=tile)


def _export(model: IntegerStudent, sentence: str, tmp: Path, *, source: str, tile: int = 1) -> dict:
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

    tile = tokens if tile == 0 else min(tile, tokens)

    def add(name: str, block: str, params: dict, inputs, expected):
        if block in ("bwn_layer", "event_if_layer") and tile > 1:
            params = {**{k: v for k, v in params.items() if k != "batch"}, "tokens_per_tile": tile}
        path = save_vectors(tmp / f"{name}.npz", Vectors(block, params, np.asarray(inputs),
                                                        np.asarray(expected), source=source,
                                                        note=f"{name}: {note}"))
        instances.append({"name": name, "block": block, "file": path.name,
                          "vectors": int(len(inputs))})

    m = model
    add("embedding_norm", "bspn", from_model(bspn.PARAMS, Site(m, name="embedding_norm")),
        trace[0]["embedding"], trace[0]["embedding_norm"])
    for i, (layer, t) in enumerate(zip(m.layers, trace[1:])):
        spikes_in = {name: t[PROJECTION_INPUTS[name]] for name in LINEARS}
        for name in LINEARS:
            site = projection_site(m, layer, name)
            add(f"layer{i}.{name}", "if_layer",
                from_model(if_layer.PARAMS, site, **parallelism(site, IF_LANES, IF_INPUTS_PER_CYCLE)),
                spikes_in[name].numpy().transpose(1, 0, 2), t[name].numpy().transpose(1, 0, 2))
            # The same projection as the integer model computes it, on the same levels.
            levels = spikes_in[name].numpy().sum(axis=0).astype(np.int64)
            if site.input_signed:
                levels = levels - m.offset
            add(f"layer{i}.{name}.bwn_layer", "bwn_layer",
                from_model(bwn_layer.PARAMS, site, skip_zeros=False,
                           **parallelism(site, IF_LANES, IF_INPUTS_PER_CYCLE)),
                levels, t[name].numpy().sum(axis=0))
            # On zero-silent events: the same levels, the output's offset taken off too.
            out_offset = m.offset if site.output_signed else 0
            add(f"layer{i}.{name}.event_if_layer", "event_if_layer",
                from_model(event_if_layer.PARAMS, site, event_kind="graded",
                           **parallelism(site, EVENT_LANES)),
                levels, t[name].numpy().sum(axis=0) - out_offset)
        site = Site(m, layer, tokens=tokens)
        scores = t["scores"].reshape(-1, tokens) << m.attention_params(layer)["score_left_shift"]
        add(f"layer{i}.ptsoftmax", "ptsoftmax", from_model(ptsoftmax.PARAMS, site), scores,
            t["probs"].reshape(-1, tokens))
        errors.append(softmax_error(m, layer, t["scores"], t["probs"]))
        levels = {name: t[name].numpy().sum(axis=0).astype(np.int64) for name in LINEARS}
        add(f"layer{i}.spiking_attention", "spiking_attention", from_model(spiking_attention.PARAMS, site),
            np.stack([levels["query"], levels["key"], levels["value"]])[None],
            t["context"].numpy().sum(axis=0)[None])
        add(f"layer{i}.event_attention", "event_attention", from_model(event_attention.PARAMS, site),
            np.stack([levels["query"], levels["key"], levels["value"]])[None] - m.offset,
            t["context"].numpy().sum(axis=0)[None] - m.offset)
        for name in RATE_ENCODED:
            trains = t[name].numpy().transpose(1, 0, 2)
            add(f"layer{i}.rate_encoder.{name}", "rate_encoder", from_model(rate_encoder.PARAMS, site),
                trains.sum(axis=1), trains)
        for name in COUNTED:
            trains = t[name].numpy().transpose(1, 0, 2)
            add(f"layer{i}.spike_counter.{name}", "spike_counter", from_model(spike_counter.PARAMS, site),
                trains, trains.sum(axis=1))
        # The event design's converters: the same levels, signed (the offset off).
        for block, names in (("event_encoder", RATE_ENCODED), ("event_counter", COUNTED)):
            for name in names:
                signed_levels = t[name].numpy().sum(axis=0).astype(np.int64) - m.offset
                add(f"layer{i}.{block}.{name}", block,
                    from_model(event_encoder.PARAMS, site, event_kind="graded"), signed_levels, signed_levels)
        for name in ("attention_norm", "output_norm"):
            add(f"layer{i}.{name}", "bspn", from_model(bspn.PARAMS, Site(m, layer, name)),
                t[name.replace("norm", "sum")], t[name])
        add(f"layer{i}.encoder_layer", "encoder_layer", layer_params(m, i, tokens),
            (trace[i]["embedding_norm"] if i == 0 else trace[i]["output_norm"])[None],
            t["output_norm"][None])
    manifest = {
        "format": FORMAT, "version": VERSION, "source": source, "sentence": sentence, "tile": tile,
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
