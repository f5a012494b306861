"""The evaluate stage's figures, drawn with matplotlib's object API (no pyplot, no global backend).

Each `*_figure` function takes a long frame and returns a `Figure`; `save_png` writes one
atomically and byte-for-byte reproducibly (no software version or date in the PNG).
Each model keeps one colour in every figure (`model_colors`); the actual price is black.
"""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pipeline import io

ACTUAL = "actual"  # the line label of the observed price in forecast frames
SKILL_BY_HORIZON = "skill_by_horizon"  # the stem of the skill-by-horizon figure and its plot data
CALIBRATION = "calibration"  # the stem of the interval calibration figure and its plot data
GRADIENT_BY_LAG = "gradient_by_lag"  # the stem of the gradient-by-lag figure and its plot data
EQUITY = "equity"  # the stem of the economic-value figure (equity curves) and its plot data
SKILL_BY_SERIES = "skill_by_series"  # the stem of the figure of RMSE / naive across series
MIN_TASKS_PER_PROCESS = 8  # per-series work goes to processes only above this


def parallel_map(func, items: list[tuple], n_jobs: int) -> list:
    """`func(*item)` for every item, in order; on `n_jobs` processes when there are enough items
    to pay for starting them (a second each: matplotlib's and statsmodels' imports)."""
    processes = n_jobs if len(items) >= 2 * MIN_TASKS_PER_PROCESS else 1
    return joblib.Parallel(n_jobs=processes)(joblib.delayed(func)(*item) for item in items)


def model_colors(models: list[str]) -> dict[str, str]:
    """A colour per model from matplotlib's default cycle, by the model's place in `models`."""
    return {model: f"C{i % 10}" for i, model in enumerate(models)}


def save_png(figure: Figure, path: Path | str) -> None:
    """Write `figure` as a PNG; the same figure gives the same bytes on every run."""
    with io.atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100, metadata={"Software": None})


def forecast_figure(frame: pd.DataFrame, colors: dict[str, str], title: str) -> Figure:
    """Actual and forecast prices over time: `frame` has `ds`, `model` and `price` columns."""
    figure = Figure(figsize=(11, 5), layout="constrained")
    ax = figure.subplots()
    for model, rows in frame.groupby("model", sort=True):
        if model == ACTUAL:
            continue
        ax.plot(rows["ds"], rows["price"], color=colors[model], linewidth=1, label=model)
    actual = frame[frame["model"] == ACTUAL]
    ax.plot(actual["ds"], actual["price"], color="black", linewidth=1.6, label=ACTUAL, zorder=3)
    ax.set(title=title, xlabel="date", ylabel="price")
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    return figure


def fold_rmse_figure(frame: pd.DataFrame, colors: dict[str, str], baseline: str, horizon: str) -> Figure:
    """RMSE per fold and its ratio to the baseline's, one line per model: `frame` has `fold`,
    `model`, `rmse` and `rmse_vs_naive` columns, all at the horizon `horizon` names."""
    figure = Figure(figsize=(8, 7), layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True)
    for model, rows in frame.groupby("model", sort=True):
        top.plot(rows["fold"], rows["rmse"], color=colors[model], marker="o", linewidth=1, label=model)
        bottom.plot(rows["fold"], rows["rmse_vs_naive"], color=colors[model], marker="o", linewidth=1, label=model)
    top.set(title=f"RMSE by walk-forward fold, {horizon} (pooled over series)", ylabel="RMSE (price)")
    bottom.axhline(1, color="black", linewidth=0.8)
    bottom.set(xlabel="fold", ylabel=f"RMSE / {baseline}")
    bottom.set_xticks(sorted(frame["fold"].unique()))
    top.legend(loc="best", fontsize="small")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    return figure


def skill_figure(frame: pd.DataFrame, colors: dict[str, str], baseline: str) -> Figure:
    """RMSE over the baseline's against the horizon, one line per model (the baseline's at 1):
    `frame` has `h`, `model` and `rmse_vs_naive` columns."""
    figure = Figure(figsize=(8, 5), layout="constrained")
    ax = figure.subplots()
    for model, rows in frame.groupby("model", sort=True):
        ax.plot(rows["h"], rows["rmse_vs_naive"], color=colors[model], marker="o", linewidth=1, label=model)
    ax.axhline(1, color="black", linewidth=0.8)
    ax.set(
        title=f"RMSE / {baseline} by forecast horizon (below 1 beats the random walk)",
        xlabel="horizon h (trading days after the cutoff)",
        ylabel=f"RMSE / {baseline}",
    )
    ax.set_xticks(sorted(frame["h"].unique()))
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    return figure


def equity_figure(frame: pd.DataFrame, colors: dict[str, str], passive: str, title: str) -> Figure:
    """Growth of 1 invested in each model's strategy and in `passive` (black), log scale:
    `frame` has `model`, `ds` and `equity` columns."""
    figure = Figure(figsize=(11, 5), layout="constrained")
    ax = figure.subplots()
    for model, rows in frame.groupby("model", sort=True):
        color, width = ("black", 1.6) if model == passive else (colors[model], 1)
        ax.plot(rows["ds"], rows["equity"], color=color, linewidth=width, label=model)
    ax.set_yscale("log")
    ax.set(title=title, xlabel="date", ylabel="value of 1 invested (log scale)")
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3, which="both")
    return figure


def series_skill_figure(frame: pd.DataFrame, colors: dict[str, str], baseline: str) -> Figure:
    """RMSE / baseline of each series, one box per model and a panel per horizon, each series a
    dot: `frame` has `h`, `model`, `unique_id` and `rmse_vs_naive` columns."""
    horizons = sorted(frame["h"].unique())
    figure = Figure(figsize=(4 * len(horizons) + 1, 4.5), layout="constrained")
    axes = figure.subplots(1, len(horizons), sharey=True, squeeze=False)[0]
    for ax, h in zip(axes, horizons, strict=True):
        at = frame[(frame["h"] == h) & frame["rmse_vs_naive"].notna()]
        models = sorted(at["model"].unique())
        ax.boxplot([at.loc[at["model"] == m, "rmse_vs_naive"] for m in models], showfliers=False)
        for i, model in enumerate(models, start=1):
            values = at.loc[at["model"] == model, "rmse_vs_naive"].to_numpy()
            jitter = np.linspace(-0.15, 0.15, len(values)) if len(values) > 1 else np.zeros(1)
            ax.scatter(i + jitter, values, color=colors[model], s=10, zorder=3)
        ax.axhline(1, color="black", linewidth=0.8)
        ax.set_xticks(range(1, len(models) + 1), models, rotation=45, ha="right")
        ax.set(title=f"h={h}")
        ax.grid(alpha=0.3, axis="y")
    axes[0].set_ylabel(f"RMSE / {baseline} per series")
    figure.suptitle(f"RMSE / {baseline} across series (below 1 beats the random walk on that series)")
    return figure


def gradient_figure(frame: pd.DataFrame, colors: dict[str, str], vanished: float) -> Figure:
    """Each model's normalised gradient of the forecast by lag, on a log scale (a vanishing
    gradient falls geometrically: a straight line), with the `vanished` fraction dashed: `frame`
    has `lag`, `model` and `gradient` columns."""
    figure = Figure(figsize=(8, 5), layout="constrained")
    ax = figure.subplots()
    for model, rows in frame.groupby("model", sort=True):
        shown = rows[rows["gradient"] > 0]  # a zero has no place on a log axis
        ax.plot(shown["lag"], shown["gradient"], color=colors[model], marker=".", linewidth=1, label=model)
    ax.axhline(vanished, color="black", linewidth=0.8, linestyle="--", label=f"{vanished:.0%} of the largest")
    ax.set_yscale("log")
    ax.set(
        title="Gradient of the forecast by lag, over the last fold's test windows",
        xlabel="lag k (trading days before the cutoff)",
        ylabel="mean |d forecast / d lag k|, largest = 1",
    )
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3, which="both")
    return figure


def calibration_figure(frame: pd.DataFrame, colors: dict[str, str]) -> Figure:
    """Empirical against nominal coverage of the prediction intervals, one panel per horizon and
    one line per model: `frame` has `h`, `model`, `level` (percent) and `coverage` (a fraction).
    On the diagonal an interval covers as often as it claims; below it, too narrow."""
    horizons = sorted(frame["h"].unique())
    figure = Figure(figsize=(4 * len(horizons) + 1, 4.5), layout="constrained")
    axes = figure.subplots(1, len(horizons), sharex=True, sharey=True, squeeze=False)[0]
    percent = frame.assign(coverage=100 * frame["coverage"])
    low = max(0.0, 5 * np.floor(min(percent["level"].min(), percent["coverage"].min()) / 5 - 1))
    for ax, h in zip(axes, horizons, strict=True):
        ax.plot([low, 100], [low, 100], color="black", linewidth=0.8, linestyle="--", label="nominal")
        for model, rows in percent[percent["h"] == h].groupby("model", sort=True):
            ax.plot(rows["level"], rows["coverage"], color=colors[model], marker="o", linewidth=1, label=model)
        ax.set(title=f"h={h}", xlabel="nominal level (%)", xlim=(low, 100), ylim=(low, 100))
        ax.set_xticks(sorted(frame["level"].unique()))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("empirical coverage (%)")
    axes[-1].legend(loc="lower right", fontsize="small")
    figure.suptitle("Prediction intervals: share of actual prices inside against the nominal level")
    return figure


def fan_figure(frame: pd.DataFrame, color: str, title: str) -> Figure:
    """Actual prices and one model's forecasts with its intervals shaded, the widest palest:
    `frame` has `level` (percent), `ds`, `y`, `y_hat`, `y_lo` and `y_hi`, a row per level and day."""
    figure = Figure(figsize=(11, 5), layout="constrained")
    ax = figure.subplots()
    levels = sorted(frame["level"].unique(), reverse=True)
    for i, level in enumerate(levels):
        band = frame[frame["level"] == level]
        shade = 0.15 + 0.25 * i / max(len(levels) - 1, 1)  # nested bands: inner ones darker
        ax.fill_between(
            band["ds"], band["y_lo"], band["y_hi"], color=color, alpha=shade, linewidth=0, label=f"{level:g}%"
        )
    days = frame[frame["level"] == levels[0]]
    ax.plot(days["ds"], days["y_hat"], color=color, linewidth=1, label="forecast")
    ax.plot(days["ds"], days["y"], color="black", linewidth=1.2, label=ACTUAL, zorder=3)
    ax.set(title=title, xlabel="date", ylabel="price")
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    return figure


def cumulative_figure(frame: pd.DataFrame, fold_starts: list, colors: dict[str, str], title: str) -> Figure:
    """Cumulative squared-error difference to the baseline: `ds`, `model`, `cum_sq_error_diff`.

    Below zero a model has so far made smaller squared errors than the baseline; dotted lines
    mark where each fold's test part starts.
    """
    figure = Figure(figsize=(11, 5), layout="constrained")
    ax = figure.subplots()
    for model, rows in frame.groupby("model", sort=True):
        ax.plot(rows["ds"], rows["cum_sq_error_diff"], color=colors[model], linewidth=1, label=model)
    ax.axhline(0, color="black", linewidth=0.8)
    for start in fold_starts:
        ax.axvline(start, color="grey", linestyle=":", linewidth=0.8)
    ax.set(title=title, xlabel="date", ylabel="cumulative (e² - e²_naive)")
    if len(frame):
        ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    return figure


def decomposition_figure(
    ds: np.ndarray, observed: np.ndarray, trend: np.ndarray, seasonal: np.ndarray, resid: np.ndarray, title: str
) -> Figure:
    """Four stacked panels of a seasonal-trend decomposition of a log price."""
    figure = Figure(figsize=(11, 8), layout="constrained")
    axes = figure.subplots(4, 1, sharex=True)
    for ax, values, label in zip(
        axes, (observed, trend, seasonal, resid), ("log price", "trend", "seasonal", "residual"), strict=True
    ):
        ax.plot(ds, values, linewidth=0.8, color="black" if label == "log price" else None)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_title(title)
    axes[-1].set_xlabel("date")
    return figure
