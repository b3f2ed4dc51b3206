"""Write docs/results.md and the README's results table from the figures the benchmarks
recorded (sorbet_hw/results/*.json).

    python benchmarks/results.py [--check]

``--check`` writes nothing and fails if either file differs from what the JSON gives.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sorbet_hw.results import markdown, with_headline  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DOC, README = ROOT / "docs" / "results.md", ROOT / "README.md"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    readme = README.read_text(encoding="utf-8")
    wanted = {DOC: markdown(), README: with_headline(readme)}
    stale = [p for p, text in wanted.items() if not p.is_file() or p.read_text(encoding="utf-8") != text]
    if args.check:
        for path in stale:
            print(f"{path.name}: out of date: run python benchmarks/results.py")
        return 1 if stale else 0
    for path in stale:
        path.write_text(wanted[path], encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
