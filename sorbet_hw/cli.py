"""The `sorbet-hw` command line."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from model.glue import GlueFormatError
from model.params import ModelFileError, ParameterError
from sim.runner import BuildError
from sim.vectors import VectorFileError
from sorbet_hw.tools import ToolError

def parse_params(block: str, items: list[str]) -> dict:
    """``k=v`` strings to parameters: integers, strings, or arrays for array parameters
    (comma-separated integers, or a .npy file)."""
    from hw.blocks import get_block
    arrays = get_block(block).arrays
    params = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ParameterError(f"--param {item!r} is not of the form name=value")
        if key in arrays:
            if value.endswith(".npy"):
                if not Path(value).is_file():
                    raise ParameterError(f"--param {key}: file {value} does not exist")
                params[key] = np.load(value, allow_pickle=False)
            else:
                try:
                    params[key] = np.array([int(v) for v in value.split(",")], dtype=np.int64)
                except ValueError:
                    raise ParameterError(f"--param {key} takes comma-separated integers or a .npy "
                                         f"file, got {value!r}") from None
        else:
            try:
                params[key] = int(value, 0)
            except ValueError:
                params[key] = value
    return params


def cmd_generate(args) -> int:
    from hw.blocks import generate
    path = generate(args.block, parse_params(args.block, args.param), Path(args.output))
    print(path)
    return 0


def _bench(block: str, params: dict, simulator: str, count: int, seed: int, build: Path,
           stall: bool):
    import importlib
    from hw.blocks import get_block
    from sim.runner import run_bench
    bench = importlib.import_module(f"sim.{block}")
    resolved = get_block(block).resolve(params)
    vectors = bench.make_vectors(resolved, count, seed)
    prob = 0.8 if stall else 1.0
    return run_bench(vectors, simulator, build_root=build, valid_prob=prob, ready_prob=prob, seed=seed)


def cmd_simulate(args) -> int:
    from sim.runner import run_bench
    build = Path(args.build)
    if args.vectors:
        result = run_bench(Path(args.vectors), args.simulator, build_root=build)
    else:
        from hw.blocks import get_block
        count = args.count if args.count is not None else (
            4 if get_block(args.block).composite else 1000)      # a layer's vector: a sentence
        result = _bench(args.block, parse_params(args.block, args.param), args.simulator,
                        count, args.seed, build, stall=not args.full_speed)
    _print_results([result])
    if not result.passed:
        print(f"sorbet-hw: {result.block} failed on {result.simulator}: {result.first_mismatch}",
              file=sys.stderr)
        return 1
    return 0


def cmd_run(args) -> int:
    from sorbet_hw.flow import main
    return main(Path(args.config) if args.config else None, Path(args.build))


def cmd_train_teacher(args) -> int:
    import json
    from model.bert import load_tokenizer
    from model.glue import get_task, glue_dir, read_tsv
    from model.teacher import TrainConfig, evaluate, new_teacher, train
    task = get_task(args.task)
    if args.epochs <= 0 or args.batch_size < 1 or not 8 <= args.max_length <= 512:
        raise ParameterError("--epochs must be > 0, --batch-size >= 1, --max-length in 8..512")
    out = Path(args.output or f"build/teacher/{task.name}")
    out.mkdir(parents=True, exist_ok=True)
    data = read_tsv(task, glue_dir() / task.folder / "train.tsv")
    dev = read_tsv(task, glue_dir() / task.folder / "dev.tsv")
    cfg = TrainConfig(task=task.name, max_length=args.max_length, batch_size=args.batch_size,
                      epochs=args.epochs, learning_rate=args.lr, seed=args.seed)
    tokenizer = load_tokenizer(max_length=cfg.max_length)
    model = new_teacher(task)
    summary = train(model, task, tokenizer, data, cfg, out / "teacher.pt")
    result = {"task": task.name, "dev": evaluate(model, task, tokenizer, dev), **summary}
    (out / "metrics.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


def _stage_summary(records: dict, init: Path | None) -> tuple[dict, dict]:
    """(dev metrics, training seconds) per stage. A run continued from ``init`` lists that
    run's stages first, and the stage it trained further as "STAGE continued"."""
    import json
    earlier = {}
    if init is not None:
        for stage in ("quant", "ptsoftmax", "bspn"):
            f = init.parent / f"{stage}.json"
            if f.is_file():
                earlier[stage] = json.loads(f.read_text())["dev"]
    label = {k: f"{k} continued" if k in earlier else k for k in records}
    return ({**earlier, **{label[k]: v["dev"] for k, v in records.items()}},
            {label[k]: round(v["seconds"], 1) for k, v in records.items()})


def cmd_distill(args) -> int:
    import json
    from model.bert import load_tokenizer
    from model.distill import DistillConfig, load_teacher, run_distillation
    from model.glue import get_task, glue_dir, read_tsv
    task = get_task(args.task)
    try:
        epochs = tuple(float(e) for e in args.epochs.split(","))
    except ValueError:
        raise ParameterError(f"--epochs takes a number or one per stage (0.5,0.3,0.7), "
                             f"got {args.epochs!r}") from None
    if any(e <= 0 for e in epochs) or args.batch_size < 1 or not 8 <= args.max_length <= 512:
        raise ParameterError("--epochs must be > 0, --batch-size >= 1, --max-length in 8..512")
    out = Path(args.output or f"build/student/{task.name}")
    teacher = load_teacher(task, Path(args.teacher or f"build/teacher/{task.name}/teacher.pt"))
    data = read_tsv(task, glue_dir() / task.folder / "train.tsv")
    dev = read_tsv(task, glue_dir() / task.folder / "dev.tsv")
    cfg = DistillConfig(task=task.name, max_length=args.max_length, batch_size=args.batch_size,
                        epochs=epochs[0] if len(epochs) == 1 else epochs,
                        learning_rate=args.lr, seed=args.seed, weight_kind=args.weights)
    tokenizer = load_tokenizer(max_length=cfg.max_length)
    init = Path(args.init) if args.init else None
    student, records = run_distillation(task, teacher, tokenizer, data, dev, cfg, out,
                                        stages=args.stages.split(","), init=init)
    if student.cfg.stage == "bspn" and "bspn" in records:
        from model.checkpoint import save_packed
        from model.evaluate import evaluate_integer
        from model.integer_model import from_student
        integer = from_student(student)
        integer.meta["max_length"] = cfg.max_length
        teacher_metrics = Path(args.teacher or f"build/teacher/{task.name}/teacher.pt").parent / "metrics.json"
        stage_metrics, stage_seconds = _stage_summary(records, init)
        summary = {
            "teacher": json.loads(teacher_metrics.read_text())["dev"] if teacher_metrics.is_file() else None,
            "stages": stage_metrics,
            "integer": evaluate_integer(integer, task, dev),
            "training_seconds": stage_seconds,
            "distill_config": {k: v for k, v in vars(cfg).items()},
            **({"init": str(init)} if init else {}),
        }
        path = save_packed(integer, out / "student.npz", task=task.name, metrics=summary)
        records["packed"] = {"path": str(path), **summary}
    print(json.dumps(records, indent=2))
    return 0


def cmd_eval(args) -> int:
    import json
    import time
    from model.checkpoint import load_packed, shipped_checkpoint
    from model.evaluate import evaluate_integer
    from model.glue import get_task, glue_dir, read_tsv
    task = get_task(args.task)
    path = Path(args.checkpoint) if args.checkpoint else shipped_checkpoint(task.name)
    model = load_packed(path, task.name)
    data_path = Path(args.data) if args.data else glue_dir() / task.folder / "dev.tsv"
    data = read_tsv(task, data_path)
    started = time.time()
    if args.spiking:
        from model.evaluate import evaluate_spiking
        result = evaluate_spiking(model, task, data, args.time_steps, progress=not args.json)
    else:
        result = {"metrics": evaluate_integer(model, task, data, progress=not args.json)}
    result.update(task=task.name, checkpoint=str(path), data=str(data_path), examples=len(data),
                  model="spiking" if args.spiking else "integer",
                  seconds=round(time.time() - started, 2))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        shown = ", ".join(f"{k} {v:.2f}" for k, v in result["metrics"].items())
        print(f"{task.name} {result['model']} model on {data_path} ({len(data)} examples): {shown}")
        for kind, rates in result.get("spike_rates", {}).items():
            print(f"  spike rate {kind:<17} " + " ".join(f"{r:.3f}" for r in rates))
    return 0


def cmd_export_vectors(args) -> int:
    from model.checkpoint import load_packed, shipped_checkpoint
    from model.export import DEFAULT_SENTENCE, export_vectors
    path = Path(args.checkpoint) if args.checkpoint else shipped_checkpoint(args.task)
    model = load_packed(path)
    sentence = args.sentence if args.sentence is not None else DEFAULT_SENTENCE
    if not sentence.strip():
        raise ParameterError("--sentence is empty")
    manifest = export_vectors(model, sentence, Path(args.output), source=str(path))
    err = manifest["ptsoftmax_error"]
    print(f"{len(manifest['instances'])} block instances for {len(manifest['token_ids'])} tokens "
          f"in {args.output} (prediction {manifest['prediction']}); PTsoftmax row L1 error "
          f"{100 * err['base2']:.2f} % vs base-2 softmax, {100 * err['teacher_form']:.2f} % vs "
          f"e^(s/sqrt(d))")
    return 0


def cmd_synth(args) -> int:
    from hw.blocks import SINGLE_BLOCKS, get_block
    from synth.flow import TARGETS, markdown_table, synthesize, write_report
    blocks = list(SINGLE_BLOCKS) if args.block == "all" else [args.block]
    if args.param and args.block == "all":
        raise ParameterError("--param needs one block, not 'all'")
    targets = list(TARGETS) if args.target == "all" else [args.target]
    results = []
    for block in blocks:
        params = parse_params(block, args.param) if args.param else get_block(block).synth_params
        for target in targets:
            print(f"synthesizing {block} for {target}...", flush=True)
            results.append(synthesize(block, params, target, build_root=Path(args.build),
                                      place_and_route=not args.no_pnr))
    json_path, md_path = write_report(results, Path(args.build) / "synth")
    print(markdown_table(results))
    print(f"report: {md_path} and {json_path}")
    return 0


def energy_report(task, model, checkpoint: Path, build: Path, *, sentences: int, method: str,
                  sample_tokens: int, sentence: str | None = None) -> dict:
    """Both energy methods for ``model``; writes build/energy/energy.{json,md}, returns the
    report (also the main job's energy stage)."""
    import json
    from model.evaluate import evaluate_spiking, tokenize
    from model.glue import Examples, glue_dir, read_tsv
    from synth import energy
    if sentences < 1:
        raise ParameterError("--sentences must be at least 1")
    if not 1 <= sample_tokens <= 64:
        raise ParameterError("--sample-tokens must lie in 1..64")
    dev = read_tsv(task, glue_dir() / task.folder / "dev.tsv")
    n = min(sentences, len(dev))
    sample = Examples(dev.text_a[:n], dev.text_b[:n] if dev.text_b else None, dev.labels[:n])
    tokens = round(sum(len(ids) for ids, _ in tokenize(model, sample)) / n)
    shapes = (energy.MINILM, energy.BERT_BASE)
    report: dict = {"sentences": n, "tokens": tokens}
    text = ""
    if method in ("ops", "both"):
        spiking = evaluate_spiking(model, task, sample, progress=True)
        rates = {"offset": energy.mean_rates(spiking["spike_rates"]),
                 "+-1 spikes": energy.mean_rates(spiking["signed_spike_rates"])}
        results = [{**energy.inference_energy(shape, tokens, r, spiking["time_steps"]), "encoding": enc}
                   for shape in shapes for enc, r in rates.items()]
        report["ops"] = {"rates": rates, "rates_per_layer": spiking["spike_rates"],
                         "signed_rates_per_layer": spiking["signed_spike_rates"], "results": results}
        text += energy.markdown(results, rates)
    if method in ("activity", "both"):
        from model.export import DEFAULT_SENTENCE, export_vectors
        from synth.activity import measure
        from synth.workloads import pairs
        vectors = Path(build) / "energy" / "vectors"
        export_vectors(model, sentence or DEFAULT_SENTENCE, vectors, source=str(Path(checkpoint).name))
        measured = {}
        for spiking_vectors, baseline_vectors in pairs(vectors, tokens=sample_tokens):
            for v in (spiking_vectors, baseline_vectors):
                print(f"gate-level activity of {v.block} ({len(v)} vectors)...", flush=True)
                measured[v.block] = measure(v, build_root=Path(build))
        per_element = {b: r["energy_per_element_j"] for b, r in measured.items()}
        results = [energy.activity_inference_energy(shape, tokens, per_element) for shape in shapes]
        report["activity"] = {"measured": measured, "results": results}
        text += ("\n" if text else "# Energy per inference\n\n") + energy.activity_markdown(measured, results)
    out = Path(build) / "energy"
    out.mkdir(parents=True, exist_ok=True)
    for path, body in ((out / "energy.json", json.dumps(report, indent=2)), (out / "energy.md", text)):
        tmp = path.with_name(path.name + ".partial")
        tmp.write_text(body)
        tmp.replace(path)
    report["markdown"] = text
    return report


def cmd_energy(args) -> int:
    from model.checkpoint import load_packed, shipped_checkpoint
    from model.glue import get_task
    task = get_task(args.task)
    checkpoint = Path(args.checkpoint) if args.checkpoint else shipped_checkpoint(task.name)
    model = load_packed(checkpoint, task.name)
    report = energy_report(task, model, checkpoint, Path(args.build), sentences=args.sentences,
                           method=args.method, sample_tokens=args.sample_tokens)
    print(report["markdown"])
    print(f"report: {Path(args.build) / 'energy' / 'energy.md'}")
    return 0


def _print_results(results) -> None:
    header = f"{'block':<10} {'simulator':<10} {'vectors':>8} {'cycles':>9} {'cyc/beat':>9} {'result':>7}"
    print(header)
    print("-" * len(header))
    for r in results:
        status = "pass" if r.passed else "FAIL"
        print(f"{r.block:<10} {r.simulator:<10} {r.vectors:>8} {r.cycles:>9} "
              f"{r.cycles_per_beat:>9.2f} {status:>7}")


def build_parser() -> argparse.ArgumentParser:
    from hw.blocks import BLOCKS
    parser = argparse.ArgumentParser(prog="sorbet-hw", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write a block's Verilog")
    gen.add_argument("block", choices=list(BLOCKS))
    gen.add_argument("--param", action="append", metavar="NAME=VALUE",
                     help="generator parameter (repeatable); arrays as 1,-1,... or FILE.npy")
    gen.add_argument("-o", "--output", default="build/verilog", help="output directory")
    gen.set_defaults(func=cmd_generate)

    simp = sub.add_parser("simulate", help="run a block's cocotb bench against the reference")
    simp.add_argument("block", choices=list(BLOCKS))
    simp.add_argument("--param", action="append", metavar="NAME=VALUE")
    simp.add_argument("--simulator", choices=["verilator", "icarus"], default="verilator")
    simp.add_argument("--count", type=int, default=None,
                      help="random vectors (default 1000; 4 sentences for encoder_layer)")
    simp.add_argument("--seed", type=int, default=1)
    simp.add_argument("--vectors", help="replay this vector file instead of random vectors")
    simp.add_argument("--full-speed", action="store_true", help="no random stalls")
    simp.add_argument("--build", default="build")
    simp.set_defaults(func=cmd_simulate)

    teach = sub.add_parser("train-teacher", help="fine-tune the MiniLM teacher on a GLUE task "
                           "(resumes from OUTPUT/teacher.pt)")
    teach.add_argument("--task", default="sst2")
    teach.add_argument("--epochs", type=float, default=1.0)
    teach.add_argument("--batch-size", type=int, default=32)
    teach.add_argument("--max-length", type=int, default=64)
    teach.add_argument("--lr", type=float, default=5e-5)
    teach.add_argument("--seed", type=int, default=0)
    teach.add_argument("-o", "--output", help="default: build/teacher/TASK")
    teach.set_defaults(func=cmd_train_teacher)

    dist = sub.add_parser("distill", help="multi-step distillation of the spiking student "
                          "(resumes; finished stages are skipped)")
    dist.add_argument("--task", default="sst2")
    dist.add_argument("--teacher", help="default: build/teacher/TASK/teacher.pt")
    dist.add_argument("--stages", default="quant,ptsoftmax,bspn")
    dist.add_argument("--epochs", default="0.3",
                      help="epochs per stage: one number, or one per stage (0.5,0.3,0.7)")
    dist.add_argument("--batch-size", type=int, default=32)
    dist.add_argument("--max-length", type=int, default=64)
    dist.add_argument("--lr", type=float, default=2e-4)
    dist.add_argument("--weights", choices=["binary", "ternary"], default="binary")
    dist.add_argument("--seed", type=int, default=0)
    dist.add_argument("--init", help="start the first stage from this STAGE.pt of an earlier run "
                      "(to train a finished stage further)")
    dist.add_argument("-o", "--output", help="default: build/student/TASK")
    dist.set_defaults(func=cmd_distill)

    ev = sub.add_parser("eval", help="evaluate a packed student on a GLUE TSV (default: the "
                        "shipped checkpoint on the task's dev set)")
    ev.add_argument("--task", default="sst2")
    ev.add_argument("--checkpoint", help="packed .npz (default: the shipped one)")
    ev.add_argument("--data", help="a TSV in the task's GLUE layout (default: its dev.tsv)")
    ev.add_argument("--spiking", action="store_true",
                    help="run the spike-level simulation and report spike rates")
    ev.add_argument("--time-steps", type=int, help="T for --spiking (default: the model's)")
    ev.add_argument("--json", action="store_true", help="print JSON")
    ev.set_defaults(func=cmd_eval)

    exp = sub.add_parser("export-vectors", help="write every block instance's vectors for one "
                         "real sentence (default: the shipped SST-2 model, a dev sentence)")
    exp.add_argument("--sentence", help="text to run (default: a fixed SST-2 dev sentence)")
    exp.add_argument("--checkpoint", help="packed .npz (default: the shipped one for --task)")
    exp.add_argument("--task", default="sst2")
    exp.add_argument("-o", "--output", default="build/vectors", help="output directory")
    exp.set_defaults(func=cmd_export_vectors)

    syn = sub.add_parser("synth", help="synthesize blocks with Yosys (generic gates, iCE40 and "
                         "ECP5 + nextpnr Fmax) and write build/synth/synth.{json,md}")
    syn.add_argument("block", choices=["all", *BLOCKS])
    syn.add_argument("--target", choices=["generic", "ice40", "ecp5", "all"], default="all")
    syn.add_argument("--param", action="append", metavar="NAME=VALUE")
    syn.add_argument("--no-pnr", action="store_true", help="skip nextpnr (no Fmax)")
    syn.add_argument("--build", default="build")
    syn.set_defaults(func=cmd_synth)

    en = sub.add_parser("energy", help="energy per inference by operation counts x measured "
                        "spike rates, and by gate-level switching activity (build/energy/)")
    en.add_argument("--task", default="sst2")
    en.add_argument("--checkpoint", help="packed .npz (default: the shipped one)")
    en.add_argument("--sentences", type=int, default=50, help="dev sentences to measure rates on")
    en.add_argument("--method", choices=["ops", "activity", "both"], default="both",
                    help="ops: operation counts x spike rates; activity: gate-level switching "
                         "on exported vectors (several minutes)")
    en.add_argument("--sample-tokens", type=int, default=4,
                    help="tokens of the exported sentence replayed on the gates")
    en.add_argument("--build", default="build")
    en.set_defaults(func=cmd_energy)

    run = sub.add_parser("run", help="the main job: evaluate, export vectors, generate and "
                         "simulate every block, synthesize, estimate energy, write build/report/")
    run.add_argument("--config", help="TOML file overriding the defaults (see README)")
    run.add_argument("--build", default="build")
    run.set_defaults(func=cmd_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ParameterError, ToolError, VectorFileError, BuildError, GlueFormatError,
            ModelFileError) as e:
        print(f"sorbet-hw: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sorbet-hw: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
