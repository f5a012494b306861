"""Stage `evaluate`: score every model's forecasts against the naive baseline and report.

    python -m pipeline.evaluate    # params: evaluate.*  ->  reports/metrics.json, reports/leaderboard.md,
                                   #   reports/evaluation.json, reports/plots/

Every `data/predictions/*.parquet` is scored: a model is on the leaderboard because it wrote a
table, under the table's file stem. The only name this module knows is the baseline's, `naive`.
Scores are computed per model overall (every forecast of every fold and series pooled), per
series and per fold, by the pure functions in `pipeline.metrics`:

- `reports/metrics.json` (the contract other tools read): per model and per series x model,
  rmse, mae, mape (a fraction), mase, directional_accuracy, rmse_vs_naive, dm_stat_vs_naive,
  dm_pvalue_vs_naive, n_forecasts. A score that is undefined is null: mase when a fold's train
  part has no price change; the vs-naive figures where the baseline has no forecast on the same
  rows, and the DM figures for the baseline itself (a forecast against itself has no test);
  directional_accuracy when every actual day was unchanged. A forecast of no change calls no
  direction and counts as wrong, so the naive baseline's directional_accuracy is 0.
- `reports/evaluation.json`: what does not belong in the contract: per-fold scores, pairwise DM
  tests, interval coverage, parameter counts, directional-accuracy day counts, ADF tests and
  seasonal strength.
- `reports/leaderboard.md`: all of it for a person, with plain-words verdicts.
- `reports/plots/`: PNGs under `images/`, and the data of the DVC plots as CSV.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from statsmodels.tsa.seasonal import STL
from statsmodels.tsa.stattools import adfuller
from threadpoolctl import threadpool_limits

from pipeline import io, leaderboard, metrics, paths, plots, tracking
from pipeline.scoring import ALPHA, BASELINE, REQUIRED_COLUMNS, fold_scales, forecast_rows, price_context, score
from pipeline.cli import UserError, run
from pipeline.params import EvaluateParams, load_params

MIN_TASKS_PER_PROCESS = 8  # per-series work (statistics, figures) goes to processes only above this



def read_predictions(directory: Path) -> tuple[dict[str, pd.DataFrame], dict[str, dict]]:
    """Every predictions table in `directory` and its metadata, keyed by model (file stem)."""
    files = sorted(Path(directory).glob("*.parquet"))
    if not files:
        raise UserError(f"{directory}: no predictions tables (run `dvc repro` to create them)")
    if plots.ACTUAL in [path.stem for path in files]:
        raise UserError(f"{Path(directory) / plots.ACTUAL}.parquet: the name {plots.ACTUAL!r} is reserved for the observed price in the plots; rename the model")
    tables = {path.stem: io.read_table(path, REQUIRED_COLUMNS) for path in files}
    return tables, {path.stem: io.read_table_metadata(path) for path in files}


def metrics_report(rows: pd.DataFrame) -> dict:
    """The contents of `reports/metrics.json`: scores per model, and per series and model."""
    return {
        "models": {model: score(group) for model, group in rows.groupby("model", sort=True)},
        "series": {
            uid: {model: score(group) for model, group in series.groupby("model", sort=True)}
            for uid, series in rows.groupby("unique_id", sort=True)
        },
    }


def pairwise_dm(rows: pd.DataFrame) -> dict:
    """DM test of every model against every other on the days both forecast.

    `result[a][b]` tests a against b: a negative statistic means a has the smaller squared
    errors. `result[b][a]` has the opposite sign and the same p-value.
    """
    errors = rows.assign(error=rows["y"] - rows["y_hat"]).pivot(index=["unique_id", "ds"], columns="model", values="error")
    models = sorted(errors.columns)
    out: dict[str, dict] = {}
    for a in models:
        out[a] = {}
        for b in models:
            if a == b:
                continue
            both = errors[[a, b]].dropna()
            test = metrics.diebold_mariano(both[a].to_numpy(), both[b].to_numpy())
            out[a][b] = {"dm_stat": test[0] if test else None, "dm_pvalue": test[1] if test else None, "n_forecasts": int(len(both))}
    return out


def model_details(rows: pd.DataFrame, descriptions: dict[str, dict]) -> dict:
    """Per model: trainable parameters (from the table's metadata), day counts of the
    directional accuracy, and interval coverage and mean width (null without intervals)."""
    out = {}
    for model, group in rows.groupby("model", sort=True):
        described = descriptions.get(model, {})
        _, n_scored, n_flat = metrics.directional_accuracy(group["y"].to_numpy(), group["y_hat"].to_numpy(), group["y_prev"].to_numpy())
        has_interval = group["y_lo"].notna().all()
        out[model] = {
            "n_params": described.get("n_params"),
            "parameter_counts": described.get("parameter_counts", {}),
            "direction_days_scored": n_scored,
            "direction_days_unchanged": n_flat,
            "interval_coverage": metrics.interval_coverage(group["y"], group["y_lo"], group["y_hi"]) if has_interval else None,
            "interval_mean_width": metrics.interval_width(group["y_lo"], group["y_hi"]) if has_interval else None,
        }
    return out


def fold_report(rows: pd.DataFrame) -> dict:
    """Scores per fold number (pooled over series) and model: `{fold: {model: scores}}`."""
    return {
        str(fold): {model: score(group) for model, group in by_fold.groupby("model", sort=True)}
        for fold, by_fold in rows.groupby("fold", sort=True)
    }


def adf(values: np.ndarray) -> dict | None:
    """Augmented Dickey-Fuller test (constant, lags by AIC): a small p-value rejects a unit root.

    `None` for a constant series, which has no variation to test.
    """
    if np.ptp(values) == 0:
        return None
    result = adfuller(values, autolag="AIC", result_object=True)
    return {"statistic": float(result.statistic), "pvalue": float(result.pvalue), "lags": int(result.lags), "n_obs": int(result.nobs)}


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


def series_report(context: pd.DataFrame, period: int, n_jobs: int = 1) -> tuple[dict, dict]:
    """Per series: ADF on log prices and log returns and the STL seasonal strength (null for a
    series shorter than two periods), for the report; and the decompositions, for the plots."""
    groups = list(context.groupby("unique_id", sort=True))
    stats = _map(_series_stats, [(rows["ds"].to_numpy(), np.log(rows["price"].to_numpy()), period) for _, rows in groups], n_jobs)
    report, parts = {}, {}
    for (uid, _), (entry, components) in zip(groups, stats, strict=True):
        report[uid] = entry
        if components is not None:
            parts[uid] = components
    return report, parts


def _series_stats(ds: np.ndarray, log_price: np.ndarray, period: int) -> tuple[dict, tuple | None]:
    """One series' entry of `series_report` and its decomposition (dates, log price, STL parts)."""
    with threadpool_limits(limits=1):  # statsmodels' small regressions are slower on 2 BLAS threads
        components = decompose(log_price, period)
        entry = {
            "n_days": int(len(log_price)),
            "adf_log_price": adf(log_price),
            "adf_log_return": adf(np.diff(log_price)),
            "seasonal_strength": None if components is None else seasonal_strength(*components[1:]),
        }
    return entry, None if components is None else (ds, log_price, *components)


def _map(func, items: list[tuple], n_jobs: int) -> list:
    """`func(*item)` for every item, in order; on `n_jobs` processes when there are enough items
    to pay for starting them (a second each: matplotlib's and statsmodels' imports)."""
    processes = n_jobs if len(items) >= 2 * MIN_TASKS_PER_PROCESS else 1
    return joblib.Parallel(n_jobs=processes)(joblib.delayed(func)(*item) for item in items)


def last_fold_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """One series' last fold as `ds`, `model`, `price`: the actual price, then each model's forecast."""
    last = rows[rows["fold"] == rows["fold"].max()]
    actual = last.drop_duplicates("ds")[["ds", "y"]].rename(columns={"y": "price"}).assign(model=plots.ACTUAL)
    forecasts = last[["ds", "model", "y_hat"]].rename(columns={"y_hat": "price"})
    return pd.concat([actual[["ds", "model", "price"]], forecasts], ignore_index=True)


def cumulative_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """One series' running sum of e² - e²_naive per model over the days both forecast."""
    paired = rows[(rows["model"] != BASELINE) & rows["y_hat_naive"].notna()].sort_values(["model", "ds"], kind="stable")
    diff = (paired["y"] - paired["y_hat"]) ** 2 - (paired["y"] - paired["y_hat_naive"]) ** 2
    return pd.DataFrame({"ds": paired["ds"], "model": paired["model"], "cum_sq_error_diff": diff.groupby(paired["model"]).cumsum()}).reset_index(drop=True)


def fold_rmse_frame(folds: dict) -> pd.DataFrame:
    """`fold`, `model`, `rmse`, `rmse_vs_naive` (NaN where undefined) from `fold_report`'s result."""
    rows = [(int(k), model, s["rmse"], s["rmse_vs_naive"]) for k, by_model in folds.items() for model, s in by_model.items()]
    return pd.DataFrame(rows, columns=["fold", "model", "rmse", "rmse_vs_naive"]).astype({"rmse_vs_naive": "float64"})


def _csv(frame: pd.DataFrame) -> str:
    if "ds" in frame:
        frame = frame.assign(ds=frame["ds"].dt.strftime("%Y-%m-%d"))
    return frame.to_csv(index=False, lineterminator="\n")


def write_plots(rows: pd.DataFrame, folds: dict, decompositions: dict, params: EvaluateParams, root: Path, n_jobs: int = 1) -> list[Path]:
    """Write every figure (PNG) and DVC plot data file (CSV) under `root`; remove stale ones.

    Figures are drawn on `n_jobs` processes when there are many (four per series).
    Returns the PNG paths in the order the leaderboard lists them.
    """
    images = root / "images"
    colors = plots.model_colors(sorted(rows["model"].unique()))
    written: dict[Path, None] = {}
    figures: list[tuple] = []  # (figure function, its arguments, PNG path), drawn at the end

    def png(make, *args, name: str) -> None:
        figures.append((make, args, images / name))
        written[images / name] = None

    def csv(frame: pd.DataFrame, path: Path) -> None:
        io.write_text(_csv(frame), path)
        written[path] = None

    fold_rmse = fold_rmse_frame(folds)
    csv(fold_rmse, root / "rmse_by_fold.csv")
    png(plots.fold_rmse_figure, fold_rmse, colors, BASELINE, name="rmse_by_fold.png")
    for uid, series in rows.groupby("unique_id", sort=True):
        last = last_fold_frame(series)
        csv(last, root / "forecast" / f"{uid}.csv")
        png(plots.forecast_figure, last, colors, f"{uid}: one-step forecasts over the last fold", name=f"forecast_{uid}.png")
        zoom_start = np.sort(last["ds"].unique())[-min(params.zoom_days, last["ds"].nunique())]
        png(plots.forecast_figure, last[last["ds"] >= zoom_start], colors, f"{uid}: the last {params.zoom_days} days", name=f"zoom_{uid}.png")
        cumulative = cumulative_frame(series)
        csv(cumulative, root / "cumulative" / f"{uid}.csv")
        starts = sorted(series.groupby("fold")["ds"].min())
        png(plots.cumulative_figure, cumulative, starts, colors, f"{uid}: cumulative squared error minus the naive forecast's", name=f"cumulative_{uid}.png")
    for uid, parts in sorted(decompositions.items()):
        png(plots.decomposition_figure, *parts, f"{uid}: STL decomposition of the log price, period {params.seasonal_period} days", name=f"decomposition_{uid}.png")
    _map(_draw, figures, n_jobs)
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in (".png", ".csv") and path not in written:
            path.unlink()  # a series or model that is gone
    return [p for p in written if p.suffix == ".png"]


def _draw(make, args: tuple, path: Path) -> None:
    plots.save_png(make(*args), path)


def main() -> None:
    all_params = load_params()
    tracker = tracking.start(all_params, "evaluate")  # before any work: an unreachable server fails fast
    params = all_params.evaluate
    prices = io.read_table(paths.PRICES, ["unique_id", "ds"])
    folds = io.read_json(paths.FOLDS)
    tables, descriptions = read_predictions(paths.PREDICTIONS)
    context = price_context(prices)
    rows = forecast_rows(tables, context, fold_scales(context, folds))
    series, decompositions = series_report(context, params.seasonal_period, all_params.parallel.n_jobs)
    for uid in sorted(set(series) - set(decompositions)):
        print(f"evaluate: warning: {uid} has fewer than 2 x evaluate.seasonal_period = {2 * params.seasonal_period} days: no decomposition", file=sys.stderr)
    report = metrics_report(rows)
    details = {
        "baseline": BASELINE,
        "alpha": ALPHA,
        "seasonal_period": params.seasonal_period,
        "models": model_details(rows, descriptions),
        "folds": fold_report(rows),
        "dm_pairwise": pairwise_dm(rows),
        "series": series,
    }
    images = write_plots(rows, details["folds"], decompositions, params, paths.PLOTS, all_params.parallel.n_jobs)
    io.write_json(report, paths.METRICS)
    io.write_json(details, paths.EVALUATION)
    io.write_text(leaderboard.render(report, details, folds, [p.relative_to(paths.REPORTS) for p in images]), paths.LEADERBOARD)
    if tracker:
        tracker.log_comparison(report, [paths.METRICS, paths.EVALUATION, paths.LEADERBOARD, paths.PLOTS])
    best = min(report["models"], key=lambda m: report["models"][m]["rmse"])
    print(f"evaluate: {len(report['models'])} models, {len(rows)} forecasts; lowest RMSE: {best} -> {paths.LEADERBOARD}")


if __name__ == "__main__":
    run(main)
