"""Benchmark 3: the whole pipeline, cold `dvc repro` per stage, tracking on and off, then a no-op.

    python -m benchmarks repro

Runs in a throwaway copy of the project (`pipeline.scratch`: its files as git lists them, without
the outputs `dvc.yaml` declares, so every stage runs), made a git repository as DVC expects, with the
project's `params.yaml` and the default MLflow store in the copy. First one cold run on a new store
(its tables created, every model logged); then `PAIRS` pairs of cold forced runs (every output
removed, `dvc repro --force`), tracking on and `STOCKCAST_TRACKING=off` alternated, so both sides
see the same machine. In those the outputs are the bytes already logged, so `track` links the
earlier model runs (as a forced rerun does) and logs a parent, a comparison and the registry.
A stage's seconds run from DVC's "Running stage" line to the next one; its memory is the peak
resident memory of DVC's child processes (the stage and any workers it starts, summed) while it
runs, sampled every `SAMPLE_SECONDS`.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import yaml

from benchmarks.report import Result, stopwatch
from pipeline.params import Params
from pipeline.scratch import copy_project, make_git_repo

SAMPLE_SECONDS = 0.05
ROOT = Path(__file__).resolve().parent.parent
STAGE_LINE = re.compile(r"^Running stage '([^']+)'")
TOTAL_STAGE = "(dvc repro, all stages)"


PAIRS = 3  # tracking on / off pairs: the share is the median of the pairs' ratios


def environment(tracking: bool = True) -> dict[str, str]:
    drop = ("MLFLOW_TRACKING_URI", "DVC_ROOT", "STOCKCAST_TRACKING")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["DVC_NO_ANALYTICS"] = "1"
    return env if tracking else {**env, "STOCKCAST_TRACKING": "off"}


def remove_outputs(repo: Path) -> None:
    """Every output `dvc.lock` lists, so that the next run is cold."""
    stages = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    for out in (out["path"] for stage in stages.values() for out in stage.get("outs", [])):
        path = repo / out
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)


def timed_repro(repo: Path, *args: str, tracking: bool = True) -> tuple[dict[str, float], dict[str, float], str]:
    """`dvc repro ARGS` in `repo`: seconds and peak MiB per stage run (in order), and the output."""
    process = subprocess.Popen(
        ["dvc", "repro", *args],
        cwd=repo,
        env=environment(tracking),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    started, peak, lines = {}, {}, []
    current = [TOTAL_STAGE]
    done = threading.Event()

    def sample() -> None:
        parent = psutil.Process(process.pid)
        while not done.is_set():
            rss = 0
            for child in parent.children(recursive=True):
                try:
                    rss += child.memory_info().rss
                except psutil.Error:  # it ended between listing and reading
                    continue
            peak[current[0]] = max(peak.get(current[0], 0.0), rss / 2**20)
            time.sleep(SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample, daemon=True)
    start = time.perf_counter()
    sampler.start()
    for line in process.stdout:
        lines.append(line)
        match = STAGE_LINE.match(line)
        if match:
            current[0] = match.group(1)
            started[current[0]] = time.perf_counter()
    process.wait()
    end = time.perf_counter()
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"dvc repro failed in {repo}:\n{''.join(lines[-30:])}")
    names = list(started)
    seconds = {
        name: (started[names[i + 1]] if i + 1 < len(names) else end) - started[name] for i, name in enumerate(names)
    }
    seconds[TOTAL_STAGE] = end - start
    peak[TOTAL_STAGE] = max(peak.values(), default=0.0)
    return seconds, peak, "".join(lines)


def run(params: Params) -> Result:
    with tempfile.TemporaryDirectory(prefix="stockcast-bench-") as tmp:
        repo = make_git_repo(copy_project(ROOT, Path(tmp)))
        first, first_peak, _ = timed_repro(repo)
        on, off = [], []
        for _ in range(PAIRS):
            for tracking, runs in ((True, on), (False, off)):
                remove_outputs(repo)
                runs.append(timed_repro(repo, "--force", tracking=tracking)[0])
        with stopwatch() as noop:
            again = subprocess.run(["dvc", "repro"], cwd=repo, env=environment(), capture_output=True, text=True)
        if again.returncode != 0 or "Running stage" in again.stdout:
            raise RuntimeError(f"the last dvc repro was not a no-op:\n{again.stdout[-2000:]}{again.stderr[-2000:]}")
    result = Result(
        title="Whole pipeline: cold `dvc repro` per stage, tracking on and off, then the no-op rerun",
        columns=["stage", "first run s (new store)", "forced, tracking on s", "forced, tracking off s", "peak MiB"],
    )
    for name in first:
        median_on = statistics.median(run[name] for run in on)
        median_off = statistics.median(run[name] for run in off)
        result.rows.append([name, first[name], median_on, median_off, first_peak.get(name)])
    result.rows.append(["no-op `dvc repro`", None, noop(), None, None])
    shares = [(a[TOTAL_STAGE] - b[TOTAL_STAGE]) / a[TOTAL_STAGE] for a, b in zip(on, off, strict=True)]
    share = statistics.median(shares)
    tracked_first = first["track"] / first[TOTAL_STAGE]
    result.notes = [
        "stage seconds: from DVC's 'Running stage' line to the next; forced columns: medians of "
        f"{PAIRS} runs, on and off alternated; memory: the first run's processes summed, sampled every 50 ms",
        f"tracking's share of a forced run, (on - off) / on: {', '.join(f'{s:.1%}' for s in shares)}, "
        f"median {share:.1%} (target <= 10%: {'met' if share <= 0.10 else 'NOT met'})",
        f"track stage's share of the first run (a new store, every model logged): {tracked_first:.1%}",
        f"no-op <= 3 s: {noop():.1f} s ({'met' if noop() <= 3 else 'NOT met'})",
    ]
    return result
