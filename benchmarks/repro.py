"""Benchmark 3: the whole pipeline, cold `dvc repro` per stage, then the no-op `dvc repro`.

    python -m benchmarks repro

Runs in a throwaway copy of the project (`pipeline.scratch`: its files as git lists them, without
the outputs `dvc.yaml` declares, so every stage runs), made a git repository as DVC expects, with the
project's `params.yaml` and the default MLflow store in the copy. A stage's seconds run from
DVC's "Running stage" line to the next one; its memory is the peak resident memory of DVC's child
processes (the stage and any workers it starts, summed) while it runs, sampled every
`SAMPLE_SECONDS`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from benchmarks.report import Result, stopwatch
from pipeline.params import Params
from pipeline.scratch import copy_project, make_git_repo

SAMPLE_SECONDS = 0.05
ROOT = Path(__file__).resolve().parent.parent
STAGE_LINE = re.compile(r"^Running stage '([^']+)'")
TOTAL_STAGE = "(dvc repro, all stages)"


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "DVC_ROOT")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["DVC_NO_ANALYTICS"] = "1"
    return env


def timed_repro(repo: Path) -> tuple[dict[str, float], dict[str, float], str]:
    """`dvc repro` in `repo`: seconds and peak MiB per stage run (in order), and the output."""
    process = subprocess.Popen(
        ["dvc", "repro"],
        cwd=repo,
        env=environment(),
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
        seconds, peak, _ = timed_repro(repo)
        with stopwatch() as noop:
            again = subprocess.run(["dvc", "repro"], cwd=repo, env=environment(), capture_output=True, text=True)
        if again.returncode != 0 or "Running stage" in again.stdout:
            raise RuntimeError(f"the second dvc repro was not a no-op:\n{again.stdout[-2000:]}{again.stderr[-2000:]}")
    result = Result(
        title="Whole pipeline: cold `dvc repro` per stage, then the no-op rerun",
        columns=["stage", "seconds", "peak memory MiB"],
        rows=[[name, seconds[name], peak.get(name)] for name in seconds],
    )
    result.rows.append(["no-op `dvc repro`", noop(), None])
    cold = seconds[TOTAL_STAGE]
    result.notes = [
        "stage seconds: from DVC's 'Running stage' line to the next; "
        "memory: the stage's processes summed (loky or Dask workers included), sampled every 50 ms",
        f"target cold <= 90 s: {cold:.0f} s ({'met' if cold <= 90 else 'NOT met'}); "
        f"no-op <= 3 s: {noop():.1f} s ({'met' if noop() <= 3 else 'NOT met'})",
    ]
    return result
