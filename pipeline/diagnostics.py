"""Stage `diagnostics`: what each price series is like, before any model: ADF tests and STL.

    python -m pipeline.diagnostics    # params: diagnostics.*  ->  reports/diagnostics/

Per series: the augmented Dickey-Fuller test of the log price and of the log return, and the
strength of the seasonal component of an STL decomposition of the log price, in
`reports/diagnostics/diagnostics.json`; the decomposition drawn in
`reports/diagnostics/decomposition_<series>.png`. It reads the prices and its own params only,
so a model change never reruns it; the evaluate stage quotes its numbers on the leaderboard.
"""

from __future__ import annotations

import math
import sys

import numpy as np
from statsmodels.tsa.seasonal import STL
from statsmodels.tsa.stattools import adfuller
from threadpoolctl import threadpool_limits

from pipeline import io, paths, plots
from pipeline.cli import run
from pipeline.params import load_params


def adf(values: np.ndarray) -> dict | None:
    """Augmented Dickey-Fuller test (constant, lags by AIC): a small p-value rejects a unit root.

    `None` for a constant series, which has no variation to test.
    """
    if np.ptp(values) == 0:
        return None
    result = adfuller(values, autolag="AIC", result_object=True)
    return {
        "statistic": float(result.statistic),
        "pvalue": float(result.pvalue),
        "lags": int(result.lags),
        "n_obs": int(result.nobs),
    }


def decompose(log_price: np.ndarray, period: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """STL trend, seasonal and residual of one series' log price; `None` if it is shorter than
    the two full periods STL needs."""
    if len(log_price) < 2 * period:
        return None
    # statsmodels' windows, with R's `stl` default jumps (a tenth of each window, interpolated
    # between): 30x faster at period 252 than smoothing at every point, the same picture.
    windows = STL(log_price, period=period).config
    jumps = {f"{name}_jump": math.ceil(windows[name] / 10) for name in ("seasonal", "trend", "low_pass")}
    fit = STL(log_price, period=period, **jumps).fit()
    return np.asarray(fit.trend), np.asarray(fit.seasonal), np.asarray(fit.resid)


def seasonal_strength(seasonal: np.ndarray, resid: np.ndarray) -> float:
    """Hyndman's strength of seasonality, max(0, 1 - var(R) / var(S + R)): 0 none, 1 all."""
    total = float(np.var(seasonal + resid))
    return max(0.0, 1.0 - float(np.var(resid)) / total) if total > 0 else 0.0


def series_stats(ds: np.ndarray, log_price: np.ndarray, period: int) -> tuple[dict, tuple | None]:
    """One series' entry of the report and its decomposition (dates, log price, STL parts)."""
    with threadpool_limits(limits=1):  # statsmodels' small regressions are slower on 2 BLAS threads
        components = decompose(log_price, period)
        entry = {
            "n_days": int(len(log_price)),
            "adf_log_price": adf(log_price),
            "adf_log_return": adf(np.diff(log_price)),
            "seasonal_strength": None if components is None else seasonal_strength(*components[1:]),
        }
    return entry, None if components is None else (ds, log_price, *components)


def _stats_and_figure(uid: str, ds: np.ndarray, log_price: np.ndarray, period: int) -> dict:
    entry, parts = series_stats(ds, log_price, period)
    if parts is not None:
        title = f"{uid}: STL decomposition of the log price, period {period} days"
        plots.save_png(plots.decomposition_figure(*parts, title), paths.decomposition(uid))
    return entry


def main() -> None:
    params = load_params()
    period = params.diagnostics.seasonal_period
    prices = io.read_table(paths.PRICES, ["unique_id", "ds"])
    column = io.target_column(prices.columns)
    groups = prices.groupby("unique_id", sort=True)
    items = [(uid, rows["ds"].to_numpy(), np.log(rows[column].to_numpy("float64")), period) for uid, rows in groups]
    entries = plots.parallel_map(_stats_and_figure, items, params.parallel.n_jobs)
    report = {"seasonal_period": period, "series": {item[0]: entry for item, entry in zip(items, entries, strict=True)}}
    for uid, entry in report["series"].items():
        if entry["seasonal_strength"] is None:
            print(
                f"diagnostics: warning: {uid} has fewer than 2 x diagnostics.seasonal_period = {2 * period} days: "
                "no decomposition",
                file=sys.stderr,
            )
    wanted = set(paths.decompositions(report))
    for stale in paths.DIAGNOSTICS.glob(paths.decomposition("*").name):
        if stale not in wanted:
            stale.unlink()  # a series that is gone
    io.write_json(report, paths.DIAGNOSTICS_JSON)
    print(f"diagnostics: {len(items)} series -> {paths.DIAGNOSTICS}/")


if __name__ == "__main__":
    run(main)
