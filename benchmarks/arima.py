"""Benchmark 1: ARIMA walk-forward on the project's data (the first series), every test day.

    python -m benchmarks arima

Rows, all in one process with one BLAS thread:
- the pipeline's `arima` stage code (`walk_forward` with `pipeline.models.arima.Arima`): fit once
  per fold, then filter the fitted state over the test days; order [1, 1, 1] and `auto`;
- statsmodels re-estimated at every step (the same ARIMA(1,1,1) specification, refit on each
  day's full history): too slow to run whole, so a few steps per fold are timed and the mean is
  extrapolated to every test day;
- statsforecast's `cross_validation` with `refit` per fold, ARIMA(1,1,1) with drift and
  AutoARIMA (d = arima.d, p <= arima.max_p, q <= arima.max_q), if the bench extra is installed.

Forecasts are compared in price with the refit-every-step forecasts on the sampled days.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from benchmarks.inputs import default_inputs
from benchmarks.report import Result, ratio, stopwatch
from pipeline.models.arima import Arima
from pipeline.params import Params
from pipeline.walkforward import folds_from_json, series_from_prices, walk_forward

STEPS_PER_FOLD = 5  # refit-every-step days timed per fold (evenly spaced)
COLUMNS = ["approach", "wall s", "forecasts/s", "x faster than refit-every-step", "max |price diff| vs refit, %"]


def refit_every_step(log_price: np.ndarray, price: np.ndarray, days: list[tuple[int, int]]) -> tuple[np.ndarray, float]:
    """ARIMA(1,1,1) re-estimated for each (history start, day) on the history before the day.

    Returns the price forecasts and the mean seconds a step took.
    """
    forecasts, seconds = [], []
    for history_start, t in days:
        with stopwatch() as elapsed:
            model = Arima(order=[1, 1, 1]).fit(log_price[history_start:t])
            forecast = model.predict(log_price[history_start : t + 1], 1)[0]
        seconds.append(elapsed())
        forecasts.append(price[t - 1] * np.exp(forecast - log_price[t - 1]))
    return np.array(forecasts), float(np.mean(seconds))


def statsforecast_cv(log_price: np.ndarray, model, n_test: int, refit: int) -> np.ndarray:
    """Log-price forecasts of the last `n_test` days, refitting every `refit` days."""
    from statsforecast import StatsForecast

    frame = pd.DataFrame({"unique_id": "s", "ds": np.arange(len(log_price)), "y": log_price})
    cv = StatsForecast(models=[model], freq=1, n_jobs=1).cross_validation(df=frame, h=1, n_windows=n_test, step_size=1, refit=refit)
    return cv[model.alias].to_numpy("float64")


def run(params: Params) -> Result:
    prices, folds = default_inputs(params)
    uid = sorted(folds)[0]
    prices, folds = prices[prices.unique_id == uid].reset_index(drop=True), {uid: folds[uid]}
    series = series_from_prices(prices)[uid]
    positions = folds_from_json(folds, {uid: series})
    log_price = np.log(series.price)
    test_days = np.concatenate([np.arange(f.test_start, f.test_end + 1) for f in positions])
    n = len(test_days)
    sampled = sorted({(f.history_start, int(d)) for f in positions for d in np.linspace(f.test_start, f.test_end, STEPS_PER_FOLD).round()}, key=lambda hd: hd[1])
    at_sampled = np.searchsorted(test_days, [t for _, t in sampled])
    # statsforecast's cross-validation windows are the last n days, one after the other.
    contiguous = bool(np.array_equal(test_days, np.arange(len(log_price) - n, len(log_price))))
    result = Result(
        title=f"ARIMA walk-forward: {uid}, {len(positions)} folds, {n} one-step forecasts",
        columns=COLUMNS,
    )
    a = params.arima
    runs: dict[str, tuple[float, np.ndarray]] = {}
    with threadpool_limits(limits=1):
        reference, per_step = refit_every_step(log_price, series.price, sampled)
        for label, order in (("pipeline ARIMA(1,1,1)", [1, 1, 1]), (f"pipeline ARIMA auto (p<={a.max_p}, d={a.d}, q<={a.max_q})", "auto")):
            with stopwatch() as elapsed:
                table, _ = walk_forward(Arima(order=order, max_p=a.max_p, max_q=a.max_q, d=a.d), prices, folds, n_jobs=1, label=label)
            runs[label] = (elapsed(), table.y_hat.to_numpy())
        if contiguous:
            result.notes += _statsforecast_runs(runs, log_price, n, params)
        else:
            result.notes.append("statsforecast rows skipped: the test days are not the series' last days in one run (split.gap > 0?)")
    refit_wall = per_step * n
    result.rows.append(["statsmodels refit every step (extrapolated)", refit_wall, n / refit_wall, 1.0, 0.0])
    for label, (wall, forecast) in runs.items():
        diff = np.max(np.abs(forecast[at_sampled] / reference - 1)) * 100
        result.rows.append([label, wall, n / wall, ratio(refit_wall, wall), diff])
    result.notes.insert(0, f"refit every step: {len(sampled)} steps timed ({STEPS_PER_FOLD} per fold, evenly spaced), mean {per_step:.3f} s a step, x {n} days; differences are over those {len(sampled)} days")
    result.notes += _targets(result.rows)
    return result


def _statsforecast_runs(runs: dict, log_price: np.ndarray, n: int, params: Params) -> list[str]:
    """Adds the statsforecast rows' (seconds, price forecasts) of the last `n` days to `runs`."""
    try:
        from statsforecast.models import ARIMA, AutoARIMA
    except ImportError:
        return ["statsforecast rows skipped: not installed (`make bench` installs the bench extra)"]
    a, refit = params.arima, params.split.test_size
    with stopwatch() as compile_time:  # numba compiles on first use; not part of any row
        statsforecast_cv(log_price[:400], ARIMA(order=(1, 1, 1), include_drift=True), 50, 25)
        statsforecast_cv(log_price[:400], AutoARIMA(d=a.d, max_p=a.max_p, max_q=a.max_q, seasonal=False), 50, 25)
    models = {
        f"statsforecast ARIMA(1,1,1) drift, refit per fold ({refit})": ARIMA(order=(1, 1, 1), include_drift=True),
        f"statsforecast AutoARIMA, refit per fold ({refit})": AutoARIMA(d=a.d, max_p=a.max_p, max_q=a.max_q, seasonal=False),
    }
    for label, model in models.items():
        with stopwatch() as elapsed:
            forecast = statsforecast_cv(log_price, model, n, refit)
        runs[label] = (elapsed(), np.exp(forecast))
    return [f"statsforecast: numba compilation before timing took {compile_time():.1f} s (excluded)"]


def _targets(rows: list[list]) -> list[str]:
    wall = {row[0]: row[1] for row in rows}
    speedup = {row[0]: row[3] for row in rows}
    diff = {row[0]: row[4] for row in rows}
    fixed = next(k for k in wall if k.startswith("pipeline ARIMA(1,1,1)"))
    auto = next(k for k in wall if k.startswith("pipeline ARIMA auto"))
    notes = [
        f"target >= 70x faster than refit-every-step: {speedup[fixed]:.0f}x ({'met' if speedup[fixed] >= 70 else 'NOT met'})",
        f"target forecasts within 0.05% of refit-every-step: {diff[fixed]:.4f}% ({'met' if diff[fixed] <= 0.05 else 'NOT met'})",
    ]
    for mine, theirs in ((fixed, "statsforecast ARIMA"), (auto, "statsforecast AutoARIMA")):
        other = next((k for k in wall if k.startswith(theirs)), None)
        if other:
            r = wall[other] / wall[mine]
            notes.append(f"target no slower than {other}: {mine} is {r:.2f}x its speed ({'met' if r >= 1 else 'NOT met'})")
    return notes
