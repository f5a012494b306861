"""Benchmark 5: the 200-series run on loky and on a local Dask cluster of 1 and 2 workers.

    python -m benchmarks backends

The scaling benchmark's largest input and fast models, run under `parallel_backend` as the model
stages run them: loky with 2 processes, then a local Dask cluster (started and closed by the
pipeline) of 1 and of 2 single-threaded worker processes. Predictions must be the same bytes on
every backend. With one worker core, joblib runs the tasks in the calling process (its shortcut
for a single job), so the 1-worker row is the serial run plus the cluster's start and stop.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from benchmarks.inputs import synthetic_inputs
from benchmarks.report import Result, ratio, stopwatch
from benchmarks.scaling import SIZES, fast_models
from pipeline import io
from pipeline.parallel import parallel_backend
from pipeline.params import ParallelParams, Params
from pipeline.walkforward import walk_forward

BACKENDS = {
    "loky, 2 processes": ParallelParams(backend="loky", n_jobs=2),
    "dask local cluster, 1 worker": ParallelParams(backend="dask", n_jobs=1),
    "dask local cluster, 2 workers": ParallelParams(backend="dask", n_jobs=2),
}


def digest(table) -> str:
    """The md5 of the table as the model stages write it."""
    with tempfile.TemporaryDirectory() as tmp:
        io.write_table(table, Path(tmp) / "t.parquet")
        return hashlib.md5((Path(tmp) / "t.parquet").read_bytes()).hexdigest()


def run(params: Params) -> Result:
    n = SIZES[-1]
    prices, folds = synthetic_inputs(n, params)
    rows, digests = [], {}
    for label, parallel in BACKENDS.items():
        loop = {}
        with stopwatch() as total, parallel_backend(parallel):
            for name, model in fast_models(params).items():
                with stopwatch() as elapsed:
                    table, _ = walk_forward(model, prices, folds, n_jobs=parallel.n_jobs, label=f"{name}, {label}")
                loop[name] = elapsed()
                digests.setdefault(name, set()).add(digest(table))
        rows.append([label, *loop.values(), sum(loop.values()), total()])
    one, two = rows[1][-2], rows[2][-2]
    result = Result(
        title=f"Backends: {n} synthetic series of {params.data.n_days} days, {params.split.n_windows} folds each",
        columns=[
            "backend",
            *[f"{name} s" for name in fast_models(params)],
            "all models s",
            "with cluster start/stop s",
        ],
        rows=rows,
    )
    same = all(len(d) == 1 for d in digests.values())
    identical = ", ".join(f"{k} {next(iter(v))[:8]}" for k, v in digests.items() if len(v) == 1)
    result.notes = [
        f"predictions byte-identical across backends: {'yes' if same else 'NO'} ({identical})",
        f"speed-up of 2 Dask workers over 1 (models only): {ratio(one, two):.2f}x",
    ]
    return result
