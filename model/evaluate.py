"""Evaluating the integer (and spiking) student on a GLUE TSV.

The integer model runs sentences of equal length as one batch (no padding, so the result is
the one-sentence result); the spiking simulation runs one sentence at a time."""
from __future__ import annotations

import numpy as np

from sorbet_hw.model.glue import Examples, Task, metrics
from sorbet_hw.model.integer_model import LINEARS, PROJECTION_INPUTS, IntegerStudent


def single_threaded_blas():
    """BLAS threads spin against any other busy process (several times slower on 2 cores with
    training running); one thread is never much slower here."""
    from threadpoolctl import threadpool_limits
    return threadpool_limits(limits=1)


def tokenize(model: IntegerStudent, data: Examples) -> list[tuple[np.ndarray, np.ndarray]]:
    """Token and segment ids per example, unpadded, truncated to the model's max length."""
    from sorbet_hw.model.tokenizer import load_tokenizer
    tok = load_tokenizer(max_length=int(model.meta.get("max_length", 64)))
    tok.no_padding()                     # one sentence at a time: no [PAD] tokens
    pairs = list(zip(data.text_a, data.text_b)) if data.text_b is not None else data.text_a
    return [(np.array(e.ids, np.int64), np.array(e.type_ids, np.int64))
            for e in tok.encode_batch(pairs)]


def predict_integer(model: IntegerStudent, task: Task, data: Examples,
                    progress: bool = False, batch_size: int = 64) -> np.ndarray:
    items = tokenize(model, data)
    by_length: dict[int, list[int]] = {}
    for i, (ids, _) in enumerate(items):
        by_length.setdefault(len(ids), []).append(i)
    batches = [idx[j:j + batch_size] for idx in by_length.values()
               for j in range(0, len(idx), batch_size)]
    if progress:
        from tqdm import tqdm
        batches = tqdm(batches, desc=f"eval {task.name}", unit="batch", mininterval=2, leave=False)
    logits = np.zeros((len(items), model.num_labels), np.float32)
    with single_threaded_blas():
        for idx in batches:
            logits[idx] = model.forward(np.stack([items[i][0] for i in idx]),
                                        np.stack([items[i][1] for i in idx]))
    return logits[:, 0] if task.regression else logits.argmax(-1)


def evaluate_integer(model: IntegerStudent, task: Task, data: Examples,
                     progress: bool = False) -> dict[str, float]:
    return metrics(task, predict_integer(model, task, data, progress), data.labels)


def evaluate_spiking(model: IntegerStudent, task: Task, data: Examples, time_steps: int | None = None,
                     progress: bool = False) -> dict:
    """Metrics of the spike-level simulation, its agreement with the integer model, and the
    average spike rate per layer kind and layer."""
    from sorbet_hw.model.spiking import SpikeTally, SpikingStudent
    spiking = SpikingStudent(model, time_steps)
    items = tokenize(model, data)
    if progress:
        from tqdm import tqdm
        items = tqdm(items, desc=f"spiking {task.name}", unit="ex", mininterval=2, leave=False)
    logits, tally = [], SpikeTally(model.offset)
    with single_threaded_blas():
        for ids, types in items:
            trace: list = []
            logits.append(spiking.forward(ids, types, trace))
            tally.add(trace)            # totals only: a dev set's spike trains fill the memory
    logits = np.stack(logits)
    pred = logits[:, 0] if task.regression else logits.argmax(-1)
    return {"metrics": metrics(task, pred, data.labels), "time_steps": spiking.steps,
            "spike_rates": tally.rates(), "signed_spike_rates": tally.rates(signed=True),
            "nonzero_levels": tally.nonzero_levels()}


# The activations that travel as spikes, and whether each is signed (offset 8 removed).
EVENT_KINDS = {"attention_input": True, "query": True, "key": True, "value": True, "context": True,
               "attention_output": True, "ffn_input": True, "intermediate": False, "output": True}


def event_statistics(model: IntegerStudent, task: Task, data: Examples,
                     batch_size: int = 64) -> dict:
    """Zero-silent events of the integer model's activations on ``data``, per layer kind:
    ``unit`` mean |l| and ``graded`` the fraction of nonzero levels, per neuron and token (the
    spiking simulation's signed spike counts equal these levels exactly); and ``per_synapse``
    graded and unit events per synapse per inference (times the mean tokens);
    ``graded_by_layer`` the nonzero fractions per kind and encoder layer; ``weight_reads``
    the fraction of the weight bits of dense BWN projections an event-driven one reads."""
    items = tokenize(model, data)
    by_length: dict[int, list[int]] = {}
    for i, (ids, _) in enumerate(items):
        by_length.setdefault(len(ids), []).append(i)
    unit = {k: 0.0 for k in EVENT_KINDS}
    by_layer = {k: np.zeros((len(model.layers), 2)) for k in EVENT_KINDS}      # nonzero, slots
    with single_threaded_blas():
        for idx in by_length.values():
            for j in range(0, len(idx), batch_size):
                chunk = idx[j:j + batch_size]
                trace: list = []
                model.forward(np.stack([items[i][0] for i in chunk]),
                              np.stack([items[i][1] for i in chunk]), trace)
                for i, layer in enumerate(trace[1:]):
                    for kind, signed in EVENT_KINDS.items():
                        levels = layer[kind] - (model.offset if signed else 0)
                        unit[kind] += float(np.abs(levels).sum())
                        by_layer[kind][i] += (np.count_nonzero(levels), levels.size)
    tokens = sum(len(ids) for ids, _ in items) / max(len(items), 1)
    nonzero, slots = ({k: float(v[:, j].sum()) for k, v in by_layer.items()} for j in (0, 1))
    out = {"unit": {k: unit[k] / slots[k] for k in EVENT_KINDS},
           "graded": {k: nonzero[k] / slots[k] for k in EVENT_KINDS}, "tokens": tokens}
    out["graded_by_layer"] = {k: (v[:, 0] / np.maximum(v[:, 1], 1)).tolist() for k, v in by_layer.items()}
    out["per_synapse"] = {name: {k: v * tokens for k, v in out[name].items()} for name in ("unit", "graded")}
    out["mean"] = {name: float(np.mean(list(out[name].values()))) for name in ("unit", "graded")}
    # The event-driven projections read one weight row per nonzero input level: their weight
    # reads as a fraction of the dense BWN layers', every projection weighed by its synapses.
    synapses = {name: model.layers[0].linears[name].weights.size for name in LINEARS}
    out["weight_reads"] = (sum(out["graded"][PROJECTION_INPUTS[n]] * s for n, s in synapses.items())
                           / sum(synapses.values()))
    return out
