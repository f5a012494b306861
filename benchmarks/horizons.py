"""Benchmark: what forecasting three horizons costs against one, on the whole default pipeline.

    python -m benchmarks horizons

Runs in a throwaway copy of the project (`pipeline.scratch`, as `benchmarks.repro` does) with its
`params.yaml`, tracking on (the default pipeline): forced cold runs (`dvc repro --force`, every
output removed) with the project's `forecast.horizons` (A) and with `forecast.horizons: [1]` (B),
alternated A B A B so that both see the same machine. One run of each comes first and is not
counted: it logs each configuration's models to the copy's new MLflow store, which every later
forced run of that configuration links instead of logging again.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import yaml

from benchmarks.report import Result
from benchmarks.repro import ROOT, TOTAL_STAGE, remove_outputs, timed_repro
from pipeline.params import Params
from pipeline.scratch import copy_project, make_git_repo

PAIRS = 3
TARGET = 1.25  # the bound on the three-horizon pipeline's cost, as a ratio to one horizon


def _set_horizons(repo: Path, horizons: list[int]) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["forecast"]["horizons"] = horizons
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def run(params: Params) -> Result:
    several = list(params.forecast.horizons)
    configurations = {"A": several, "B": [1]}
    with tempfile.TemporaryDirectory(prefix="stockcast-bench-") as tmp:
        repo = make_git_repo(copy_project(ROOT, Path(tmp)))
        timings: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
        for round_ in range(PAIRS + 1):
            for name, horizons in configurations.items():
                _set_horizons(repo, horizons)
                if (repo / "dvc.lock").exists():  # not before the first run: nothing to remove
                    remove_outputs(repo)
                seconds = timed_repro(repo, "--force")[0]
                if round_ > 0:  # the first round logs each configuration's models: not counted
                    timings[name].append(seconds)
    ratios = [a[TOTAL_STAGE] / b[TOTAL_STAGE] for a, b in zip(timings["A"], timings["B"], strict=True)]
    ratio = statistics.median(ratios)
    result = Result(
        title=f"Forecast horizons: forced `dvc repro` with horizons {several} (A) against [1] (B)",
        columns=["stage", f"A {several} s", "B [1] s", "A / B"],
    )
    for stage in timings["A"][0]:
        a = statistics.median(run[stage] for run in timings["A"])
        b = statistics.median(run[stage] for run in timings["B"])
        result.rows.append([stage, a, b, a / b if b else None])
    result.notes = [
        f"medians of {PAIRS} forced cold runs each, alternated A B A B after one uncounted run of each; tracking on",
        f"whole-pipeline ratios A / B: {', '.join(f'{r:.2f}' for r in ratios)}, median {ratio:.2f} "
        f"(target <= {TARGET}: {'met' if ratio <= TARGET else 'NOT met'})",
    ]
    return result
