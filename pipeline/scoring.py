"""Scores of predictions tables: each forecast row joined with what scoring it needs, per horizon.

A predictions table has a row per series, target day `ds` and horizon `h`: the forecast made
with the data up to `cutoff`, `h` trading days (rows of the series' prices) before `ds`. The
evaluate stage scores with these; the champion rule (`champions`, `horizons`) is shared with the
tracking stage, which registers the champions, and the forecast command, which serves them. The
shortest horizon in the tables plays the role of one step (h=1) wherever one figure is reported.
A table may carry prediction intervals: `y_lo_<L>`, `y_hi_<L>` for each level L in percent
(`y_lo_80`, `y_hi_80`), in price units. Pure functions of frames and of `metrics.json`'s content.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import io, metrics, paths
from pipeline.cli import UserError

BASELINE = "naive"  # the model every other is compared with (the contract's random walk)
ALPHA = 0.05  # significance level at which a model "beats" the baseline (Diebold-Mariano)
METRIC_KEYS = (
    "rmse",
    "mae",
    "mape",
    "mase",
    "directional_accuracy",
    "pt_pvalue",
    "rmse_vs_naive",
    "dm_stat_vs_naive",
    "dm_pvalue_vs_naive",
    "n_forecasts",
)
REQUIRED_COLUMNS = ("unique_id", "ds", "cutoff", "h", "fold", "y", "y_hat")
INTERVAL_KEYS = ("coverage", "width", "interval_score")  # per level L, after METRIC_KEYS: coverage_<L>, ...
LOWER, UPPER = "y_lo", "y_hi"  # interval bound columns: y_lo_<L>, y_hi_<L>
_ROW_COLUMNS = ("model", *REQUIRED_COLUMNS)
_BOUND = re.compile(rf"({LOWER}|{UPPER})_(\d+(?:\.\d+)?)")  # a level is written as a plain decimal number


def bounds(level: str) -> tuple[str, str]:
    """The lower and upper bound columns of the interval at `level` (e.g. "80")."""
    return f"{LOWER}_{level}", f"{UPPER}_{level}"


def interval_levels(frame: pd.DataFrame) -> list[str]:
    """The levels (the `<L>` of `y_lo_<L>`, e.g. "80") whose two bound columns `frame` has with
    a value on every row, in increasing numeric order."""
    return [L for L in _named_levels(frame.columns) if all(c in frame and frame[c].notna().all() for c in bounds(L))]


def scored_levels(scores: dict) -> list[str]:
    """The interval levels one entry of `metrics.json` (a model's scores at one horizon) has
    scores for, in increasing numeric order; none for a model without intervals."""
    return sorted((key.removeprefix("coverage_") for key in scores if key.startswith("coverage_")), key=float)


def _named_levels(columns) -> list[str]:
    return sorted({m[2] for m in map(_BOUND.fullmatch, columns) if m}, key=float)


def price_context(prices: pd.DataFrame) -> pd.DataFrame:
    """`unique_id`, `ds`, `price` (the forecast target) and `position` (the day's row number in
    its series' prices, 0 first: horizons count these rows, not calendar days)."""
    column = io.target_column(prices.columns)
    frame = prices[["unique_id", "ds", column]].rename(columns={column: "price"})
    frame = frame.sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)
    frame["ds"] = frame["ds"].astype("datetime64[ns]")
    frame["position"] = frame.groupby("unique_id", sort=False).cumcount().astype("int64")
    return frame


def fold_scales(context: pd.DataFrame, folds: dict[str, list[dict]]) -> pd.DataFrame:
    """MASE scale per (`unique_id`, `fold`): the naive MAE over the fold's train prices.

    The train part runs from the fold's `history_start` to its `train_end`, both inclusive:
    every price the fold's models could learn from.
    """
    by_series = {uid: rows for uid, rows in context.groupby("unique_id", sort=False)}
    out = []
    for uid, entries in folds.items():
        if uid not in by_series:
            raise UserError(f"{paths.FOLDS}: series {uid} is not in {paths.PRICES} (rerun `dvc repro split`)")
        rows = by_series[uid]
        for entry in entries:
            inside = (rows["ds"] >= pd.Timestamp(entry["history_start"])) & (
                rows["ds"] <= pd.Timestamp(entry["train_end"])
            )
            train = rows.loc[inside, "price"].to_numpy()
            if len(train) < 2:
                raise UserError(f"{paths.FOLDS}: {uid} fold {entry['fold']}: fewer than two train prices")
            out.append((uid, int(entry["fold"]), metrics.naive_scale(train)))
    return pd.DataFrame(out, columns=["unique_id", "fold", "scale"]).astype({"unique_id": context["unique_id"].dtype})


def forecast_rows(tables: dict[str, pd.DataFrame], context: pd.DataFrame, scales: pd.DataFrame) -> pd.DataFrame:
    """Every model's forecasts in one long frame, each row with what scoring it needs.

    Columns: `model`, `unique_id`, `ds`, `cutoff`, `h`, `fold`, `y`, `y_hat`, `y_lo_<L>`,
    `y_hi_<L>` for every level any table has (NaN for a model without that level, see
    `interval_levels`), `y_cutoff` (the price on `cutoff`), `scale` (its fold's MASE scale) and
    `y_hat_naive` (the baseline's forecast for the same series, horizon and day; NaN where the
    baseline has none). Rows are sorted by model, series, horizon and date. A table that does not
    match the prices, the folds or the other tables' horizons, or whose intervals are malformed,
    is a `UserError` naming it and the column.
    """
    frames = [_checked(model, table, context, scales) for model, table in sorted(tables.items())]
    levels = sorted({L for frame in frames for L in interval_levels(frame)}, key=float)
    interval_columns = [c for L in levels for c in bounds(L)]
    rows = pd.concat(frames, ignore_index=True)
    rows = rows[[*_ROW_COLUMNS, *interval_columns, "y_cutoff", "scale"]]  # bounds by level, whichever table has them
    every = set(rows["h"].unique())
    for model, frame in zip(sorted(tables), frames, strict=True):
        missing = sorted(every - set(frame["h"].unique()))
        if missing:
            raise UserError(
                f"{paths.predictions(model)}: column 'h' has no forecasts at h={missing[0]}, which other tables have "
                "(every table has every horizon of forecast.horizons; rerun the model's stage)"
            )
    if BASELINE in tables:
        baseline = rows.loc[rows["model"] == BASELINE, ["unique_id", "h", "ds", "y_hat"]].rename(
            columns={"y_hat": "y_hat_naive"}
        )
        rows = rows.merge(baseline, on=["unique_id", "h", "ds"], how="left", validate="many_to_one")
    else:
        rows["y_hat_naive"] = np.nan
    return rows


def _checked(model: str, table: pd.DataFrame, context: pd.DataFrame, scales: pd.DataFrame) -> pd.DataFrame:
    source = paths.predictions(model)
    if table.empty:
        raise UserError(f"{source}: no forecasts")
    for column in ("ds", "cutoff"):
        if not pd.api.types.is_datetime64_any_dtype(table[column]):
            raise UserError(f"{source}: column {column!r} must hold dates, got {table[column].dtype}")
    if not pd.api.types.is_integer_dtype(table["h"]) or (table["h"] < 1).any():
        raise UserError(f"{source}: column 'h' must hold positive whole numbers of trading days")
    interval_columns = _interval_columns(source, table)
    for column in ["y", "y_hat", *interval_columns]:
        bad = int((~np.isfinite(table[column].to_numpy("float64"))).sum())
        if bad:
            raise UserError(f"{source}: column {column!r}: {bad} values are not finite numbers")
    for lower, upper in zip(interval_columns[::2], interval_columns[1::2], strict=True):
        crossed = table[lower] > table[upper]
        if crossed.any():
            first = table.loc[crossed].iloc[0]
            raise UserError(
                f"{source}: column {lower!r} is above {upper!r} on {int(crossed.sum())} rows (first: "
                f"{first['unique_id']} h={first['h']} on {first['ds']:%Y-%m-%d})"
            )
    table = table.assign(
        ds=table["ds"].astype("datetime64[ns]"),
        cutoff=table["cutoff"].astype("datetime64[ns]"),
        h=table["h"].astype("int64"),
        fold=table["fold"].astype("int64"),
    )
    duplicated = table.duplicated(["unique_id", "h", "ds"])
    if duplicated.any():
        first = table.loc[duplicated].iloc[0]
        raise UserError(
            f"{source}: more than one forecast for {first['unique_id']} at h={first['h']} on {first['ds']:%Y-%m-%d} "
            "(columns unique_id, h, ds)"
        )
    rows = table.merge(context, on=["unique_id", "ds"], how="left", validate="many_to_one")
    unknown = rows["price"].isna()
    if unknown.any():
        first = rows.loc[unknown].iloc[0]
        raise UserError(
            f"{source}: column 'ds': {int(unknown.sum())} forecasts are for days not in {paths.PRICES} "
            f"(first: {first['unique_id']} {first['ds']:%Y-%m-%d})"
        )
    at_cutoff = context.rename(columns={"ds": "cutoff", "price": "y_cutoff", "position": "cutoff_position"})
    rows = rows.merge(at_cutoff, on=["unique_id", "cutoff"], how="left", validate="many_to_one")
    unknown = rows["y_cutoff"].isna()
    if unknown.any():
        first = rows.loc[unknown].iloc[0]
        raise UserError(
            f"{source}: column 'cutoff': {int(unknown.sum())} cutoffs are not days of their series in {paths.PRICES} "
            f"(first: {first['unique_id']} {first['cutoff']:%Y-%m-%d})"
        )
    steps = rows["position"] - rows["cutoff_position"]
    wrong = steps != rows["h"]
    if wrong.any():
        first = rows.loc[wrong].iloc[0]
        raise UserError(
            f"{source}: column 'cutoff': {int(wrong.sum())} cutoffs are not h trading days before ds (first: "
            f"{first['unique_id']} h={first['h']} on {first['ds']:%Y-%m-%d}, cutoff {first['cutoff']:%Y-%m-%d} "
            f"is {steps[wrong].iloc[0]} rows of {paths.PRICES} before)"
        )
    mismatch = ~np.isclose(rows["y"].to_numpy(), rows["price"].to_numpy(), rtol=1e-9, atol=0)
    if mismatch.any():
        raise UserError(
            f"{source}: column 'y' differs from the target price in {paths.PRICES} on {int(mismatch.sum())} rows "
            "(rerun the model's stage)"
        )
    rows = rows.merge(scales, on=["unique_id", "fold"], how="left", validate="many_to_one")
    if rows["scale"].isna().any():
        first = rows.loc[rows["scale"].isna()].iloc[0]
        raise UserError(
            f"{source}: column 'fold': fold {first['fold']} of {first['unique_id']} is not in {paths.FOLDS} "
            "(rerun the model's stage)"
        )
    rows.insert(0, "model", model)
    return rows[[*_ROW_COLUMNS, *interval_columns, "y_cutoff", "scale"]].sort_values(
        ["unique_id", "h", "ds"], kind="stable"
    )


def _interval_columns(source: Path, table: pd.DataFrame) -> list[str]:
    """The table's bound columns, by level then lower, upper; a malformed one is a `UserError`."""
    # the bare y_lo / y_hi of the old single interval are refused too: a stale table
    named = [c for c in table.columns if c in (LOWER, UPPER) or c.startswith((f"{LOWER}_", f"{UPPER}_"))]
    for column in named:
        match = _BOUND.fullmatch(column)
        if not match or not 0 < float(match[2]) < 100:
            raise UserError(
                f"{source}: column {column!r} is not an interval bound: y_lo_<L> or y_hi_<L> with the level L "
                "a number of percent between 0 and 100 (e.g. y_lo_80; rerun the model's stage)"
            )
        partner = {LOWER: UPPER, UPPER: LOWER}[match[1]] + f"_{match[2]}"
        if partner not in table:
            raise UserError(f"{source}: column {column!r} needs its partner {partner!r} (an interval has both bounds)")
    return [c for L in _named_levels(named) for c in bounds(L)]


def score(rows: pd.DataFrame) -> dict:
    """The contract's scores of one model's forecasts at one horizon (`forecast_rows` rows), in
    `METRIC_KEYS` order.

    Direction is called from the price at the cutoff, and `pt_pvalue` tests it against chance
    (Pesaran-Timmermann, `metrics.direction_pvalue`; null for a forecast that never moves); MASE
    divides by the fold's one-step naive MAE at every horizon. The vs-naive figures use only the
    rows where the baseline also forecast, so both sides score the same days; the DM test takes them in time
    order within each series and allows for the h - 1 days by which h-step errors overlap. Then, for each
    level L the rows have (`interval_levels`), `coverage_<L>` (a fraction), `width_<L>` and
    `interval_score_<L>` (price units, at alpha = 1 - L/100).
    """
    if rows["h"].nunique() != 1:
        raise ValueError("score takes the rows of one horizon")
    horizon = int(rows["h"].iloc[0])
    y, y_hat = rows["y"].to_numpy(), rows["y_hat"].to_numpy()
    accuracy, _, _ = metrics.directional_accuracy(y, y_hat, rows["y_cutoff"].to_numpy())
    paired = rows[rows["y_hat_naive"].notna()].sort_values(["unique_id", "ds"], kind="stable")
    ratio, dm = None, None
    if len(paired):
        py, p_hat, p_naive = paired["y"].to_numpy(), paired["y_hat"].to_numpy(), paired["y_hat_naive"].to_numpy()
        ratio = metrics.rmse_ratio(py, p_hat, p_naive)
        dm = metrics.diebold_mariano(py, p_hat, p_naive, horizon)
    return {
        "rmse": metrics.rmse(y, y_hat),
        "mae": metrics.mae(y, y_hat),
        "mape": metrics.mape(y, y_hat),
        "mase": metrics.mase(y, y_hat, rows["scale"].to_numpy()),
        "directional_accuracy": accuracy,
        "pt_pvalue": metrics.direction_pvalue(y, y_hat, rows["y_cutoff"].to_numpy()),
        "rmse_vs_naive": ratio,
        "dm_stat_vs_naive": dm[0] if dm else None,
        "dm_pvalue_vs_naive": dm[1] if dm else None,
        "n_forecasts": int(len(rows)),
        **interval_scores(rows),
    }


def interval_scores(rows: pd.DataFrame) -> dict:
    """`coverage_<L>`, `width_<L>`, `interval_score_<L>` for each level the rows have, in order."""
    out = {}
    for level in interval_levels(rows):
        y, lo, hi = (rows[c].to_numpy() for c in ("y", *bounds(level)))
        values = (
            metrics.interval_coverage(y, lo, hi),
            metrics.interval_width(lo, hi),
            metrics.interval_score(y, lo, hi, miss_rate(level)),
        )
        out.update({f"{key}_{level}": value for key, value in zip(INTERVAL_KEYS, values, strict=True)})
    return out


def miss_rate(level: str) -> float:
    """The alpha of a central interval at `level` percent: the share of values meant to fall outside."""
    return 1 - float(level) / 100


def score_horizons(rows: pd.DataFrame) -> dict:
    """One model's `score` at its shortest horizon, then `by_horizon`: `{"<h>": score}` for
    every horizon in increasing order (the shape of each entry of `metrics.json`)."""
    by_horizon = {str(h): score(group) for h, group in rows.groupby("h", sort=True)}
    return {**next(iter(by_horizon.values())), "by_horizon": by_horizon}


def beats_baseline(scores: dict) -> bool:
    """Whether the Diebold-Mariano test says a model's squared errors are smaller than the
    baseline's at the `ALPHA` level (two-sided p, negative statistic)."""
    p, stat = scores.get("dm_pvalue_vs_naive"), scores.get("dm_stat_vs_naive")
    return p is not None and stat is not None and p < ALPHA and stat < 0


def horizons(report: dict) -> list[int]:
    """The horizons a `metrics.json` content has, in increasing order."""
    return sorted({int(h) for scores in report["models"].values() for h in scores["by_horizon"]})


def champions(report: dict, horizon: int | None = None) -> dict[str, str]:
    """Each series' champion at `horizon` (None: the shortest, `metrics.json`'s top-level scores),
    from `metrics.json`'s content: the lowest-RMSE model among those that beat the baseline
    (`beats_baseline`), else the baseline itself. A lower RMSE that could be luck does not
    dethrone the random walk. Without a baseline table, the lowest RMSE. Ties go to the first
    name. A horizon the report lacks is a `UserError`."""
    if horizon is not None and horizon not in horizons(report):
        raise UserError(
            f"{paths.METRICS}: no scores at horizon {horizon} (it has {', '.join(map(str, horizons(report)))}; "
            "see forecast.horizons)"
        )
    chosen = {}
    for uid, by_model in report["series"].items():
        at = {m: s if horizon is None else s["by_horizon"][str(horizon)] for m, s in by_model.items()}
        contenders = [m for m, scores in at.items() if m == BASELINE or beats_baseline(scores)]
        if BASELINE not in at:
            contenders = list(at)
        chosen[uid] = min(contenders, key=lambda m: (at[m]["rmse"], m))
    return chosen
