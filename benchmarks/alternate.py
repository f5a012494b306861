"""Two configurations of the whole default pipeline, timed alternately: the shared loop of the
benchmarks that ask what a feature costs (`horizons`, `intervals`).

Runs in a throwaway copy of the project (`pipeline.scratch`, as `benchmarks.repro` does) with its
`params.yaml`, tracking on (the default pipeline): forced cold runs (`dvc repro --force`, every
output removed) of configuration A and configuration B (params overrides), alternated A B A B
so that both see the same machine. One run of each comes first and is not counted: it logs each
configuration's models to the copy's new MLflow store, which every later forced run of that
configuration links instead of logging again.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import yaml

from benchmarks.report import Result
from benchmarks.repro import ROOT, TOTAL_STAGE, remove_outputs, timed_repro
from pipeline.scratch import copy_project, make_git_repo

PAIRS = 3


def _configure(repo: Path, overrides: dict[str, dict], without: tuple[str, ...], dvc_yaml: dict) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for section, values in overrides.items():
        params[section].update(values)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    stages = {name: stage for name, stage in dvc_yaml["stages"].items() if name not in without}
    (repo / "dvc.yaml").write_text(yaml.safe_dump({**dvc_yaml, "stages": stages}, sort_keys=False))


def compare(title: str, a: tuple, b: tuple, target: float | None, pairs: int = PAIRS) -> Result:
    """Time configurations `a` and `b` alternately, each (label, params overrides) or (label,
    params overrides, stages left out of dvc.yaml); the table gives each stage's median seconds
    and the ratio A / B, the notes the whole pipeline's ratios against `target` (if any). Leaving a stage
    out removes its outputs too (the previous run's dvc.lock lists them), so evaluate never reads
    a table of a stage that did not run."""
    with tempfile.TemporaryDirectory(prefix="stockcast-bench-") as tmp:
        repo = make_git_repo(copy_project(ROOT, Path(tmp)))
        dvc_yaml = yaml.safe_load((repo / "dvc.yaml").read_text())
        timings: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
        for round_ in range(pairs + 1):
            for name, (_, overrides, *without) in (("A", a), ("B", b)):
                _configure(repo, overrides, tuple(*without), dvc_yaml)
                if (repo / "dvc.lock").exists():  # not before the first run: nothing to remove
                    remove_outputs(repo)
                seconds = timed_repro(repo, "--force")[0]
                if round_ > 0:  # the first round logs each configuration's models: not counted
                    timings[name].append(seconds)
    ratios = [x[TOTAL_STAGE] / y[TOTAL_STAGE] for x, y in zip(timings["A"], timings["B"], strict=True)]
    ratio = statistics.median(ratios)
    result = Result(title=title, columns=["stage", f"A: {a[0]} s", f"B: {b[0]} s", "A / B"])
    for stage in timings["A"][0]:
        median_a = statistics.median(run[stage] for run in timings["A"])
        median_b = statistics.median(run[stage] for run in timings["B"]) if stage in timings["B"][0] else None
        result.rows.append([stage, median_a, median_b, median_a / median_b if median_b else None])
    result.notes = [
        f"medians of {pairs} forced cold runs each, alternated A B A B after one uncounted run of each; tracking on",
        f"whole-pipeline seconds A: {', '.join(f'{x[TOTAL_STAGE]:.1f}' for x in timings['A'])}; "
        f"B: {', '.join(f'{y[TOTAL_STAGE]:.1f}' for y in timings['B'])}",
        f"whole-pipeline ratios A / B: {', '.join(f'{r:.2f}' for r in ratios)}, median {ratio:.2f}"
        + ("" if target is None else f" (target <= {target}: {'met' if ratio <= target else 'NOT met'})"),
    ]
    return result
