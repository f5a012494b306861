"""`python -m benchmarks [name ...]`: run benchmarks, print their tables, update reports/bench.json."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

from benchmarks.report import markdown
from pipeline import io, paths
from pipeline.cli import UserError, run
from pipeline.params import load_params

BENCHMARKS = (
    "arima",
    "recurrent",
    "repro",
    "horizons",
    "intervals",
    "scaling",
    "backends",
    "lecture",
)  # modules of this package
OUTPUT = paths.REPORTS / "bench.json"


def main() -> None:
    names = sys.argv[1:] or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise UserError(f"usage: python -m benchmarks [{' '.join(BENCHMARKS)}] (unknown: {unknown[0]})")
    params = load_params()
    stored = json.loads(Path(OUTPUT).read_text(encoding="utf-8")) if Path(OUTPUT).exists() else {}
    for name in names:
        print(f"benchmark {name} ...", file=sys.stderr, flush=True)
        result = importlib.import_module(f"benchmarks.{name}").run(params)
        print(markdown(result), flush=True)
        stored[name] = result.to_json()
        # Written after each benchmark, in the fixed order, so a long run keeps what it measured.
        io.write_json({k: stored[k] for k in BENCHMARKS if k in stored}, OUTPUT)
    print(f"-> {OUTPUT}", file=sys.stderr)


if __name__ == "__main__":
    run(main)
