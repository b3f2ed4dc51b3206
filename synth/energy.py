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


def markdown(results: list[dict], rates: dict[str, float]) -> str:
    lines = ["# Energy per inference (operation counts, Horowitz 45 nm)", "",
             "Spike rates measured on the shipped student (spikes per neuron per step):", "",
             "| input of | rate |", "|---|---:|"]
    lines += [f"| {k} | {v:.3f} |" for k, v in rates.items()]
    lines += ["", "| shape | tokens | ANN fp32 (uJ) | SNN fp32 (uJ) | ANN/SNN | Norm#OPS | "
              "SpikingBERT e | ANN int8 (uJ) | SNN int (uJ) |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['shape']} | {r['tokens']} | {r['ann_joules'] * 1e6:.2f} | "
                     f"{r['snn_joules'] * 1e6:.2f} | {r['ratio']:.2f} | {r['norm_ops']:.3f} | "
                     f"{r['spikingbert_efficiency']:.2f} | {r['int8_ann_joules'] * 1e6:.3f} | "
                     f"{r['int_snn_joules'] * 1e6:.3f} |")
    lines += ["", "Per product (MiniLM shape), energy in uJ:", "",
              "| product | ANN | SNN | ANN/SNN |", "|---|---:|---:|---:|"]
    for name, v in results[0]["per_product"].items():
        ratio = v["ann_joules"] / v["snn_joules"] if v["snn_joules"] else float("inf")
        lines.append(f"| {name} | {v['ann_joules'] * 1e6:.3f} | {v['snn_joules'] * 1e6:.3f} | {ratio:.2f} |")
    return "\n".join(lines) + "\n"
