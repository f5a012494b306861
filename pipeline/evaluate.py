"""Stage `evaluate`: score every model's forecasts against the naive baseline and report.

    python -m pipeline.evaluate    # params: evaluate.*  ->  reports/metrics.json, reports/leaderboard.md,
                                   #   reports/evaluation.json, reports/plots/

Every `data/predictions/*.parquet` is scored: a model is on the leaderboard because it wrote a
table, under the table's file stem. The only name this module knows is the baseline's, `naive`.
Scores are computed per horizon `h`, per model overall (every forecast of every fold and series
pooled), per series and per fold, by the pure functions in `pipeline.metrics`. The shortest
horizon (h=1 by default) stands for "one step" wherever a single figure is reported:

- `reports/metrics.json` (the contract other tools read): per model and per series x model,
  rmse, mae, mape (a fraction), mase, directional_accuracy, rmse_vs_naive, dm_stat_vs_naive,
  dm_pvalue_vs_naive, n_forecasts at the shortest horizon, and the same keys for every horizon
  under `by_horizon."<h>"` (vs-naive figures against naive at the same horizon and days). A
  score that is undefined is null: mase when a fold's train part has no price change; the
  vs-naive figures where the baseline has no forecast on the same rows, and the DM figures for
  the baseline itself (a forecast against itself has no test); directional_accuracy when every
  actual price equals its cutoff's. A forecast of no change calls no direction and counts as
  wrong, so the naive baseline's directional_accuracy is 0 (and its pt_pvalue, the
  Pesaran-Timmermann test of direction, null). A model whose table has prediction intervals also
  has coverage_<L>, width_<L> and interval_score_<L> for each level L. Beside the scores:
  `trading` per model and series and `buy_and_hold` (the economic value of the shortest
  horizon's forecasts, `pipeline.trading`), and `tests` (SPA, MCS and the Holm-corrected shares
  across series, `pipeline.evidence`).
- `reports/evaluation.json`: what does not belong in the contract: per-fold scores, pairwise DM
  tests, the intervals' pinball loss, each model's interval method (from its table's metadata),
  parameter counts, directional-accuracy day counts, at the shortest horizon and under
  `by_horizon."<h>"` for every horizon; and `gradient_by_lag`, per model whose stage computed
  one (the recurrent nets, ridge), its gradient profile by lag and where it vanishes.
- `reports/leaderboard.md`: all of it for a person, with plain-words verdicts, and the ADF tests
  and seasonal strength of the diagnostics stage (`reports/diagnostics/`).
- `reports/plots/`: PNGs under `images/`, and the data of the DVC plots as CSV: the one-step
  figures per series (at most `evaluate.max_series_figures` series, `evidence.figure_series`) and
  fold, the equity curves (`equity`), RMSE / naive across series (`skill_by_series`) and
  against the horizon (`skill_by_horizon`), nominal against empirical coverage (`calibration`),
  each series' champion with its bands (`fan_*`) and the gradient of the forecast by lag
  (`gradient_by_lag`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import evidence, gradients, io, leaderboard, metrics, paths, plots, trading
from pipeline.cli import UserError, run
from pipeline.params import EvaluateParams, load_params
from pipeline.scoring import (
    ALPHA,
    BASELINE,
    REQUIRED_COLUMNS,
    bounds,
    champions,
    fold_scales,
    forecast_rows,
    interval_levels,
    miss_rate,
    price_context,
    score,
    score_horizons,
    scored_levels,
)


def read_predictions(directory: Path) -> tuple[dict[str, pd.DataFrame], dict[str, dict]]:
    """Every predictions table in `directory` and its metadata, keyed by model (file stem)."""
    files = sorted(Path(directory).glob("*.parquet"))
    if not files:
        raise UserError(f"{directory}: no predictions tables (run `dvc repro` to create them)")
    if plots.ACTUAL in [path.stem for path in files]:
        raise UserError(
            f"{Path(directory) / plots.ACTUAL}.parquet: the name {plots.ACTUAL!r} is reserved for the observed price "
            "in the plots; rename the model"
        )
    tables = {path.stem: io.read_table(path, REQUIRED_COLUMNS) for path in files}
    return tables, {path.stem: io.read_table_metadata(path) for path in files}


def metrics_report(rows: pd.DataFrame, params: EvaluateParams | None = None) -> dict:
    """The contents of `reports/metrics.json`: scores per model, and per series and model, at
    the shortest horizon and `by_horizon` (`scoring.score_horizons`), each with the economic
    value of its shortest-horizon forecasts (`trading`, `pipeline.trading`), the buy-and-hold
    position's (`buy_and_hold`), and `tests` (`evidence.tests_report`, and `cross_series`)."""
    params = params or EvaluateParams()
    value = trading.trading_report(trading.daily_frame(one_step(rows), params.strategy, params.cost_bps))
    report = {
        "models": {
            model: {**score_horizons(group), "trading": value["models"][model]}
            for model, group in rows.groupby("model", sort=True)
        },
        "buy_and_hold": value["models"][trading.BUY_AND_HOLD],
        "series": {
            uid: {
                model: {**score_horizons(group), "trading": value["series"][uid][model]}
                for model, group in series.groupby("model", sort=True)
            }
            for uid, series in rows.groupby("unique_id", sort=True)
        },
    }
    report["tests"] = {**evidence.tests_report(rows, params.seed), "cross_series": evidence.cross_series(report)}
    return report


def one_step(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows at the shortest horizon, the one the single-figure reports and plots show."""
    return rows[rows["h"] == rows["h"].min()]


def pairwise_dm(rows: pd.DataFrame) -> dict:
    """DM test of every model against every other on the days both forecast, at one horizon.

    `result[a][b]` tests a against b: a negative statistic means a has the smaller squared
    errors. `result[b][a]` has the opposite sign and the same p-value.
    """
    horizon = int(rows["h"].iloc[0])
    # Pivoted on (unique_id, ds), sorted: each series' days in time order, as the test needs.
    forecasts = rows.pivot(index=["unique_id", "ds"], columns="model", values="y_hat")
    actual = rows.drop_duplicates(["unique_id", "ds"]).set_index(["unique_id", "ds"])["y"]
    models = sorted(forecasts.columns)
    out: dict[str, dict] = {}
    for a in models:
        out[a] = {}
        for b in models:
            if a == b:
                continue
            both = forecasts[[a, b]].dropna()
            y = actual.loc[both.index].to_numpy()
            test = metrics.diebold_mariano(y, both[a].to_numpy(), both[b].to_numpy(), horizon)
            out[a][b] = {
                "dm_stat": test[0] if test else None,
                "dm_pvalue": test[1] if test else None,
                "n_forecasts": int(len(both)),
            }
    return out


def horizon_details(rows: pd.DataFrame) -> dict:
    """Per model at one horizon: day counts of the directional accuracy, then `pinball_<L>` for
    each interval level the model has (`metrics.interval_pinball`)."""
    out = {}
    for model, group in rows.groupby("model", sort=True):
        y = group["y"].to_numpy()
        _, n_scored, n_flat = metrics.directional_accuracy(y, group["y_hat"].to_numpy(), group["y_cutoff"].to_numpy())
        out[model] = {"direction_days_scored": n_scored, "direction_days_unchanged": n_flat}
        for level in interval_levels(group):
            lo, hi = (group[c].to_numpy() for c in bounds(level))
            out[model][f"pinball_{level}"] = metrics.interval_pinball(y, lo, hi, miss_rate(level))
    return out


def model_details(rows: pd.DataFrame, descriptions: dict[str, dict]) -> dict:
    """Per model: the covariates it read, trainable parameters and the interval method and ACI
    step size (from the table's metadata; null for a model without intervals), then
    `horizon_details` at the shortest horizon."""
    at_one_step = horizon_details(one_step(rows))
    out = {}
    for model, group in rows.groupby("model", sort=True):
        description = descriptions.get(model, {})
        intervals = (description.get("intervals") or {}) if interval_levels(group) else {}
        out[model] = {
            "covariates": description.get("covariates", []),
            "n_params": description.get("n_params"),
            "parameter_counts": description.get("parameter_counts", {}),
            "interval_method": intervals.get("method"),
            "interval_gamma": intervals.get("gamma"),
            **at_one_step[model],
        }
    return out


def fold_report(rows: pd.DataFrame) -> dict:
    """Scores per fold number (pooled over series) and model at one horizon: `{fold: {model: scores}}`."""
    return {
        str(fold): {model: score(group) for model, group in by_fold.groupby("model", sort=True)}
        for fold, by_fold in rows.groupby("fold", sort=True)
    }


def evaluation_report(rows: pd.DataFrame, descriptions: dict[str, dict], params: EvaluateParams | None = None) -> dict:
    """The contents of `reports/evaluation.json`: per-model details, fold scores and pairwise DM
    tests at the shortest horizon, and the same per horizon under `by_horizon."<h>"`; the
    economic value's set-up (`trading`) and `max_series_figures`."""
    params = params or EvaluateParams()
    first = one_step(rows)
    return {
        "baseline": BASELINE,
        "alpha": ALPHA,
        "horizons": [int(h) for h in sorted(rows["h"].unique())],
        "trading": {"strategy": params.strategy, "cost_bps": params.cost_bps},
        "max_series_figures": params.max_series_figures,
        "models": model_details(rows, descriptions),
        "folds": fold_report(first),
        "dm_pairwise": pairwise_dm(first),
        "gradient_by_lag": gradients.gradient_report(descriptions),
        "by_horizon": {
            str(h): {"models": horizon_details(group), "folds": fold_report(group), "dm_pairwise": pairwise_dm(group)}
            for h, group in rows.groupby("h", sort=True)
        },
    }


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
    return pd.DataFrame(
        {"ds": paired["ds"], "model": paired["model"], "cum_sq_error_diff": diff.groupby(paired["model"]).cumsum()}
    ).reset_index(drop=True)


def skill_frame(report: dict) -> pd.DataFrame:
    """`h`, `model`, `rmse_vs_naive` (NaN where undefined) from `metrics_report`'s result, by
    horizon then model: the data of the skill-by-horizon plot."""
    rows = [
        (int(h), model, s["rmse_vs_naive"])
        for model, scores in report["models"].items()
        for h, s in scores["by_horizon"].items()
    ]
    frame = pd.DataFrame(rows, columns=["h", "model", "rmse_vs_naive"]).astype({"rmse_vs_naive": "float64"})
    return frame.sort_values(["h", "model"], kind="stable").reset_index(drop=True)


def calibration_frame(report: dict) -> pd.DataFrame:
    """`h`, `model`, `level` (nominal, percent) and `coverage` (empirical, a fraction) of every
    interval of `metrics_report`'s result, by horizon, model and level: the data of the
    calibration plot. No rows where no model has intervals."""
    rows = [
        (int(h), model, level, s[f"coverage_{level}"])
        for model, scores in report["models"].items()
        for h, s in scores["by_horizon"].items()
        for level in scored_levels(s)
    ]
    frame = pd.DataFrame(rows, columns=["h", "model", "level", "coverage"]).astype(
        {"h": "int64", "coverage": "float64"}
    )
    frame["level"] = pd.to_numeric(frame["level"])  # "80" is written 80, "97.5" 97.5
    return frame.sort_values(["h", "model", "level"], kind="stable").reset_index(drop=True)


def fan_frame(rows: pd.DataFrame, model: str) -> pd.DataFrame:
    """One series' last fold at one horizon as `level` (percent), `ds`, `y`, and `model`'s `y_hat`,
    `y_lo` and `y_hi` at that level: a row per level and day, none where `model` has no intervals."""
    last = rows[(rows["fold"] == rows["fold"].max()) & (rows["model"] == model)]
    frames = [
        last[["ds", "y", "y_hat", *bounds(level)]]
        .set_axis(["ds", "y", "y_hat", "y_lo", "y_hi"], axis="columns")
        .assign(level=float(level))
        for level in interval_levels(last)
    ]
    columns = ["level", "ds", "y", "y_hat", "y_lo", "y_hi"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def gradient_frame(report: dict) -> pd.DataFrame:
    """`lag`, `model`, `gradient`: each model's normalised profile (`evaluation.json`'s `gradient_by_lag`)."""
    rows = [
        (lag, model, value) for model, entry in report.items() for lag, value in enumerate(entry["profile"], start=1)
    ]
    return pd.DataFrame(rows, columns=["lag", "model", "gradient"])


def fold_rmse_frame(folds: dict) -> pd.DataFrame:
    """`fold`, `model`, `rmse`, `rmse_vs_naive` (NaN where undefined) from `fold_report`'s result."""
    rows = [
        (int(k), model, s["rmse"], s["rmse_vs_naive"]) for k, by_model in folds.items() for model, s in by_model.items()
    ]
    return pd.DataFrame(rows, columns=["fold", "model", "rmse", "rmse_vs_naive"]).astype({"rmse_vs_naive": "float64"})


def _csv(frame: pd.DataFrame) -> str:
    if "ds" in frame:
        frame = frame.assign(ds=frame["ds"].dt.strftime("%Y-%m-%d"))
    return frame.to_csv(index=False, lineterminator="\n")


def write_plots(
    rows: pd.DataFrame,
    folds: dict,
    skill: pd.DataFrame,
    calibration: pd.DataFrame,
    gradient: pd.DataFrame,
    equity: pd.DataFrame,
    series_skill: pd.DataFrame,
    champion: dict[str, str],
    params: EvaluateParams,
    root: Path,
    n_jobs: int = 1,
) -> list[Path]:
    """Write every figure (PNG) and DVC plot data file (CSV) under `root`; remove stale ones.

    `rows` are one horizon's (the one-step figures), `folds` its `fold_report`, `skill` and
    `calibration` the `skill_frame` and `calibration_frame` of every horizon, `gradient` the
    `gradient_frame` (empty without recurrent models or ridge), `equity` the equal-weight
    portfolio's growth of 1 per strategy (`trading.portfolio`), `series_skill` the
    `evidence.series_skill_frame` (drawn with more than one series), `champion` each drawn series'
    champion at `rows`' horizon, whose fan chart is drawn where it has intervals: the series
    drawn one by one are `champion`'s keys (`evidence.figure_series`). Figures are drawn on
    `n_jobs` processes when there are many (three or four per series). Returns the PNG paths in
    the order the leaderboard lists them.
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

    csv(skill, root / f"{plots.SKILL_BY_HORIZON}.csv")
    png(plots.skill_figure, skill, colors, BASELINE, name=f"{plots.SKILL_BY_HORIZON}.png")
    fold_rmse = fold_rmse_frame(folds)
    csv(fold_rmse, root / "rmse_by_fold.csv")
    step = leaderboard.step_label(int(rows["h"].iloc[0]))
    png(plots.fold_rmse_figure, fold_rmse, colors, BASELINE, step, name="rmse_by_fold.png")
    csv(calibration, root / f"{plots.CALIBRATION}.csv")  # header only without intervals: the DVC plot stays valid
    if len(calibration):
        png(plots.calibration_figure, calibration, colors, name=f"{plots.CALIBRATION}.png")
    csv(gradient, root / f"{plots.GRADIENT_BY_LAG}.csv")  # header only without profiles, as calibration
    if len(gradient):
        png(plots.gradient_figure, gradient, colors, gradients.VANISHED, name=f"{plots.GRADIENT_BY_LAG}.png")
    csv(equity[["model", "ds", "equity"]], root / f"{plots.EQUITY}.csv")
    title = f"Growth of 1, {params.strategy} on the {step} forecasts after {params.cost_bps:g} bp per unit of turnover"
    png(plots.equity_figure, equity, colors, trading.BUY_AND_HOLD, title, name=f"{plots.EQUITY}.png")
    if series_skill["unique_id"].nunique() > 1:
        csv(series_skill, root / f"{plots.SKILL_BY_SERIES}.csv")
        png(plots.series_skill_figure, series_skill, colors, BASELINE, name=f"{plots.SKILL_BY_SERIES}.png")
    for uid, series in rows[rows["unique_id"].isin(list(champion))].groupby("unique_id", sort=True):
        last = last_fold_frame(series)
        csv(last, root / "forecast" / f"{uid}.csv")
        png(
            plots.forecast_figure,
            last,
            colors,
            f"{uid}: {step} forecasts over the last fold",
            name=f"forecast_{uid}.png",
        )
        zoom_start = np.sort(last["ds"].unique())[-min(params.zoom_days, last["ds"].nunique())]
        png(
            plots.forecast_figure,
            last[last["ds"] >= zoom_start],
            colors,
            f"{uid}: {step} forecasts, the last {params.zoom_days} days",
            name=f"zoom_{uid}.png",
        )
        cumulative = cumulative_frame(series)
        csv(cumulative, root / "cumulative" / f"{uid}.csv")
        starts = sorted(series.groupby("fold")["ds"].min())
        png(
            plots.cumulative_figure,
            cumulative,
            starts,
            colors,
            f"{uid}: cumulative {step} squared error minus the naive forecast's",
            name=f"cumulative_{uid}.png",
        )
        fan = fan_frame(series, champion[uid])
        if len(fan):
            title = f"{uid}: {step} forecasts of the champion, {champion[uid]}, and its intervals over the last fold"
            png(plots.fan_figure, fan, colors[champion[uid]], title, name=f"fan_{uid}.png")
    plots.parallel_map(_draw, figures, n_jobs)
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in (".png", ".csv") and path not in written:
            path.unlink()  # a series or model that is gone
    return [p for p in written if p.suffix == ".png"]


def tuning_reports(models: list[str]) -> tuple[dict[str, dict], dict[str, dict]]:
    """The tuning reports of the scored models that have one (`reports/tuning/<model>.json`) and
    their seconds files, where those are there (git does not hold them)."""
    reports = {m: io.read_json(paths.tuning(m)) for m in models if paths.tuning(m).is_file()}
    timings = {m: io.read_json(paths.tuning_seconds(m)) for m in reports if paths.tuning_seconds(m).is_file()}
    return reports, timings


def _draw(make, args: tuple, path: Path) -> None:
    plots.save_png(make(*args), path)


def main() -> None:
    all_params = load_params()
    params = all_params.evaluate
    prices = io.read_table(paths.PRICES, ["unique_id", "ds"])
    folds = io.read_json(paths.FOLDS)
    diagnostics = io.read_json(paths.DIAGNOSTICS_JSON)
    tables, descriptions = read_predictions(paths.PREDICTIONS)
    context = price_context(prices)
    rows = forecast_rows(tables, context, fold_scales(context, folds))
    report = metrics_report(rows, params)
    details = evaluation_report(rows, descriptions, params)
    first = one_step(rows)
    drawn = evidence.figure_series(report, params.max_series_figures)
    champion = champions(report)
    images = write_plots(
        first,
        details["folds"],
        skill_frame(report),
        calibration_frame(report),
        gradient_frame(details["gradient_by_lag"]),
        trading.portfolio(trading.daily_frame(first, params.strategy, params.cost_bps)),
        evidence.series_skill_frame(report),
        {uid: champion[uid] for uid in drawn},
        params,
        paths.PLOTS,
        all_params.parallel.n_jobs,
    )
    images += paths.decompositions(diagnostics)  # named by its report, the stage's declared input
    io.write_json(report, paths.METRICS)
    io.write_json(details, paths.EVALUATION)
    figures = [p.relative_to(paths.REPORTS) for p in images]
    tuning = tuning_reports(list(report["models"]))
    io.write_text(leaderboard.render(report, details, folds, figures, diagnostics, *tuning), paths.LEADERBOARD)
    best = min(report["models"], key=lambda m: report["models"][m]["rmse"])
    print(
        f"evaluate: {len(report['models'])} models, {len(rows)} forecasts at horizons {details['horizons']}; "
        f"lowest one-step RMSE: {best} -> {paths.LEADERBOARD}"
    )


if __name__ == "__main__":
    run(main)
