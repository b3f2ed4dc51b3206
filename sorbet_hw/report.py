"""The main job's report: ``build/report/index.html`` with its tables and matplotlib plots.

Built from the stage results of :mod:`sorbet_hw.flow` only (no recomputation), into a
``.partial`` folder that replaces the previous report when complete.
"""
from __future__ import annotations

import html
from pathlib import Path


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def markdown_to_html(text: str) -> str:
    """The energy report's markdown (headings, paragraphs, pipe tables) as HTML tables."""
    out, table, para = [], [], []

    def flush():
        if table:
            rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in table
                    if not set(line.replace("|", "").strip()) <= set("-: ")]
            out.append(_table(rows[0], rows[1:]))
            table.clear()
        if para:
            out.append(f"<p>{html.escape(' '.join(para))}</p>")
            para.clear()
    for line in text.splitlines():
        if line.startswith("|"):
            if para:
                flush()
            table.append(line)
            continue
        if table:
            flush()
        if line.startswith("#"):
            flush()
            level = min(len(line) - len(line.lstrip("#")) + 2, 6)
            out.append(f"<h{level}>{html.escape(line.lstrip('#').strip())}</h{level}>")
        elif line.strip():
            para.append(line.strip())
        else:
            flush()
    flush()
    return "".join(out)


def _file(described) -> str:
    """A file as the stages record it: its name and the start of its content hash."""
    if isinstance(described, dict):
        return f"{described['name']} (sha256 {described['sha256'][:12]})"
    return str(described)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 1e-2 or abs(value) >= 1e4 else f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "" if value is None else str(value)


def _plots(results: dict, out: Path) -> dict[str, str]:
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    files = {}

    def save(fig, name):
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        files[name] = name

    training = results.get("evaluate", {}).get("training") or {}
    if training.get("stages"):
        labels, values = [], []
        if training.get("teacher"):
            labels.append("teacher")
            values.append(next(iter(training["teacher"].values())))
        for stage, metrics in training["stages"].items():
            labels.append(stage)
            values.append(next(iter(metrics.values())))
        labels.append("integer (this run)")
        values.append(next(iter(results["evaluate"]["metrics"].values())))
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.bar(labels, values, color=["gray"] + ["C0"] * (len(values) - 2) + ["C2"])
        ax.set_ylim(min(values) - 5, max(values) + 2)
        ax.set_ylabel("dev metric")
        ax.set_title("accuracy per distillation step")
        save(fig, "accuracy.png")

    curve = training.get("event_penalty_curve") or []
    if curve:        # the shipped student's fine-tuning with the event penalty (its sidecar)
        fig, ax = plt.subplots(figsize=(6, 3))
        for count in dict.fromkeys(r.get("count", "unit") for r in curve):   # one line a penalty
            rows = [r for r in curve if r.get("count", "unit") == count]
            ax.plot([r["graded_per_synapse"] for r in rows], [r["accuracy"] for r in rows],
                    marker="o", label=f"{count} penalty")
        ax.legend(fontsize=7)
        for r in curve:
            ax.annotate(r["label"], (r["graded_per_synapse"], r["accuracy"]), fontsize=7,
                        textcoords="offset points", xytext=(4, 4))
        ax.axhline(86, color="gray", lw=0.8, ls="--")
        ax.set_xlabel("graded events / synapse / inference (SST-2 dev)")
        ax.set_ylabel("SST-2 dev accuracy (%)")
        ax.set_title("accuracy against events (event penalty)")
        save(fig, "events.png")

    ops = results.get("energy", {}).get("ops")
    if ops:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        for kind, rates in ops["rates_per_layer"].items():
            ax.plot(range(len(rates)), rates, marker="o", label=kind)
        ax.set_xlabel("encoder layer")
        ax.set_ylabel("spikes / neuron / step")
        ax.set_title("spike rates per layer (offset encoding)")
        ax.legend(fontsize=7, ncol=3)
        save(fig, "spike_rates.png")

    synth = results.get("synth", [])
    from sorbet_hw.hw.blocks import BLOCKS
    pairs = [(b.baseline_of, name) for name, b in BLOCKS.items() if b.baseline_of]
    generic = {r["block"]: r for r in synth if r["target"] == "generic"}
    if all(s in generic and b in generic for s, b in pairs):
        import numpy as np
        fig, ax = plt.subplots(figsize=(6, 3))
        x = np.arange(len(pairs))
        ax.bar(x - 0.2, [generic[s]["cells"] for s, _ in pairs], 0.4, label="spiking")
        ax.bar(x + 0.2, [generic[b]["cells"] for _, b in pairs], 0.4, label="baseline")
        ax.set_xticks(x, [f"{s}\nvs {b}" for s, b in pairs])
        ax.set_yscale("log")
        ax.set_ylabel("Yosys generic cells")
        ax.legend()
        save(fig, "cells.png")

    activity = results.get("energy", {}).get("activity")
    if activity or ops:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        bars, labels = [], []
        if ops:
            r = next(r for r in ops["results"] if r["encoding"] == "offset")
            for design, key in (("ANN (method 1)", "ann_joules"), ("SNN (method 1)", "snn_joules")):
                bars.append({k: v[key] * 1e6 for k, v in r["per_product"].items()})
                labels.append(design)
        if activity:
            r = activity["results"][0]
            from sorbet_hw.synth.energy import DESIGNS
            for design in DESIGNS:
                bars.append({k: v * 1e6 for k, v in r[design]["by_block"].items()})
                labels.append(f"{design} (method 2)")
        for i, parts in enumerate(bars):
            bottom = 0.0
            for name, value in parts.items():
                ax.bar(i, value, bottom=bottom, label=name if i in (0, len(bars) - 1) else None)
                bottom += value
        ax.set_xticks(range(len(labels)), labels, fontsize=8)
        ax.set_ylabel("uJ per inference (MiniLM shape)")
        ax.set_title("energy by layer kind, both methods")
        ax.legend(fontsize=6, ncol=2)
        save(fig, "energy.png")
    return files


# The main job's stages, in order (sorbet_hw.flow runs them; a report may hold the first few).
STAGES = ("evaluate", "export", "blocks", "replay", "layer", "synth", "energy")


def write_report(results: dict, out: Path) -> Path:
    """Write the report into ``out``, built in a fresh sibling and swapped in when complete
    (:func:`sorbet_hw.files.staged_directory`: a directory sorbet-hw did not make is refused)."""
    from sorbet_hw.files import staged_directory
    out = Path(out)
    with staged_directory(out, kind="report") as tmp:
        _write(results, tmp)
    return out / "index.html"


def _write(results: dict, tmp: Path) -> None:
    plots = _plots(results, tmp)
    parts = ["<h1>sorbet-hw run</h1>"]
    pending = [stage for stage in STAGES if stage not in results]
    if pending:                     # written after every stage: say what is still to come
        parts.append(f"<p><i>In progress: {len(STAGES) - len(pending)} of {len(STAGES)} stages "
                     f"done; still to come: {html.escape(', '.join(pending))}.</i></p>")
    ev = results.get("evaluate")
    if ev:
        parts.append(f"<p>Model: {html.escape(_file(ev['checkpoint']))} on {html.escape(_file(ev['data']))}: "
                     f"{html.escape(', '.join(f'{k} {v:.2f}' for k, v in ev['metrics'].items()))} "
                     f"({ev['seconds']} s).</p>")
    if "accuracy.png" in plots:
        parts.append('<img src="accuracy.png">')
    if "events.png" in plots:
        parts.append('<img src="events.png">')
    ex = results.get("export")
    if ex:
        parts.append(f"<h2>Vectors</h2><p>{ex['instances']} block instances for "
                     f"&ldquo;{html.escape(ex['sentence'])}&rdquo; ({ex['tokens']} tokens); PTsoftmax "
                     f"row L1 error vs float softmax {ex['ptsoftmax_error']['base2']:.1%}.</p>")
    if "blocks" in results or "replay" in results:
        parts.append("<h2>Simulation (bit exact against the integer model)</h2>")
        rows = [[r["block"], r["simulator"], r["vectors"], r["cycles"], r["cycles_per_beat"],
                 "pass" if r["passed"] else "FAIL"] for r in results.get("blocks", [])]
        rows += [[r["instance"], r["simulator"], r["vectors"], r["cycles"], r["cycles_per_beat"],
                  "pass" if r["passed"] else "FAIL"] for r in results.get("replay", [])]
        parts.append(_table(["block / instance", "simulator", "vectors", "cycles", "cycles/beat",
                             "result"], rows))
    lay = results.get("layer", {})
    if lay and not lay.get("skipped"):
        engine = {"event": "event-driven engine: zero-silent events from block to block, event "
                  "attention, membranes in block RAM", "if": "dense IF engine: offset spike trains"}
        parts.append(f"<h2>Encoder layer 0 in RTL</h2><p>The whole spiking layer generated from the "
                     f"checkpoint ({engine.get(lay.get('engine', 'if'), lay.get('engine'))}; "
                     f"{lay['lanes']} lanes) on the sentence's {lay['tokens']} tokens: "
                     f"<b>{'bit exact' if lay['passed'] else 'FAILED'}</b> on {lay['simulator']}, "
                     f"{lay['cycles']:,} cycles ({lay['cycles_per_token']:,} per token), "
                     f"simulated in {lay['sim_seconds']} s (build {lay['build_seconds']} s).</p>")
    if "synth" in results:
        parts.append("<h2>Synthesis</h2><p>Default configurations; the IF and MAC layers at 4 lanes "
                     "x 8 inputs a cycle. Generic cells count each memory as one macro; its bits "
                     "are apart.</p>")
        parts.append(_table(["block", "target", "device", "cells", "memory bits", "LUT4", "DFF",
                             "BRAM", "Fmax MHz"],
                            [[r["block"], r["target"], r.get("device"), r["cells"], r.get("memory_bits"),
                              r.get("luts"), r.get("dffs"), r.get("brams"),
                              r.get("fmax_mhz", r.get("pnr_error"))] for r in results["synth"]]))
    if "cells.png" in plots:
        parts.append('<img src="cells.png">')
    if "energy" in results:
        parts.append("<h2>Energy</h2>")
        for name in ("spike_rates.png", "energy.png"):
            if name in plots:
                parts.append(f'<img src="{name}">')
        parts.append(markdown_to_html(results["energy"].get("markdown", "")))
    style = ("body{font-family:sans-serif;max-width:60em;margin:auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}img{max-width:100%}")
    (tmp / "index.html").write_text(f"<!doctype html><html><head><meta charset='utf-8'>"
                                    f"<title>sorbet-hw report</title><style>{style}</style></head>"
                                    f"<body>{''.join(parts)}</body></html>\n")
