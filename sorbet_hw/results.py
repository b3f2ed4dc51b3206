"""Measured results: what the benchmarks record, and ``docs/results.md`` written from it.

A benchmark run with ``--record`` writes ``sorbet_hw/results/NAME.json``: its figures with
their provenance (the command, the commit of the code that measured, whether the tree had
uncommitted changes, the date and the machine). The files ship with the package, so that
the main job's report can show the last real-size measurement when a run does not make one,
labelled with its commit and date; ``python benchmarks/results.py`` writes
``docs/results.md`` from them. Every figure appears once, under the command that made it.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]


def provenance(argv: list[str] | None = None) -> dict:
    """Who measured: the command line, the commit (and whether the tree was clean), when,
    and on what machine."""
    argv = sys.argv if argv is None else argv
    script = Path(argv[0])
    command = " ".join(["python", f"benchmarks/{script.name}" if script.suffix == ".py" else script.name,
                        *argv[1:]])

    def git(*args: str) -> str:
        try:
            out = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                                 timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return out.stdout.strip() if out.returncode == 0 else ""
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"command": command, "commit": git("rev-parse", "--short=10", "HEAD") or "unknown",
            "uncommitted_changes": bool(status),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
            "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"}


def record(name: str, figures: dict, out: Path | None = None, argv: list[str] | None = None) -> Path:
    """Write ``figures`` with their provenance as ``NAME.json`` (atomically) into ``out``
    (default: the shipped results folder)."""
    from sorbet_hw.files import atomic_write
    path = Path(out or RESULTS) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps({"benchmark": name, **provenance(argv), "figures": figures},
                                  indent=2, sort_keys=False) + "\n")
    return path


def load(name: str, folder: Path | None = None) -> dict | None:
    """A recorded result, or None if there is none (or it is damaged)."""
    from sorbet_hw.files import read_record
    return read_record(Path(folder or RESULTS) / f"{name}.json")


def label(result: dict) -> str:
    """'commit abc, 2026-12-07' (with a note if the tree had uncommitted changes)."""
    dirty = " + uncommitted changes" if result.get("uncommitted_changes") else ""
    return f"commit {result.get('commit', 'unknown')}{dirty}, {result.get('date', 'undated')}"


def add_record_argument(parser) -> None:
    """A benchmark's ``--record`` flag (see :func:`save`)."""
    parser.add_argument("--record", action="store_true",
                        help="also write the figures into sorbet_hw/results/ (shipped; the report "
                        "and docs/results.md read them)")


def save(name: str, figures: dict, *, shipped: bool, build: Path = Path("build")) -> Path:
    """A benchmark's figures: always ``BUILD/benchmarks/NAME.json``; with ``shipped`` (its
    ``--record`` flag) also the shipped results folder, which ``docs/results.md`` and the
    report read. Returns the file written last."""
    path = record(name, figures, Path(build) / "benchmarks")
    if shipped:
        path = record(name, figures)
    print(f"figures: {path}")
    return path


# -- docs/results.md ------------------------------------------------------------------------

DESIGN_NAMES = {"event_driven": "event-driven spiking layer (shipped engine)",
                "bwn_dense": "BWN, dense (the integer model as a plain accelerator)",
                "bwn_skip_zeros": "BWN, skipping zero inputs",
                "mac8": "8-bit MAC layer", "spiking": "dense IF spiking layer"}


def _n(value, digits: int = 2) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else ("yes" if value else "no")
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _accuracy(r: dict) -> list[str]:
    lines = ["| task | dev examples | student (integer = spiking) | teacher |", "|---|---:|---|---|"]
    for task, f in r["figures"].items():
        show = lambda m: ", ".join(f"{k} {v:.2f}" for k, v in m.items())   # noqa: E731
        lines.append(f"| {task} | {f['examples']:,} | {show(f['metrics'])} | {show(f['teacher'])} |")
    return lines


def _layer_on_gates(r: dict) -> list[str]:
    f = r["figures"]
    d = f["designs"]
    base = d.get("bwn_dense", {}).get("per_inference_scaled_uJ")
    lines = [f"Layer {f['layer']} of the shipped student, every part as built on gates, on the "
             f"sentence \"{f['sentence']}\" ({f['sentence_tokens']} tokens). Per inference: that "
             f"layer's energy a token x {f['layers']} layers x {f['dev_mean_tokens']} tokens (the "
             f"mean of {f['dev_sentences']} SST-2 dev sentences), the sparse designs' projections "
             "scaled by each layer's nonzero inputs on the dev sentences: an estimate built on one "
             "measured layer.", "",
             "| design | layer, uJ / sentence (measured) | nJ / token | uJ / inference (estimate) "
             "| / BWN dense |", "|---|---:|---:|---:|---:|"]
    for name, x in d.items():
        ratio = f"{x['per_inference_scaled_uJ'] / base:.3f}" if base else ""
        lines.append(f"| {DESIGN_NAMES.get(name, name)} | {x['layer_uJ']:.3f} | "
                     f"{x['nJ_per_token']:.1f} | {x['per_inference_scaled_uJ']:.2f} | {ratio} |")
    return lines


def _tile_name(row: dict) -> str:
    return f"{row['tile']} (whole sentence)" if row.get("tile_asked") == 0 else str(row["tile"])


def _weight_reuse(r: dict) -> list[str]:
    f = r["figures"]
    rows = sorted(f["tiles"], key=lambda x: x["tile"])
    first = rows[0]
    lines = [f"Energy per SST-2 inference on gates with weights reused across a tile of tokens, "
             f"on both sides: the event-driven projections and the dense BWN ones read each "
             f"weight row once a tile; in tiles, BWN skipping zeros is the event engine's projection "
             f"datapath (one implementation: graded events are compressed nonzeros), the 8-bit MAC "
             f"design has no tiles. Equal footing: {first['per_inference_method']}; the sentence \""
             f"{first['sentence']}\" ({first['tokens']} tokens, the mean of the dev sample is "
             f"{first['dev_mean_tokens']}); 16 lanes for every projection; memories in "
             "banks of 16 Kbit. Clock gated per enable; no leakage.", "",
             "| tokens a tile | event-driven uJ | BWN dense uJ | BWN skipping zeros uJ | "
             "8-bit MAC uJ | event / BWN dense | event / BWN skip | weight bits read, event / BWN "
             "dense (per inference) | all memory bits moved in layer 0, event / BWN dense | pJ a useful synaptic op, event / "
             "BWN dense (layer 0) | projection cycles, event / BWN dense (layer 0) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        e, bits = row["per_inference_uJ"], row["weight_bits_read"]
        t = row["by_layer"][0]["traffic"]
        skip = e.get("bwn_skip_zeros")
        ratio_skip = f"{e['event_driven'] / skip:.2f}x" if skip else ""
        lines.append(f"| {_tile_name(row)} | {e['event_driven']:.2f} | {e['bwn_dense']:.2f} | "
                     f"{_n(skip)} | {_n(e.get('mac8'), 1) or 'not measured'} | "
                     f"**{e['event_driven'] / e['bwn_dense']:.2f}x** | "
                     f"{ratio_skip} | {_bits(bits['event_driven'])} / "
                     f"{_bits(bits['bwn_dense'])} | {_bits(t['event_driven']['memory_bits'])} / "
                     f"{_bits(t['bwn_dense']['memory_bits'])} | {t['event_driven']['pJ_per_useful_op']:.3f} / "
                     f"{t['bwn_dense']['pJ_per_useful_op']:.3f} | "
                     f"{t['event_driven']['projection_cycles']:,} / {t['bwn_dense']['projection_cycles']:,} |")
    mono = [row for row in rows if "monolithic_over_banked" in row["by_layer"][0]["traffic"]["event_driven"]]
    if mono:
        lines += ["", "With every memory one monolithic macro instead of 16 Kbit banks (uJ per inference):", "",
                  "| tokens a tile | event-driven | BWN dense | event / BWN dense |", "|---|---:|---:|---:|"]
        for row in mono:
            t, e = row["by_layer"][0]["traffic"], row["per_inference_uJ"]
            ev = e["event_driven"] * t["event_driven"]["monolithic_over_banked"]
            bd = e["bwn_dense"] * t["bwn_dense"]["monolithic_over_banked"]
            lines.append(f"| {_tile_name(row)} | {ev:.2f} | {bd:.2f} | {ev / bd:.2f}x |")
    return lines


def _bits(n: float) -> str:
    return f"{n / 1e6:.2f} Mbit"


def _synth_ratios(r: dict) -> list[str]:
    f = r["figures"]
    b = f["blocks"]
    lines = [f"Each spiking block against its baseline on layer 0's real operands ({f['tokens']} "
             "tokens replayed for the energy; the layers as a 32 x 16 slice at 4 lanes x 8 inputs "
             "a cycle, so their energy per element is a slice's, not a whole layer's).", "",
             "| block | generic cells | memory bits | iCE40 LUT4 / DFF | iCE40 Fmax MHz | ECP5 LUT4 / DFF "
             "/ DSP | ECP5 Fmax MHz | pJ / element |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, x in b.items():
        lines.append(f"| {name} | {_n(x['cells'])} | {_n(x['memory_bits'])} | {_n(x['luts'])} / "
                     f"{_n(x['dffs'])} | {_n(x['fmax_mhz'], 1)} | {_n(x['ecp5_luts'])} / "
                     f"{_n(x['ecp5_dffs'])} / {_n(x['ecp5_dsps'])} | {_n(x['ecp5_fmax_mhz'], 1)} | "
                     f"{x['pJ/element']:.3f} |")
    lines += ["", "| spiking block | baseline | cells, baseline / spiking | energy, baseline / spiking |",
              "|---|---|---:|---:|"]
    for p in f["pairs"]:
        lines.append(f"| {p['spiking']} | {p['baseline']} | {p['cells_baseline_over_spiking']:.2f}x | "
                     f"{p['energy_baseline_over_spiking']:.2f}x |")
    return lines


def _encoder_layer(r: dict) -> list[str]:
    f = r["figures"]
    return [f"The real layer 0 ({f['engine']} engine, {f['lanes']} lanes) on \"{f['sentence']}\" "
            f"({f['tokens']} tokens) on Verilator: {'bit exact' if f['bit_exact'] else 'MISMATCH'}, "
            f"**{f['cycles']:,} cycles** ({f['cycles_per_token']:,} a token); Verilator build "
            f"{f['verilator_build_s']} s, simulation {f['simulation_s']} s."]


def _encoder_layer_ecp5(r: dict) -> list[str]:
    f = r["figures"]
    seeds = ", ".join(f"seed {s}: {v} MHz" for s, v in (f.get("fmax_by_seed") or {}).items())
    return [f"The real layer 0 ({f['engine']} engine, {f['lanes']} lanes, {f['tokens']} tokens) "
            f"through Yosys and nextpnr-ecp5 on the {f['device']}, out of context: "
            f"{_n(f['luts'])} LUT4, {_n(f['dffs'])} flip-flops, {_n(f['carries'])} carry cells, "
            f"{_n(f['brams'])} DP16KD, {_n(f['dsps'])} DSP; **Fmax {_n(f['fmax_mhz'], 1)} MHz**"
            + (f" ({seeds})" if seeds else "") + "."]


SECTIONS = {"accuracy": ("Accuracy", _accuracy),
            "weight_reuse": ("Energy per inference with weight reuse on both sides", _weight_reuse),
            "layer_on_gates": ("Energy per inference without weight reuse (one token a weight read)",
                               _layer_on_gates),
            "encoder_layer": ("The encoder layer in RTL: cycles", _encoder_layer),
            "encoder_layer_ecp5": ("The encoder layer on an FPGA", _encoder_layer_ecp5),
            "synth_ratios": ("Blocks against their baselines", _synth_ratios)}

CAVEAT = """\
**What the energy figures do not yet show.** Every design above reads every weight once per
*token*: none reuses a weight across the tokens of a sentence. An accelerator architect's
baseline keeps a weight and applies it to a tile of tokens; by this project's own energy model
that baseline is estimated to spend about half of the event-driven design's energy, and an
event engine batched the same way to come back to about 0.9x of it (`docs/energy.md`). Until
both sides reuse weights, the ratios against BWN compare two designs without weight reuse, and
the event design's advantage is its activation sparsity: against an equally sparse dense
design it can at best tie."""


def markdown(folder: Path | None = None) -> str:
    """``docs/results.md``: every recorded result, each under its command and commit."""
    folder = Path(folder or RESULTS)
    out = ["# Results", "",
           "Generated by `python benchmarks/results.py` from the JSON the benchmarks record "
           "(`sorbet_hw/results/`); do not edit by hand. Each section names the command and the "
           "commit that produced its figures.", ""]
    known = [n for n in SECTIONS if (folder / f"{n}.json").is_file()]
    others = sorted(p.stem for p in folder.glob("*.json") if p.stem not in SECTIONS)
    for name in known + others:
        r = load(name, folder)
        if r is None:
            raise ValueError(f"{folder / (name + '.json')} is not a readable result: rerun its benchmark")
        title, render = SECTIONS.get(name, (name, lambda r: ["```", json.dumps(r["figures"], indent=2), "```"]))
        out += [f"## {title}", "", f"`{r['command']}` ({label(r)}; {r['machine']})", "",
                *render(r), ""]
        if name == "layer_on_gates" and "weight_reuse" not in known:
            out += [CAVEAT, ""]
    return "\n".join(out).rstrip() + "\n"


def headline(folder: Path | None = None) -> str:
    """The README's table of headline results: one line a figure, the command beside it.
    The figures themselves, with commit and date, are in docs/results.md."""
    folder = Path(folder or RESULTS)
    rows = []
    acc = load("accuracy", folder)
    if acc:
        for task, f in acc["figures"].items():
            rows.append((f"{task} dev ({f['examples']} examples), the spiking student",
                         ", ".join(f"{k} {v:.2f} %" for k, v in f["metrics"].items()),
                         acc["command"]))
    reuse = load("weight_reuse", folder)
    verdict = None
    if reuse:
        rows_by_tile = sorted(reuse["figures"]["tiles"], key=lambda x: x["tile"])
        for row in (rows_by_tile[-1], rows_by_tile[0]):
            e = row["per_inference_uJ"]
            where = ("weights reused across the whole sentence" if row.get("tile_asked") == 0
                     else "each weight read once per token (no reuse)" if row["tile"] == 1
                     else f"weights read once per {row['tile']} tokens")
            rows.append((f"energy per SST-2 inference on gates, {where}, on both sides",
                         f"event-driven {e['event_driven']:.1f} uJ, BWN dense {e['bwn_dense']:.1f} uJ: "
                         f"**{e['event_driven'] / e['bwn_dense']:.2f}x**", reuse["command"]))
        largest = rows_by_tile[-1]
        e = largest["per_inference_uJ"]
        ratio = e["event_driven"] / e["bwn_dense"]
        reuse_words = ("weights reused across the whole sentence" if largest.get("tile_asked") == 0
                       else f"each weight read once per {largest['tile']} tokens")
        verdict = (f"**With {reuse_words} on both sides, the event-driven design "
                   f"spends {ratio:.2f}x the energy of the dense BWN accelerator"
                   + (": it loses.** " if ratio > 1 else ".** ")
                   + "Graded events are an activation-sparse BWN: the event engine does the "
                   "dense design's additions only where a level is nonzero, so whatever it wins it "
                   "wins by sparsity, and it pays for it in serial accumulation. ")
    else:
        gates = load("layer_on_gates", folder)
        if gates:
            d = gates["figures"]["designs"]
            base = d.get("bwn_dense", {}).get("per_inference_scaled_uJ")
            for name in ("event_driven", "bwn_dense", "bwn_skip_zeros", "mac8"):
                if name in d and base:
                    uj = d[name]["per_inference_scaled_uJ"]
                    rows.append((f"energy per SST-2 inference, estimated from layer 0 on gates: {DESIGN_NAMES[name]}",
                                 f"{uj:.1f} uJ ({uj / base:.2f}x BWN dense)", gates["command"]))
    layer = load("encoder_layer", folder)
    if layer:
        f = layer["figures"]
        rows.append((f"encoder layer 0 in RTL, {f['tokens']} tokens, {f['lanes']} lanes",
                     f"{f['cycles']:,} cycles, {'bit exact' if f['bit_exact'] else 'MISMATCH'}",
                     layer["command"]))
    ecp5 = load("encoder_layer_ecp5", folder)
    if ecp5:
        f = ecp5["figures"]
        rows.append((f"encoder layer 0 on the {f['device']}", f"{_n(f['fmax_mhz'], 1)} MHz, "
                     f"{_n(f['luts'])} LUT4, {_n(f['brams'])} DP16KD", ecp5["command"]))
    ratios = load("synth_ratios", folder)
    if ratios:
        for p in ratios["figures"]["pairs"]:
            rows.append((f"{p['spiking']} against {p['baseline']}",
                         f"{p['cells_baseline_over_spiking']:.2f}x fewer cells, "
                         f"{p['energy_baseline_over_spiking']:.2f}x less energy per element",
                         ratios["command"]))
    lines = ["| figure | result | reproduce with |", "|---|---|---|"]
    lines += [f"| {a} | {b} | `{c}` |" for a, b, c in rows]
    if verdict:
        lines += ["", verdict + "Details, commits and dates: [docs/results.md](docs/results.md)."]
    else:
        lines += ["", "Every design reads each weight once per token; no design reuses a weight "
                  "across a sentence's tokens. Details, commits and dates: "
                  "[docs/results.md](docs/results.md)."]
    return "\n".join(lines)


BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def with_headline(readme: str, folder: Path | None = None) -> str:
    """``readme`` with the region between the results markers rewritten."""
    start, end = readme.index(BEGIN) + len(BEGIN), readme.index(END)
    return readme[:start] + "\n" + headline(folder) + "\n" + readme[end:]
