"""Weight reuse on both sides: energy per SST-2 inference on gates, the event-driven and the
dense BWN projections in token tiles (a weight read once a tile), every design at equal
lanes and memory banks (:func:`sorbet_hw.operations.layer_report`).

    python benchmarks/weight_reuse.py [--tiles 0,1,12,4] [--layers 0 | all] [--build DIR]
                                      [--sentences 50] [--record]

``--tiles``: tokens a tile, 0 for the whole sentence. The sentence is the first of the dev
sample whose length is the sample's mean (24 tokens for the first 50). In tiles, BWN
skipping zeros is the event engine's projection datapath; the 8-bit MAC design has no tiles
(measured once, reused). Each measurement is kept
under ``BUILD/activity`` and reused: a tile's new parts take about 2 to 10 minutes each
(a Verilator build of a large netlist and its replay).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sorbet_hw.model.checkpoint import load_packed, shipped_checkpoint  # noqa: E402
from sorbet_hw.model.glue import get_task  # noqa: E402
from sorbet_hw.operations import checkpoint_source, dev_sample, layer_report  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", default="0,1,12,4", help="tokens a tile, comma-separated; 0: the whole sentence")
    parser.add_argument("--layers", default="0", help="encoder layers to measure, or 'all'")
    parser.add_argument("--sentences", type=int, default=50, help="SST-2 dev sentences of the sample")
    parser.add_argument("--designs", default="event_driven,bwn_dense,bwn_skip_zeros,mac8",
                        help="designs to measure (the 8-bit MAC layer's netlist is the largest)")
    parser.add_argument("--build", default="build")
    from sorbet_hw.results import add_record_argument, save
    add_record_argument(parser)
    args = parser.parse_args()
    try:
        tiles = [int(x) for x in args.tiles.split(",")]
        layers = [] if args.layers == "all" else [int(x) for x in args.layers.split(",")]
    except ValueError:
        parser.error("--tiles and --layers take comma-separated integers ('all' for every layer)")
    task = get_task("sst2")
    checkpoint = shipped_checkpoint("sst2")
    model = load_packed(checkpoint, "sst2")
    sample = dev_sample(task, args.sentences)
    rows = []
    started = time.time()
    for tile in tiles:
        t0 = time.time()
        r = layer_report(task, model, checkpoint, Path(args.build), sample, tile=tile, layers=layers,
                         designs=args.designs.split(","))
        print(r.pop("markdown"))
        e = r["per_inference_uJ"]
        print(f"tile {r['tile']}: " + ", ".join(f"{d} {uj:.2f} uJ" for d, uj in e.items())
              + f"; event / BWN dense {e['event_driven'] / e['bwn_dense']:.3f} "
              f"({time.time() - t0:.0f} s)", flush=True)
        rows.append({"tile": r["tile"], "tile_asked": tile, "per_inference_uJ": e,
                     "weight_bits_read": r["weight_bits_read"],
                     "by_layer": [{k: x[k] for k in ("layer", "uJ", "by_part_uJ", "traffic")}
                                  for x in r["by_layer"]],
                     "sentence": r["sentence"], "tokens": r["tokens"], "layers": r["layers"],
                     "per_inference_method": r["per_inference_method"],
                     "dev_mean_tokens": r["dev_mean_tokens"]})
        # After every tile: an interrupted sweep keeps what it measured.
        save("weight_reuse", {"checkpoint": checkpoint_source(checkpoint), "tiles": rows,
                              "designs": args.designs.split(","), "wall_s": round(time.time() - started)},
             shipped=args.record, build=Path(args.build))
    return 0


if __name__ == "__main__":
    sys.exit(main())
