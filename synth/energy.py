"""Energy per inference by the papers' method: operation counts x energy per operation.

The accounting of SpikingBERT and Sorbet, made explicit:

- ANN (the teacher): every matrix product is multiply-accumulates, E_MAC each.
- SNN (the student): a spike on an input of an IF layer costs one accumulate, E_AC, per output
  neuron it reaches; attention's Q spikes add K counts (one add per key) and V spikes add
  probabilities (one add per query). Spike counts come from the spike-level simulation
  (:mod:`model.spiking`) on real sentences, so the sparsity is measured, not assumed.
- SpikingBERT's normalized operations: Norm#OPS = sum_i IFR_i * OPS_(i+1) / sum_i OPS_(i+1)
  (IFR_i: the rate of the spikes that feed layer i+1), and its efficiency estimate
  e = (Norm#OPS * T / 5.1)**-1.

Per-operation energies, 45 nm, from M. Horowitz, "Computing's energy problem (and what we can
do about it)", ISSCC 2014, Figure 1.1.9 (the figures Sorbet and SpikingBERT quote):
32-bit float multiply 3.7 pJ + add 0.9 pJ = 4.6 pJ a MAC; 32-bit float add 0.9 pJ an
accumulate. The int8 rows of the same table (multiply 0.2 pJ, add 0.03 pJ; 32-bit int add
0.1 pJ) give the integer comparison. Not counted, as in the papers: memory traffic, PTsoftmax,
BSPN / softmax, LayerNorm (see the synthesis report for those blocks).
"""
from __future__ import annotations

from dataclasses import dataclass

E_MAC_FP32 = 4.6e-12        # Horowitz 2014: fp32 mult 3.7 pJ + fp32 add 0.9 pJ
E_AC_FP32 = 0.9e-12         # Horowitz 2014: fp32 add
E_MAC_INT8 = 0.2e-12 + 0.1e-12   # int8 mult 0.2 pJ + int32 add 0.1 pJ (accumulator)
E_AC_INT = 0.1e-12          # int32 add (a membrane accumulate)
PAPER_RATIO = 4.6 / 0.9     # the 5.1 of SpikingBERT's efficiency formula


@dataclass(frozen=True)
class Shape:
    name: str
    hidden: int
    layers: int
    intermediate: int
    heads: int


MINILM = Shape("MiniLM-L6-H384 (shipped student)", 384, 6, 1536, 12)
BERT_BASE = Shape("BERT-base", 768, 12, 3072, 12)

# Which measured rate feeds each product (the input spikes of that layer kind).
LINEARS = {  # name: (input kind, inputs, outputs)
    "query": ("attention_input", "H", "H"), "key": ("attention_input", "H", "H"),
    "value": ("attention_input", "H", "H"), "attention_output": ("context", "H", "H"),
    "intermediate": ("ffn_input", "H", "I"), "output": ("intermediate", "I", "H"),
}


def layer_ops(shape: Shape, tokens: int) -> dict[str, float]:
    """ANN operations (MACs) per encoder layer, by product."""
    size = {"H": shape.hidden, "I": shape.intermediate}
    ops = {name: tokens * size[n_in] * size[n_out] for name, (_, n_in, n_out) in LINEARS.items()}
    ops["scores"] = tokens * tokens * shape.hidden          # Q K^T over all heads
    ops["context"] = tokens * tokens * shape.hidden         # P V
    return ops


def mean_rates(rates: dict[str, list[float]]) -> dict[str, float]:
    return {kind: sum(v) / len(v) for kind, v in rates.items()}


def inference_energy(shape: Shape, tokens: int, rates: dict[str, float], steps: int) -> dict:
    """Energy of one inference of ``tokens`` tokens through ``shape``: the ANN with MACs, the
    SNN with accumulates driven by the spike rates (spikes per neuron per step)."""
    ann_ops = layer_ops(shape, tokens)
    snn_ops = {}
    for name, (kind, _, _) in LINEARS.items():
        snn_ops[name] = ann_ops[name] * rates[kind] * steps
    snn_ops["scores"] = ann_ops["scores"] * rates["query"] * steps      # Q spikes x K counts
    snn_ops["context"] = ann_ops["context"] * rates["value"] * steps    # V spikes x probabilities
    per_kind = {}
    for name in ann_ops:
        per_kind[name] = {
            "ann_ops": ann_ops[name] * shape.layers, "snn_ops": snn_ops[name] * shape.layers,
            "ann_joules": ann_ops[name] * shape.layers * E_MAC_FP32,
            "snn_joules": snn_ops[name] * shape.layers * E_AC_FP32,
        }
    total_ann = sum(v["ann_joules"] for v in per_kind.values())
    total_snn = sum(v["snn_joules"] for v in per_kind.values())
    norm_ops = sum(v["snn_ops"] for v in per_kind.values()) / steps / sum(v["ann_ops"] for v in per_kind.values())
    return {
        "shape": shape.name, "tokens": tokens, "time_steps": steps, "per_product": per_kind,
        "ann_joules": total_ann, "snn_joules": total_snn, "ratio": total_ann / total_snn,
        "norm_ops": norm_ops, "spikingbert_efficiency": 1 / (norm_ops * steps / PAPER_RATIO),
        "int8_ann_joules": sum(v["ann_ops"] for v in per_kind.values()) * E_MAC_INT8,
        "int_snn_joules": sum(v["snn_ops"] for v in per_kind.values()) * E_AC_INT,
    }


def integer_designs(shape: Shape, tokens: int, rates: dict[str, float], nonzero: dict[str, float],
                    steps: int) -> dict[str, float]:
    """Method 1 with integer operation energies (Horowitz 45 nm int8 multiply 0.2 pJ, int32
    add 0.1 pJ) for the four designs of one inference, in joules:

    - ``spiking``: one accumulate per input spike and output (offset spike rates, as built);
    - ``bwn_dense``: the integer model as a non-spiking accelerator: one add per synapse of
      every projection, and the attention products (4-bit levels times 4-bit levels) as
      int8 multiply-accumulates;
    - ``bwn_skip_zeros``: the same, skipping zero levels (measured nonzero fractions);
    - ``mac8``: every product an int8 multiply-accumulate;
    - ``event_driven``: zero-silent graded events, one accumulate per nonzero level and
      output: the same count as ``bwn_skip_zeros``."""
    ann = layer_ops(shape, tokens)
    attention = {"scores": "query", "context": "value"}
    spiking = inference_energy(shape, tokens, rates, steps)["int_snn_joules"]
    dense = skip = 0.0
    for name, ops in ann.items():
        if name in attention:
            dense += ops * E_MAC_INT8
            skip += ops * nonzero[attention[name]] * E_MAC_INT8
        else:
            dense += ops * E_AC_INT
            skip += ops * nonzero[LINEARS[name][0]] * E_AC_INT
    return {"spiking": spiking, "bwn_dense": dense * shape.layers, "bwn_skip_zeros": skip * shape.layers,
            "mac8": sum(ann.values()) * shape.layers * E_MAC_INT8,
            # One accumulate per graded event and fan-out: the zero-skipping count exactly.
            # Operation counts cannot tell these two apart; the gates (method 2) can.
            "event_driven": skip * shape.layers}


def markdown(results: list[dict], rates: dict[str, dict[str, float]]) -> str:
    """``results``: inference_energy records with an ``encoding`` key; ``rates``: per encoding."""
    encodings = list(rates)
    lines = ["# Energy per inference", "", "## Method 1: operation counts (Horowitz 45 nm)", "",
             "Spike rates measured on the shipped student (spikes per neuron per step), for the "
             "offset encoding this hardware uses (a signed level c - 8 sent as c spikes) and for "
             "+-1 spikes (|c - 8| spikes of its sign, zero silent):", "",
             "| input of | " + " | ".join(encodings) + " |", "|---|" + "---:|" * len(encodings)]
    for kind in rates[encodings[0]]:
        lines.append(f"| {kind} | " + " | ".join(f"{rates[e][kind]:.3f}" for e in encodings) + " |")
    lines += ["", "| shape | encoding | tokens | ANN fp32 (uJ) | SNN fp32 (uJ) | ANN/SNN | Norm#OPS | "
              "SpikingBERT e | ANN int8 (uJ) | SNN int (uJ) |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['shape']} | {r['encoding']} | {r['tokens']} | {r['ann_joules'] * 1e6:.2f} | "
                     f"{r['snn_joules'] * 1e6:.2f} | {r['ratio']:.2f} | {r['norm_ops']:.3f} | "
                     f"{r['spikingbert_efficiency']:.2f} | {r['int8_ann_joules'] * 1e6:.3f} | "
                     f"{r['int_snn_joules'] * 1e6:.3f} |")
    lines += ["", f"Per product ({results[0]['shape']}, {results[0]['encoding']} encoding), energy in uJ:", "",
              "| product | ANN | SNN | ANN/SNN |", "|---|---:|---:|---:|"]
    for name, v in results[0]["per_product"].items():
        ratio = v["ann_joules"] / v["snn_joules"] if v["snn_joules"] else float("inf")
        lines.append(f"| {name} | {v['ann_joules'] * 1e6:.3f} | {v['snn_joules'] * 1e6:.3f} | {ratio:.2f} |")
    return "\n".join(lines) + "\n"


def integer_markdown(integer: dict[str, dict[str, float]]) -> str:
    """The designs by integer operation counts (:func:`integer_designs`), per shape."""
    lines = ["", "Integer operation energies (Horowitz 45 nm: int32 add 0.1 pJ, int8 multiply "
             "0.2 pJ + add), the designs of one inference (event-driven: the zero-skipping count; "
             "only the gates tell them apart):", "",
             "| shape | dense IF (uJ) | event-driven (uJ) | BWN dense (uJ) | BWN skip zeros (uJ) | "
             "8-bit MAC (uJ) | dense IF / BWN dense | dense IF / BWN skip | dense IF / 8-bit |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for shape, d in integer.items():
        lines.append(f"| {shape} | {d['spiking'] * 1e6:.2f} | {d['event_driven'] * 1e6:.2f} | "
                     f"{d['bwn_dense'] * 1e6:.2f} | {d['bwn_skip_zeros'] * 1e6:.2f} | "
                     f"{d['mac8'] * 1e6:.2f} | {d['spiking'] / d['bwn_dense']:.2f} | "
                     f"{d['spiking'] / d['bwn_skip_zeros']:.2f} | {d['spiking'] / d['mac8']:.2f} |")
    return "\n".join(lines) + "\n"


# -- Method 2: energy per element measured on the synthesized gates (synth.activity) ----------

def inference_elements(shape: Shape, tokens: int) -> dict[str, int]:
    """Elements of each block kind in one inference: synapse events (token x input x output
    of every projection, plus Q K^T and P V counted the same way), softmax scores, norm
    channel values (two norms a layer and the embedding's)."""
    ops = layer_ops(shape, tokens)
    return {"layer": sum(ops.values()) * shape.layers,
            "softmax": shape.heads * tokens * tokens * shape.layers,
            "norm": (2 * shape.layers + 1) * tokens * shape.hidden}


# Method 2's designs: the measured workload (synth.workloads label) standing for each kind.
# The BWN designs are the same integer model built without spikes, so they keep PTsoftmax
# and BSPN; the 8-bit design is the conventional one.
DESIGNS = {
    "spiking": {"layer": "if_layer", "softmax": "ptsoftmax", "norm": "bspn"},
    "bwn_dense": {"layer": "bwn_layer", "softmax": "ptsoftmax", "norm": "bspn"},
    "bwn_skip_zeros": {"layer": "bwn_layer_skip", "softmax": "ptsoftmax", "norm": "bspn"},
    "mac8": {"layer": "mac_layer", "softmax": "softmax", "norm": "layernorm"},
    # Zero-silent graded events into the event-driven IF layer (hw.event_if_layer).
    "event_driven": {"layer": "event_if_layer", "softmax": "ptsoftmax", "norm": "bspn"},
}


def activity_inference_energy(shape: Shape, tokens: int, per_element: dict[str, float]) -> dict:
    """Method 2 scaled to one inference: measured energy per element of each block times the
    elements of its kind, for every design of :data:`DESIGNS`. Every synapse event of a
    design, the attention products included, is charged at its layer's measured energy per
    synapse event on the query-projection slice (its sparsity: that slice's)."""
    elements = inference_elements(shape, tokens)
    out = {"shape": shape.name, "tokens": tokens, "elements": elements}
    for design, blocks in DESIGNS.items():
        parts = {b: elements[kind] * per_element[b] for kind, b in blocks.items()}
        out[design] = {"joules": sum(parts.values()), "by_block": parts}
    out["ratio"] = out["mac8"]["joules"] / out["spiking"]["joules"]
    return out


def activity_markdown(measured: dict[str, dict], results: list[dict]) -> str:
    lines = ["## Method 2: switching activity on the synthesized gates", "",
             "Each block's Yosys gate netlist (memories kept as macros) replays real exported "
             "vectors in Verilator (checked bit for bit) and writes SAIF; every net's toggles x "
             "1/2 C V^2 (NanGate45 pin capacitances, 1.1 V), memory accesses per bit (Horowitz "
             "2014, square-root extrapolation), and the clock gated per enable net (banks of 3 or "
             "more flip-flops, one ICG each) or ungated (`synth/activity.py`). Per-inference "
             "figures below use the gated clock.", "",
             "| workload | cells | flip-flops (gated) | elements | cycles | pJ / element, gated clock "
             "| pJ / element, ungated | clock share (gated) | memory share |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for block, r in measured.items():
        clock = r["clock_gated_j"] / r["energy_j"]
        memory = (r["by_driver"].get("memory reads", 0.0) + r["by_driver"].get("memory writes", 0.0)) / r["energy_j"]
        lines.append(f"| {block} | {r['cells']:,} | {r['flops']:,} ({r['gated_flops']:,}) | "
                     f"{r['elements']:,} | {r['cycles']:,} | {r['energy_per_element_j'] * 1e12:.3f} | "
                     f"{r['energy_per_element_ungated_j'] * 1e12:.3f} | {clock:.0%} | {memory:.0%} |")
    lines += ["", "| shape | tokens | design | layers / softmax / norms (uJ) | total (uJ) | "
              "design / dense IF | event-driven / design |", "|---|---:|---|---|---:|---:|---:|"]
    for r in results:
        for design in DESIGNS:
            parts = " / ".join(f"{v * 1e6:.3f}" for v in r[design]["by_block"].values())
            lines.append(f"| {r['shape']} | {r['tokens']} | {design} | {parts} | "
                         f"{r[design]['joules'] * 1e6:.3f} | "
                         f"{r[design]['joules'] / r['spiking']['joules']:.2f} | "
                         f"{r['event_driven']['joules'] / r[design]['joules']:.2f} |")
    return "\n".join(lines) + "\n"
