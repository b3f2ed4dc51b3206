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


def _plots(results: dict, summary: dict, out: Path) -> dict[str, str]:
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    files = {}

    def save(fig, name):
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        files[name] = name

    def bars(labels, values, xlabel, title, name, colors=None, log=False):
        """Horizontal bars: long labels stay readable on the y axis."""
        fig, ax = plt.subplots(figsize=(7, 0.45 * len(labels) + 1.2))
        y = range(len(labels))
        ax.barh(y, values, color=colors or "C0")
        ax.set_yticks(list(y), labels, fontsize=8)
        ax.invert_yaxis()
        if log:
            ax.set_xscale("log")
        for i, v in enumerate(values):
            ax.annotate(_fmt(float(v)), (v, i), xytext=(3, 0), textcoords="offset points",
                        va="center", fontsize=7)
        ax.set_xlabel(xlabel)
        ax.set_title(title, fontsize=10)
        ax.margins(x=0.15)
        save(fig, name)

    training = results.get("evaluate", {}).get("training") or {}
    if training.get("stages"):
        labels, values = [], []
        if training.get("teacher"):
            labels.append("teacher")
            values.append(next(iter(training["teacher"].values())))
        for stage, metrics in training["stages"].items():
            labels.append(f"student: {stage}")
            values.append(next(iter(metrics.values())))
        labels.append("integer model (this run)")
        values.append(next(iter(results["evaluate"]["metrics"].values())))
        bars(labels, values, "dev metric (%)", "accuracy per distillation step", "accuracy.png",
             colors=["gray"] + ["C0"] * (len(values) - 2) + ["C2"])

    energy = summary.get("energy")
    if energy:
        designs = energy["designs"]
        bars([DESIGN_NAMES.get(d, d) for d in designs], [designs[d] for d in designs],
             "uJ per SST-2 inference (real size)",
             "energy per inference\n" + energy["source"].replace(", commit", ",\ncommit"),
             "energy.png", colors=["C2" if d == "event_driven" else "C0" for d in designs])

    reuse = summary.get("reuse")
    if reuse:
        from sorbet_hw.results import label
        rows = sorted(reuse["figures"]["tiles"], key=lambda x: x["tile"])
        fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
        for design, color in (("event_driven", "C2"), ("bwn_dense", "C0")):
            energy_uj = [r["per_inference_uJ"][design] for r in rows]
            cycles = [r["by_layer"][0]["traffic"][design]["projection_cycles"] for r in rows]
            left.plot([r["tile"] for r in rows], energy_uj, marker="o", color=color,
                      label=DESIGN_NAMES.get(design, design))
            right.plot(cycles, energy_uj, marker="o", color=color)
            for r, x, y in zip(rows, cycles, energy_uj):
                right.annotate(str(r["tile"]), (x, y), xytext=(3, 3), textcoords="offset points", fontsize=7)
        left.set_xscale("log", base=2)
        left.set_xlabel("tokens a tile (each weight read once a tile)")
        left.set_ylabel("uJ per SST-2 inference")
        left.legend(fontsize=7)
        right.set_xscale("log")
        right.set_xlabel("projection cycles, layer 0 (labels: tokens a tile)")
        fig.suptitle(f"weight reuse on both sides ({label(reuse)})", fontsize=9)
        save(fig, "tiles.png")

    nonzero = results.get("energy", {}).get("ops", {}).get("nonzero_levels_per_layer")
    if nonzero:
        fig, ax = plt.subplots(figsize=(7, 3.2))
        for kind, fractions in nonzero.items():
            ax.plot(range(len(fractions)), fractions, marker="o", label=kind)
        ax.set_xticks(range(len(next(iter(nonzero.values())))))
        ax.set_xlabel("encoder layer")
        ax.set_ylabel("nonzero levels (events / neuron / token)")
        ax.set_title("activation sparsity per layer: what the event-driven design skips", fontsize=10)
        ax.legend(fontsize=7, ncol=2, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        save(fig, "sparsity.png")

    synth = results.get("synth", [])
    from sorbet_hw.hw.blocks import BLOCKS
    generic = {r["block"]: r for r in synth if r["target"] == "generic"}
    pairs = [(b.baseline_of, name) for name, b in BLOCKS.items()
             if b.baseline_of and b.baseline_of in generic and name in generic]
    if pairs:
        labels, values, colors = [], [], []
        for s, b in pairs:
            labels += [f"{s} (spiking)", f"{b} (baseline)"]
            values += [generic[s]["cells"], generic[b]["cells"]]
            colors += ["C2", "C0"]
        bars(labels, values, "Yosys generic cells (log scale)", "cells of each block and its baseline",
             "cells.png", colors=colors, log=True)
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


def _count(n: int, noun: str, plural: str = "s") -> str:
    return f"{n} {noun}{'' if n == 1 else plural}"


def _last(name: str) -> dict | None:
    from sorbet_hw.results import load
    return load(name)


def summary_of(results: dict) -> dict:
    """The report's opening figures, each with where it comes from: this run, or the last
    recorded measurement (named by commit and date) where this run did not make one."""
    from sorbet_hw.results import label
    out: dict = {}
    layer = (results.get("energy") or {}).get("layer")
    if layer:
        out["energy"] = {"designs": layer["per_inference_uJ"], "tile": layer["tile"],
                         "source": "measured on gates in this run",
                         "method": f"{layer['per_inference_method']}; event and dense BWN "
                                   f"projections in tiles of {layer['tile']} tokens (Verilator SAIF "
                                   "on the Yosys netlist)"}
    else:
        last = _last("weight_reuse")
        if last:
            row = max(last["figures"]["tiles"], key=lambda x: x["tile"])
            out["energy"] = {"designs": row["per_inference_uJ"], "tile": row["tile"],
                             "source": f"last real-size measurement, {label(last)}",
                             "method": f"{row['per_inference_method']}; event and dense BWN "
                                       f"projections reading each weight once per {row['tile']} "
                                       f"tokens (`{last['command']}`)"}
    out["reuse"] = _last("weight_reuse")
    lay = results.get("layer") or {}
    if lay and not lay.get("skipped"):
        out["cycles"] = (f"{lay['cycles']:,} cycles for {lay['tokens']} tokens ({lay['engine']} "
                         f"engine, {lay['lanes']} lanes)", "this run, bit exact"
                         if lay["passed"] else "this run: MISMATCH")
    else:
        last = _last("encoder_layer")
        if last:
            f = last["figures"]
            out["cycles"] = (f"{f['cycles']:,} cycles for {f['tokens']} tokens ({f['engine']} engine, "
                             f"{f['lanes']} lanes)", f"last measurement, {label(last)}")
    fmax = []
    last = _last("encoder_layer_ecp5")
    if last:
        f = last["figures"]
        fmax.append((f"{_fmt(f['fmax_mhz'])} MHz: the whole layer 0 on the {f['device']} "
                     f"({f['lanes']} lanes)", f"last measurement, {label(last)} (`{last['command']}`)"))
    placed = [r for r in results.get("synth", []) if isinstance(r.get("fmax_mhz"), (int, float))]
    for target in dict.fromkeys(r["target"] for r in placed):
        rows = sorted((r for r in placed if r["target"] == target), key=lambda r: r["fmax_mhz"])
        fmax.append((f"{_fmt(rows[0]['fmax_mhz'])} to {_fmt(rows[-1]['fmax_mhz'])} MHz: the blocks on "
                     f"the {rows[0].get('device', target)} (slowest {rows[0]['block']})",
                     "this run: nextpnr, one placement seed"))
    if fmax:
        out["fmax"] = fmax
    return out


DESIGN_NAMES = {"event_driven": "event-driven spiking (shipped)", "bwn_dense": "BWN dense",
                "bwn_skip_zeros": "BWN skipping zeros", "mac8": "8-bit MAC",
                "spiking": "dense IF spiking"}
def fairness(tile: int) -> str:
    """What the energy comparison holds equal, and what it does not yet."""
    reuse = ("Every design reads every weight once per token." if tile <= 1 else
             f"The event-driven and the dense BWN projections both read each weight once per "
             f"{tile} tokens (BWN skipping zeros in tiles is the event engine's datapath; the "
             "8-bit MAC design reads them once per token).")
    return (f"{reuse} Same lanes (16 outputs a cycle) and 16 Kbit memory banks for the event "
            "and BWN projections. Graded events are an activation-sparse BWN: the event design "
            "wins, where it wins, by sparsity. Not yet counted: leakage (the event engine takes "
            "more cycles), the BWN and MAC designs' attention on gates (charged by operation "
            "count), pruning of dead channels.")


def _write(results: dict, tmp: Path) -> None:
    summary = summary_of(results)
    plots = _plots(results, summary, tmp)
    parts = ["<h1>sorbet-hw report</h1>"]
    pending = [stage for stage in STAGES if stage not in results]
    if pending:                     # written after every stage: say what is still to come
        parts.append(f"<p><i>In progress: {len(STAGES) - len(pending)} of {len(STAGES)} stages "
                     f"done; still to come: {html.escape(', '.join(pending))}.</i></p>")
    parts.append("<h2>Summary</h2>")
    rows = []
    ev = results.get("evaluate")
    if ev:
        rows.append(["accuracy", f"{ev['task']} dev: " + ", ".join(f"{k} {v:.2f}" for k, v in ev["metrics"].items()),
                     f"this run: the integer model ({_file(ev['checkpoint'])}) on {_file(ev['data'])}; "
                     "the spiking model equals it bit for bit"])
    benches = [*results.get("blocks", []), *results.get("replay", [])]
    lay = results.get("layer") or {}
    if lay and not lay.get("skipped"):
        benches.append(lay)
    if benches:
        exact = sum(r["passed"] for r in benches)
        rows.append(["bit exactness", f"{exact} of {len(benches)} simulations bit exact",
                     f"this run: {_count(len(results.get('blocks', [])), 'block bench', 'es')} (random "
                     f"vectors), {_count(len(results.get('replay', [])), 'replay')} of the real sentence"
                     + (", the whole encoder layer 0" if lay and not lay.get("skipped") else "")])
    energy = summary.get("energy")
    if energy:
        base = energy["designs"].get("bwn_dense")
        shown = "; ".join(f"{DESIGN_NAMES.get(d, d)} {v:.1f} uJ" + (f" ({v / base:.2f}x BWN dense)" if base else "")
                          for d, v in energy["designs"].items())
        rows.append(["energy per inference (real size)", shown, f"{energy['source']}: {energy['method']}"])
    else:
        rows.append(["energy per inference (real size)", "no real-size measurement recorded",
                     "run `sorbet-hw energy --method layer` (about an hour)"])
    if "cycles" in summary:
        rows.append(["cycles per sentence", *summary["cycles"]])
    for figure, source in summary.get("fmax", []):
        rows.append(["Fmax", figure, source])
    parts.append(_table(["", "result", "how it was obtained"], rows).replace(
        "<table>", "<table class='summary'>", 1))
    if energy:
        parts.append(f"<p><b>Fairness.</b> {html.escape(fairness(energy.get('tile', 1)))}</p>")
    for name in ("energy.png", "tiles.png", "accuracy.png"):
        if name in plots:
            parts.append(f'<img src="{name}" alt="{name[:-4]}">')
    ex = results.get("export")
    if ex:
        parts.append(f"<h2>Vectors</h2><p>{ex['instances']} block instances for "
                     f"&ldquo;{html.escape(ex['sentence'])}&rdquo; ({ex['tokens']} tokens); PTsoftmax "
                     f"row L1 distance to base-2 softmax {ex['ptsoftmax_error']['base2']:.1%}.</p>")
    if "blocks" in results or "replay" in results:
        parts.append("<h2>Simulation (bit exact against the integer model)</h2>")
        rows = [[r["block"], r["simulator"], r["vectors"], r["cycles"], r["cycles_per_beat"],
                 "pass" if r["passed"] else "FAIL"] for r in results.get("blocks", [])]
        rows += [[r["instance"], r["simulator"], r["vectors"], r["cycles"], r["cycles_per_beat"],
                  "pass" if r["passed"] else "FAIL"] for r in results.get("replay", [])]
        parts.append(_table(["block / instance", "simulator", "vectors", "cycles", "cycles/beat",
                             "result"], rows))
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
        parts.append('<img src="cells.png" alt="cells">')
    e = results.get("energy")
    if e:
        parts.append("<h2>Energy details</h2>")
        if "sparsity.png" in plots:
            parts.append('<img src="sparsity.png" alt="sparsity">')
        designs = (e.get("ops") or {}).get("integer_designs", {})
        if designs:
            shape, figures = next(iter(designs.items()))
            base = figures.get("bwn_dense")
            parts.append(f"<p>Method 1, an estimate: integer operation counts of one inference "
                         f"({html.escape(shape)}, {e['tokens']} tokens, the rates measured on "
                         f"{e['sentences']} dev sentences) x Horowitz's 45 nm energies per "
                         "operation. It counts operations only: no memory, no clock, no control, "
                         "so it cannot tell the event-driven design from BWN skipping zeros.</p>")
            parts.append(_table(["design", "uJ per inference (estimate)", "/ BWN dense"],
                                [[DESIGN_NAMES.get(d, d), v * 1e6, v / base if base else None]
                                 for d, v in figures.items()]))
        measured = (e.get("activity") or {}).get("measured")
        if measured:
            parts.append("<p>Gate-level switching of each block on a slice of layer 0 (the layers "
                         "as a 32 x 16 slice): energy per element of that slice, not an estimate "
                         "per inference.</p>")
            parts.append(_table(["block", "pJ per element (slice)"],
                                [[b, r["energy_per_element_j"] * 1e12] for b, r in measured.items()]))
    style = ("body{font-family:sans-serif;max-width:62em;margin:auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;"
             "padding:3px 8px;vertical-align:top}td{text-align:right}td:first-child,th:first-child,"
             "td:last-child,table.summary td{text-align:left}img{max-width:100%;display:block;margin:0.5em 0}")
    (tmp / "index.html").write_text(f"<!doctype html><html><head><meta charset='utf-8'>"
                                    f"<title>sorbet-hw report</title><style>{style}</style></head>"
                                    f"<body>{''.join(parts)}</body></html>\n")
