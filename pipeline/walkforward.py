"""The one walk-forward loop: fit on each fold's train part, forecast every horizon from each cutoff.

The loop knows no model by name; it calls only the model contract (`pipeline.models`):
`fit(y_train, X_train)` on the log prices of the fold's train part, then `predict(y, n, X)` for
the forecasts of every horizon from each of the fold's `n` cutoffs (the day before each test
day), each from the values up to its cutoff. `X` holds the rows of the features table aligned
with `y` (row i: the inputs whose lags end the day before i) for the models that read it, else
`None`. Forecasts are mapped back to prices here, the same way for every model, so every table
is in price units. A fold's table keeps, for each horizon h, the forecasts whose target is a
test day: from cutoffs on or after the day before the first test day, so n - h + 1 of them.

Prediction intervals (`Intervals`) come from the same loop for every model: each fold's
forecasts are calibrated on the out-of-sample errors of the fold before it (`pipeline.intervals`),
which lie inside the fold's train part; the first fold's on an extra calibration fold, the last
test-part-sized stretch of its train part forecast by the model refit on what precedes it. Where
the method is `model`, a model with its own intervals (ARIMA) keeps those.

(series, fold) tasks run through joblib, where `pipeline.parallel` says: serially, on local
processes (loky), or on a Dask cluster. Each task is a pure function of its inputs, so every
backend gives the same bytes.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import joblib
import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from pipeline import intervals as conformal
from pipeline import io, paths
from pipeline.cli import UserError

PREDICTION_COLUMNS = ["unique_id", "ds", "cutoff", "h", "fold", "y", "y_hat"]  # then the interval columns
CALIBRATION = -1  # the fold number of each series' calibration fold (never in a table)
MIN_CALIBRATION_TRAIN_DAYS = 20  # what the calibration fold's model must at least train on


@dataclass(frozen=True)
class Intervals:
    """How the loop makes prediction intervals: `method` (`conformal`, `aci`, or `model`: a
    model's own where it has them, else conformal), `levels` in percent, ACI's step `gamma`."""

    method: str
    levels: tuple[float, ...]
    gamma: float

    def own(self, model) -> bool:
        """Whether `model`'s intervals are its own (and need no calibration)."""
        return self.method == "model" and model.own_intervals

    def label(self, model) -> str:
        """The method `model`'s bounds come from: `gaussian` (its own), `conformal` or `aci`."""
        return "gaussian" if self.own(model) else ("conformal" if self.method == "model" else self.method)


@dataclass(frozen=True)
class Fold:
    """One fold of one series, as positions in that series' price arrays (inclusive ends)."""

    unique_id: str
    fold: int
    history_start: int
    train_end: int
    test_start: int
    test_end: int


@dataclass(frozen=True)
class Series:
    unique_id: str
    ds: np.ndarray  # datetime64[ns]
    price: np.ndarray  # float64, the forecast-target price column
    inputs: np.ndarray | None = None  # (days, columns) features-table rows by day, NaN without one

    def __sizeof__(self) -> int:
        # Count the arrays: joblib's Dask backend scatters a task argument to the cluster once
        # (and then passes a reference) only when its size says it is large.
        extra = 0 if self.inputs is None else self.inputs.nbytes
        return object.__sizeof__(self) + self.ds.nbytes + self.price.nbytes + extra


def series_from_prices(prices: pd.DataFrame) -> dict[str, Series]:
    """Each series' dates and target prices, keyed by `unique_id`."""
    column = io.target_column(prices.columns)
    return {
        unique_id: Series(unique_id, rows["ds"].to_numpy("datetime64[ns]"), rows[column].to_numpy("float64"))
        for unique_id, rows in prices.groupby("unique_id", sort=True)
    }


def with_inputs(series: dict[str, Series], table: pd.DataFrame, columns: list[str]) -> dict[str, Series]:
    """Each series with its rows of the features table (`columns`), aligned with its price days."""
    rows = {uid: frame for uid, frame in table.groupby("unique_id", sort=False)}
    out = {}
    for uid, s in series.items():
        inputs = np.full((len(s.ds), len(columns)), np.nan)
        if uid in rows:
            frame = rows[uid]
            at = np.searchsorted(s.ds, frame["ds"].to_numpy("datetime64[ns]"))
            if (at >= len(s.ds)).any() or not np.array_equal(
                s.ds[np.minimum(at, len(s.ds) - 1)], frame["ds"].to_numpy("datetime64[ns]")
            ):
                raise UserError(
                    f"{paths.WINDOWS}: {uid} has rows for days not in {paths.PRICES} (rerun `dvc repro features`)"
                )
            inputs[at] = frame[columns].to_numpy("float64")
        out[uid] = Series(uid, s.ds, s.price, inputs)
    return out


def folds_from_json(folds: dict[str, list[dict]], series: dict[str, Series]) -> list[Fold]:
    """Turn the split stage's dated folds into positions in each series.

    A hand-edited `data/folds.json` (a key gone, a date that is not a trading day or out of
    order) is a `UserError` naming the file, the fold and the key, and how to get it back.
    """
    keys = ("history_start", "train_end", "test_start", "test_end")

    def bad(problem: str) -> UserError:
        return UserError(f"{paths.FOLDS}: {problem}; {io.repair(paths.FOLDS)}")

    if not isinstance(folds, dict):
        raise bad("expected a mapping of series to folds")
    out = []
    for unique_id, entries in folds.items():
        if unique_id not in series:
            raise bad(f"series {unique_id} is not in the prices table")
        if not isinstance(entries, list):
            raise bad(f"{unique_id}: expected a list of folds")
        days = series[unique_id].ds
        for number, entry in enumerate(entries):
            where = f"{unique_id} fold {number}"
            if not isinstance(entry, dict):
                raise bad(f"{where}: expected a mapping, got {entry!r}")
            missing = [key for key in ("fold", *keys) if key not in entry]
            if missing:
                raise bad(f"{where}: missing key {missing[0]!r}")
            if not isinstance(entry["fold"], int) or isinstance(entry["fold"], bool):
                raise bad(f"{where}: key 'fold': expected an integer, got {entry['fold']!r}")
            positions = []
            for key in keys:
                try:
                    day = np.datetime64(entry[key], "ns")
                except (ValueError, TypeError):
                    raise bad(f"{where}: key {key!r}: {entry[key]!r} is not a date") from None
                i = int(np.searchsorted(days, day))
                if i >= len(days) or days[i] != day:
                    raise bad(f"{where}: key {key!r}: {entry[key]} is not a trading day of {unique_id}")
                positions.append(i)
            start, train_end, test_start, test_end = positions
            if not start <= train_end < test_start <= test_end:
                raise bad(f"{where}: dates out of order (history_start <= train_end < test_start <= test_end)")
            out.append(Fold(unique_id, entry["fold"], *positions))
    return out


def calibration_fold(first: Fold) -> Fold:
    """The fold before a series' first: the last `n_test` days of its train part, forecast by the
    model fitted on what precedes them. A `UserError` when too little precedes them."""
    n_test = first.test_end - first.test_start + 1
    train_end = first.train_end - n_test
    if train_end - first.history_start + 1 < MIN_CALIBRATION_TRAIN_DAYS:
        raise UserError(
            f"intervals.method: {first.unique_id}'s first fold has {first.train_end - first.history_start + 1} "
            f"train days, too few to hold out {n_test} calibration days and train on "
            f"{MIN_CALIBRATION_TRAIN_DAYS}; set intervals.method: none or use more data"
        )
    return Fold(first.unique_id, CALIBRATION, first.history_start, train_end, train_end + 1, first.train_end)


def forecast_fold(model, series: Series, fold: Fold, own_intervals: bool = False) -> tuple[pd.DataFrame, object]:
    """Fit `model` (in place) on one fold's train part and forecast its test days at every horizon.

    Returns the fold's rows of the predictions table (by horizon, then target day), with the
    model's own interval columns where `own_intervals`, and the fitted model.
    """
    log_price = np.log(series.price)
    n = fold.test_end - fold.test_start + 1
    history = log_price[fold.history_start : fold.test_end + 1]
    inputs = None if series.inputs is None else series.inputs[fold.history_start : fold.test_end + 1]
    train_inputs = None if inputs is None else inputs[: fold.train_end + 1 - fold.history_start]
    model.fit(log_price[fold.history_start : fold.train_end + 1], train_inputs)
    forecasts = np.asarray(model.predict(history, n, inputs))
    bounds = np.asarray(model.predict_interval(history, n, inputs)) if own_intervals else None
    cutoffs = np.arange(fold.test_start - 1, fold.test_end)  # positions in the series
    frames = []
    for j, h in enumerate(model.horizons):
        keep = slice(0, n - h + 1)  # targets inside the test part
        cut, target = cutoffs[keep], cutoffs[keep] + h
        # Map log-price forecasts to prices relative to the cutoff's price, so that a forecast
        # of "no change" is exactly that price rather than exp(log(price)) with rounding.
        relative = series.price[cut]
        rows = {
            "unique_id": fold.unique_id,
            "ds": series.ds[target],
            "cutoff": series.ds[cut],
            "h": np.full(len(cut), h, dtype="int64"),
            "fold": np.full(len(cut), fold.fold, dtype="int64"),
            "y": series.price[target],
            "y_hat": relative * np.exp(forecasts[keep, j] - log_price[cut]),
        }
        if bounds is not None:
            for k, level in enumerate(model.levels):
                name = conformal.level_name(level)
                rows[f"y_lo_{name}"] = relative * np.exp(bounds[keep, j, k, 0] - log_price[cut])
                rows[f"y_hi_{name}"] = relative * np.exp(bounds[keep, j, k, 1] - log_price[cut])
        frames.append(pd.DataFrame(rows))
    return pd.concat(frames, ignore_index=True), model


def _run_task(model, series: Series, folds: list[Fold], own_intervals: bool) -> list[tuple[pd.DataFrame, object]]:
    """One unit of parallel work: the folds of one series, in order.

    A model with `warm_start=True` carries its fitted state from fold to fold (scikit-learn's
    meaning of warm_start); otherwise each fold starts from a fresh copy of the unfitted model.
    A calibration fold always starts from a fresh copy and passes nothing on.
    """
    warm = getattr(model, "warm_start", False)
    out = []
    with threadpool_limits(limits=1):  # one BLAS thread per worker: parallelism is across tasks
        current = copy.deepcopy(model)
        for fold in folds:
            if fold.fold == CALIBRATION:
                out.append(forecast_fold(copy.deepcopy(model), series, fold))
                continue
            if not warm:
                current = copy.deepcopy(model)
            out.append(forecast_fold(current, series, fold, own_intervals))
    return out


def _tasks(model, series: dict[str, Series], folds: list[Fold]) -> list[tuple[Series, list[Fold]]]:
    if getattr(model, "warm_start", False):
        by_series: dict[str, list[Fold]] = {}
        for fold in folds:
            by_series.setdefault(fold.unique_id, []).append(fold)
        return [(series[uid], fs) for uid, fs in by_series.items()]
    return [(series[fold.unique_id], [fold]) for fold in folds]


def with_bounds(table: pd.DataFrame, folds: list[Fold], series: dict[str, Series], spec: Intervals) -> pd.DataFrame:
    """The table (calibration fold included) with conformal or ACI bounds on every fold's rows.

    Fold k of a series is calibrated, horizon by horizon, on the scores of the fold before it
    (the calibration fold before the first) whose targets lie inside fold k's train part: all
    of them were observed before fold k's first cutoff.
    """
    out = table.copy()
    columns = conformal.bound_columns(spec.levels)
    for column in columns:
        out[column] = np.nan
    by_series: dict[str, list[Fold]] = {}
    for fold in sorted(folds, key=lambda f: f.fold):
        by_series.setdefault(fold.unique_id, []).append(fold)
    for (uid, h), rows in out.groupby(["unique_id", "h"], sort=False):
        for before, fold in zip(by_series[uid], by_series[uid][1:], strict=False):
            train_end = series[uid].ds[fold.train_end]
            calibration = rows[(rows["fold"] == before.fold) & (rows["ds"] <= train_end)]
            test = rows[rows["fold"] == fold.fold]
            widths = conformal.half_widths(
                conformal.scores(calibration["y"], calibration["y_hat"]),
                conformal.scores(test["y"], test["y_hat"]),
                int(h),
                spec.levels,
                spec.method if spec.method != "model" else "conformal",
                spec.gamma,
            )
            y_hat = test["y_hat"].to_numpy()[:, None]
            out.loc[test.index, columns[0::2]] = y_hat * np.exp(-widths)
            out.loc[test.index, columns[1::2]] = y_hat * np.exp(widths)
    return out


def next_half_widths(table: pd.DataFrame, spec: Intervals) -> dict[str, list[list[float]]]:
    """Per series, the conformal half-widths (log price) of a forecast from its last day, by
    horizon then level: calibrated on its last fold's scores, all observed by then. (A new fold
    starts there, where ACI's level starts at the nominal one, so both methods give these.)"""
    out = {}
    for uid, rows in table.groupby("unique_id", sort=True):
        last = rows[rows["fold"] == rows["fold"].max()]
        out[uid] = [
            [
                conformal.conformal_quantile(conformal.scores(g["y"], g["y_hat"]), float(level) / 100)
                for level in spec.levels
            ]
            for _, g in last.groupby("h", sort=True)
        ]
    return out


def walk_forward(
    model,
    prices: pd.DataFrame,
    folds: dict[str, list[dict]],
    n_jobs: int = 1,
    label: str = "walk-forward",
    inputs: tuple[pd.DataFrame, list[str]] | None = None,
    intervals: Intervals | None = None,
) -> tuple[pd.DataFrame, list]:
    """Forecast every test day of every fold of every series with `model`.

    `inputs` is the features table and the columns of it the model reads, or `None`;
    `intervals` how to make prediction intervals, or `None` for none. Returns the predictions
    table (sorted by `unique_id`, `h`, `ds`) and the fitted models as `(series, fold, model)` in
    task order. The joblib backend in effect (`joblib.parallel_config`) chooses where tasks run;
    `n_jobs=1` runs them in this process.
    """
    series = series_from_prices(prices)
    if inputs is not None:
        series = with_inputs(series, *inputs)
    fold_list = folds_from_json(folds, series)
    own = intervals is not None and intervals.own(model)
    calibrated = intervals is not None and not own
    if calibrated:
        firsts = {}
        for fold in fold_list:
            firsts.setdefault(fold.unique_id, fold)
        fold_list = [calibration_fold(first) for first in firsts.values()] + fold_list
    tasks = _tasks(model, series, fold_list)
    results = joblib.Parallel(n_jobs=n_jobs, return_as="generator")(
        joblib.delayed(_run_task)(model, s, fs, own) for s, fs in tasks
    )
    frames, fitted = [], []
    for (_, task_folds), task_result in zip(tasks, _progress(results, len(tasks), label), strict=True):
        for fold, (frame, fit) in zip(task_folds, task_result, strict=True):
            frames.append(frame)
            if fold.fold != CALIBRATION:
                fitted.append((fold.unique_id, fold.fold, fit))
    table = pd.concat(frames, ignore_index=True).sort_values(["unique_id", "h", "ds", "fold"], kind="stable")
    if calibrated:
        table = with_bounds(table.reset_index(drop=True), fold_list, series, intervals)
        table = table[table["fold"] != CALIBRATION]
    columns = PREDICTION_COLUMNS + [
        c for c in conformal.bound_columns(intervals.levels if intervals else ()) if c in table
    ]
    return table[columns].reset_index(drop=True), fitted


def _progress(results: Iterator, total: int, label: str) -> Iterator:
    """A progress bar on a terminal; plain log lines otherwise (CI logs)."""
    if sys.stderr.isatty():
        from tqdm import tqdm

        yield from tqdm(results, total=total, desc=label, unit="task", file=sys.stderr)
        return
    for done, result in enumerate(results, start=1):
        print(f"{label}: {done}/{total} tasks done", file=sys.stderr, flush=True)
        yield result
