"""Encoder layer in RTL: cycles and simulation time of one sentence through one layer.

1. The real layer 0 of the shipped SST-2 student on the default sentence, on Verilator:
   cycles, cycles per token, Verilator build and simulation wall time (goal: under 60 s),
   on the event-driven engine (the default) or the dense IF one (``--engine if``).
2. Scaling with lanes and with sentence length, measured on a demo layer of the same
   structure (hidden 64, 4 heads, FFN 256; Icarus, whose cycles equal Verilator's), beside
   the generator's estimate; the estimate then extrapolates the real layer.

3. Synthesis (``--synth``): the tiny demo layer (hidden 32, 2 heads, FFN 64, 4 tokens,
   8 lanes) through Yosys generic, iCE40 and ECP5 + nextpnr; the real layer's memory bits.
   ``--synth-real``: the real layer 0 through Yosys for the ECP5 and, on the event engine,
   nextpnr-ecp5 on the LFE5U-85F (resources, fit, Fmax; the dense IF engine does not fit).
4. Energy from measured activity (``--activity``): the tiny demo layer's gate netlist runs
   one random sentence in Icarus (bit exact), toggles x 1/2 C V^2 (:mod:`synth.activity`).

    python benchmarks/encoder_layer.py [--engine event|if] [--lanes 32] [--skip-real]
                                       [--skip-scaling] [--synth]
                                       [--synth-real [--synth-real-lanes 48] [--seeds 1,2,3]]
                                       [--activity]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sorbet_hw.hw.blocks import get_block  # noqa: E402
from sorbet_hw.hw.encoder_layer import EncoderLayer  # noqa: E402
from sorbet_hw.cli import parse_seeds  # noqa: E402
from sorbet_hw.sim.encoder_layer import make_vectors  # noqa: E402
from sorbet_hw.sim.runner import run_bench  # noqa: E402

DEMO = dict(hidden=64, heads=4, ffn=256)


def real_layer(lanes: int, build: Path, engine: str) -> dict:
    from sorbet_hw.model.checkpoint import load_packed, shipped_checkpoint
    from sorbet_hw.model.export import DEFAULT_SENTENCE, export_vectors
    from sorbet_hw.model.vectors import load_vectors
    model = load_packed(shipped_checkpoint("sst2"), "sst2")
    with tempfile.TemporaryDirectory() as tmp:
        manifest = export_vectors(model, DEFAULT_SENTENCE, Path(tmp) / "v", source="benchmark")
        vectors = load_vectors(Path(tmp) / "v" / "layer0.encoder_layer.npz")
    vectors.params.update(lanes=lanes, inputs_per_cycle=lanes, engine=engine)
    tokens = len(manifest["token_ids"])
    started = time.time()
    result = run_bench(vectors, "verilator", build_root=build)
    total = time.time() - started
    layer = EncoderLayer(**vectors.params)
    layer._MustUse__silence = True             # built for its figures, not elaborated
    estimate = layer.cycles_estimate()
    print(f"real layer 0 (384 hidden, 12 heads, FFN 1536), {engine} engine, {tokens} tokens, "
          f"{lanes} lanes:")
    print(f"  {'bit exact' if result.passed else 'MISMATCH: ' + result.first_mismatch}")
    print(f"  cycles {result.cycles:,} ({result.cycles // tokens:,} per token; estimate {estimate:,})")
    print(f"  Verilator build {result.build_seconds:.1f} s (short if reused), simulation "
          f"{result.sim_seconds:.1f} s, total {total:.1f} s")
    return {"engine": engine, "lanes": lanes, "tokens": tokens, "sentence": DEFAULT_SENTENCE,
            "bit_exact": result.passed, "cycles": result.cycles,
            "cycles_per_token": result.cycles // tokens, "cycles_estimate": estimate,
            "verilator_build_s": round(result.build_seconds, 1),
            "simulation_s": round(result.sim_seconds, 1)}


def scaling(build: Path, engine: str) -> None:
    print(f"demo layer {DEMO}, {engine} engine, one random sentence, Icarus:")
    print(f"{'tokens':>6} {'lanes':>5} {'cycles':>9} {'per token':>9} {'bound':>9} {'sim s':>6}")
    for tokens, lanes in ((4, 16), (8, 16), (16, 16), (8, 4), (8, 8), (8, 32)):
        params = get_block("encoder_layer").resolve(
            dict(DEMO, tokens=tokens, lanes=lanes, inputs_per_cycle=lanes, engine=engine))
        result = run_bench(make_vectors(params, 1, seed=tokens), "icarus", build_root=build)
        if not result.passed:
            raise SystemExit(f"mismatch at tokens={tokens} lanes={lanes}: {result.first_mismatch}")
        layer = EncoderLayer(**params)
        layer._MustUse__silence = True
        estimate = layer.cycles_estimate()
        print(f"{tokens:>6} {lanes:>5} {result.cycles:>9,} {result.cycles // tokens:>9,} "
              f"{estimate:>9,} {result.sim_seconds:>6.1f}", flush=True)


def real_layer_params(lanes: int, inputs_per_cycle: int, engine: str = "event") -> dict:
    """Layer 0 of the shipped student for the default sentence's 12 tokens."""
    from sorbet_hw.model.checkpoint import load_packed, shipped_checkpoint
    from sorbet_hw.model.encoder_layer import layer_params
    model = load_packed(shipped_checkpoint("sst2"), "sst2")
    return dict(layer_params(model, 0, 12), lanes=lanes, inputs_per_cycle=inputs_per_cycle, engine=engine)


def synthesis(build: Path, lanes: int, engine: str) -> None:
    from sorbet_hw.synth.flow import synthesize
    tiny = dict(lanes=8, inputs_per_cycle=8, engine=engine)
    print(f"tiny demo layer (hidden 32, 2 heads, FFN 64, 4 tokens, 8 lanes, {engine} engine):")
    for target in ("generic", "ice40", "ecp5"):
        started = time.time()
        r = synthesize("encoder_layer", tiny, target, build_root=build)
        extra = (f" LUT4 {r.get('luts')}, DFF {r.get('dffs')}, BRAM {r.get('brams')}, "
                 f"Fmax {r.get('fmax_mhz', r.get('pnr_error'))} on {r.get('device')}"
                 if target != "generic" else "")
        print(f"  {target}: {r['cells']:,} cells{extra} ({time.time() - started:.0f} s)", flush=True)
    layer = EncoderLayer(**get_block("encoder_layer").resolve(tiny))
    layer._MustUse__silence = True
    print(f"  memory bits: {layer.memory_bits()}")
    real = EncoderLayer(**real_layer_params(lanes, lanes, engine))
    real._MustUse__silence = True
    bits = real.memory_bits()
    print(f"real layer 0, 12 tokens: memory bits {bits} = {sum(bits.values()) / 1e6:.2f} Mbit "
          f"(iCE40 HX8K: 0.13 Mbit of block RAM; UP5K: 1.15 Mbit with SPRAM)")


def synthesis_real(build: Path, lanes: int, engine: str, seeds: tuple[int, ...]) -> dict:
    """The real layer 0 through Yosys for the ECP5 and, on the event engine, nextpnr-ecp5 on
    the LFE5U-85F. The dense IF engine's membranes in flip-flops do not fit the device: it
    gets the resource count only (about 40 minutes of Yosys on one core)."""
    from sorbet_hw.synth.flow import synthesize
    started = time.time()
    r = synthesize("encoder_layer", real_layer_params(lanes, 32, engine), "ecp5", build_root=build,
                   place_and_route=engine == "event", seeds=seeds)
    print(f"real layer 0, 12 tokens, {engine} engine, {lanes} lanes, ECP5: LUT4 {r['luts']:,}, "
          f"DFF {r['dffs']:,}, carry {r['carries']:,}, DP16KD {r['brams']}, DSP {r['dsps']}, "
          f"Fmax {r.get('fmax_mhz', r.get('pnr_error', 'not placed'))} MHz "
          f"(LFE5U-85F: 83,640 LUT4 and FF, 208 DP16KD; {time.time() - started:.0f} s)")
    if len(r.get("fmax_by_seed", {})) > 1:
        print("  Fmax by nextpnr seed: " + ", ".join(f"seed {s} {v} MHz" for s, v in r["fmax_by_seed"].items()))
    print(f"  every figure: {r}")
    return {"engine": engine, "lanes": lanes, "tokens": 12, "device": r.get("device"),
            **{k: r.get(k) for k in ("luts", "dffs", "carries", "brams", "dsps", "fmax_mhz",
                                     "fmax_by_seed", "pnr_error")},
            "wall_s": round(time.time() - started)}


def activity(build: Path) -> None:
    from sorbet_hw.synth.activity import measure
    params = get_block("encoder_layer").resolve(dict(lanes=8, inputs_per_cycle=8))
    vectors = make_vectors(params, 1, seed=7)
    started = time.time()
    r = measure(vectors, build_root=build)
    tokens, hidden = vectors.inputs.shape[1:]
    ffn = len(params["intermediate_weights"][0])
    synapses = tokens * (4 * hidden * hidden + 2 * hidden * ffn)       # per time step window
    top = sorted(r["by_driver"].items(), key=lambda kv: -kv[1])[:4]
    print(f"tiny demo layer, one sentence of {tokens} tokens on its gates ({r['cells']:,} cells, "
          f"{r['cycles']:,} cycles, {time.time() - started:.0f} s):")
    print(f"  {r['energy_j'] * 1e9:.2f} nJ a sentence, {r['energy_j'] / tokens * 1e9:.2f} nJ a token, "
          f"{r['energy_j'] / synapses * 1e12:.2f} pJ per synapse of the six projections")
    print("  largest shares: " + ", ".join(f"{k} {v / r['energy_j']:.0%}" for k, v in top))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("event", "if"), default="event")
    parser.add_argument("--lanes", type=int, default=32)
    parser.add_argument("--skip-real", action="store_true")
    parser.add_argument("--skip-scaling", action="store_true")
    parser.add_argument("--synth", action="store_true")
    parser.add_argument("--activity", action="store_true")
    parser.add_argument("--synth-real", action="store_true",
                        help="the real layer through Yosys for the ECP5 (~40 min)")
    parser.add_argument("--synth-real-lanes", type=int, default=48)
    parser.add_argument("--seeds", default="1", help="nextpnr placement seeds for --synth-real, "
                        "comma-separated (default 1; each ~10 min, two at a time on two cores)")
    parser.add_argument("--build", type=Path, default=Path("build"))
    from sorbet_hw.results import add_record_argument
    add_record_argument(parser)
    args = parser.parse_args()
    from sorbet_hw.results import save
    if not args.skip_scaling:
        scaling(args.build, args.engine)
    if not args.skip_real:
        save("encoder_layer", real_layer(args.lanes, args.build, args.engine),
             shipped=args.record, build=args.build)
    if args.synth:
        synthesis(args.build, args.lanes, args.engine)
    if args.synth_real:
        save("encoder_layer_ecp5", synthesis_real(args.build, args.synth_real_lanes, args.engine,
                                                  parse_seeds(args.seeds)),
             shipped=args.record, build=args.build)
    if args.activity:
        activity(args.build)
    return 0


if __name__ == "__main__":
    sys.exit(main())
