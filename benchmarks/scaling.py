"""Benchmark 4: time per series as the number of series grows (N = 10, 50, 200).

    python -m benchmarks scaling

Synthetic series (`data.n_days` days each, seed `data.seed`; N = 10 is a prefix of N = 50, which
is a prefix of N = 200) with the project's features and folds, through the walk-forward loop as
the model stages run it (`parallel.*`, loky by default). The fast models: naive, ARIMA of a fixed
order [1, 1, 1] (the `auto` grid costs about 9 fits per fold), and the `sklearn.*` estimator.
Flat seconds per series means the total grows linearly.
"""

from __future__ import annotations

import numpy as np

from benchmarks.inputs import synthetic_inputs
from benchmarks.report import Result, ratio, stopwatch
from pipeline.parallel import parallel_backend
from pipeline.params import Params
from pipeline.train import build_models
from pipeline.walkforward import walk_forward

SIZES = (10, 50, 200)
# A run shorter than SHORT seconds is repeated and its best kept: at 10 ms a series, naive's
# N=10 run lasts 0.1 s, and one scheduling hiccup would double its time per series.
SHORT, REPEATS = 10.0, 3


def fast_models(params: Params) -> dict:
    """naive, arima [1, 1, 1] and the sklearn stage's model, built as the stages build them."""
    fixed = params.model_copy(update={"arima": params.arima.model_copy(update={"order": [1, 1, 1]})})
    return {
        "naive": build_models("naive", params)["naive"],
        "arima [1,1,1]": build_models("arima", fixed)["arima"],
        f"sklearn {params.sklearn.estimator}": build_models("sklearn", params)["sklearn"],
    }


def run(params: Params) -> Result:
    per_series: dict[str, list[float]] = {name: [] for name in fast_models(params)}
    # Start loky's worker pool before timing: a stage pays for it once, not once per series.
    prices, folds = synthetic_inputs(1, params)
    with parallel_backend(params.parallel):
        walk_forward(fast_models(params)["naive"], prices, folds, n_jobs=params.parallel.n_jobs, label="warm-up")
    for n in SIZES:
        prices, folds = synthetic_inputs(n, params)
        for name, model in fast_models(params).items():
            best = np.inf
            for _ in range(REPEATS):
                with parallel_backend(params.parallel), stopwatch() as elapsed:
                    walk_forward(model, prices, folds, n_jobs=params.parallel.n_jobs, label=f"{name} x {n}")
                best = min(best, elapsed())
                if best >= SHORT:
                    break
            per_series[name].append(best / n)
    p = params.parallel
    result = Result(
        title=f"Scaling: seconds per series, {params.data.n_days}-day synthetic series, "
        f"{params.split.n_windows} folds of {params.split.test_size} days, {p.backend} n_jobs={p.n_jobs}",
        columns=["model", *[f"N={n}" for n in SIZES], f"N={SIZES[-1]} / N={SIZES[0]}"],
        rows=[[name, *times, ratio(times[-1], times[0])] for name, times in per_series.items()],
    )
    worst = max(row[-1] for row in result.rows)
    result.notes = [
        "wall time of the walk-forward loop divided by N, after one untimed run has started the worker pool; "
        f"runs under {SHORT:g} s: best of {REPEATS}",
        f"target flat time per series: largest N={SIZES[-1]} / N={SIZES[0]} ratio {worst:.2f} "
        f"({'met' if worst <= 1.25 else 'NOT met'}, allowing 25%)",
    ]
    return result
