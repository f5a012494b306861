"""Scores of predictions tables: each forecast row joined with what scoring it needs.

The evaluate stage scores with these; the champion rule (`champions`) is shared with the tracking
stage, which registers the champions, and the forecast command, which serves them. Pure functions
of frames and of `metrics.json`'s content.
"""

from __future__ import annotations

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
    "rmse_vs_naive",
    "dm_stat_vs_naive",
    "dm_pvalue_vs_naive",
    "n_forecasts",
)
REQUIRED_COLUMNS = ("unique_id", "ds", "fold", "y", "y_hat")


def price_context(prices: pd.DataFrame) -> pd.DataFrame:
    """`unique_id`, `ds`, `price` (the forecast target) and `y_prev` (the previous day's price)."""
    column = io.target_column(prices.columns)
    frame = prices[["unique_id", "ds", column]].rename(columns={column: "price"})
    frame = frame.sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)
    frame["ds"] = frame["ds"].astype("datetime64[ns]")
    frame["y_prev"] = frame.groupby("unique_id", sort=False)["price"].shift(1)
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

    Columns: `model`, `unique_id`, `ds`, `fold`, `y`, `y_hat`, `y_lo`, `y_hi` (NaN for a model
    without intervals), `y_prev`, `scale` (its fold's MASE scale) and `y_hat_naive` (the
    baseline's forecast for the same series and day; NaN where the baseline has none). Rows are
    sorted by model, series and date. A table that does not match the prices or the folds is a
    `UserError` naming it.
    """
    frames = [_checked(model, table, context, scales) for model, table in sorted(tables.items())]
    rows = pd.concat(frames, ignore_index=True)
    if BASELINE in tables:
        baseline = rows.loc[rows["model"] == BASELINE, ["unique_id", "ds", "y_hat"]].rename(
            columns={"y_hat": "y_hat_naive"}
        )
        rows = rows.merge(baseline, on=["unique_id", "ds"], how="left", validate="many_to_one")
    else:
        rows["y_hat_naive"] = np.nan
    return rows


def _checked(model: str, table: pd.DataFrame, context: pd.DataFrame, scales: pd.DataFrame) -> pd.DataFrame:
    source = paths.predictions(model)
    if table.empty:
        raise UserError(f"{source}: no forecasts")
    if not pd.api.types.is_datetime64_any_dtype(table["ds"]):
        raise UserError(f"{source}: column 'ds' must hold dates, got {table['ds'].dtype}")
    has_interval = {"y_lo", "y_hi"} & set(table.columns)
    if len(has_interval) == 1:
        raise UserError(
            f"{source}: column {has_interval.pop()!r} needs its partner (an interval has both y_lo and y_hi)"
        )
    value_columns = ["y", "y_hat"] + (["y_lo", "y_hi"] if has_interval else [])
    for column in value_columns:
        bad = int((~np.isfinite(table[column].to_numpy("float64"))).sum())
        if bad:
            raise UserError(f"{source}: column {column!r}: {bad} values are not finite numbers")
    table = table.assign(ds=table["ds"].astype("datetime64[ns]"), fold=table["fold"].astype("int64"))
    duplicated = table.duplicated(["unique_id", "ds"])
    if duplicated.any():
        first = table.loc[duplicated].iloc[0]
        raise UserError(f"{source}: more than one forecast for {first['unique_id']} on {first['ds']:%Y-%m-%d}")
    rows = table.merge(context, on=["unique_id", "ds"], how="left", validate="one_to_one")
    unknown = rows["price"].isna()
    if unknown.any():
        first = rows.loc[unknown].iloc[0]
        raise UserError(
            f"{source}: {int(unknown.sum())} forecasts are for days not in {paths.PRICES} "
            f"(first: {first['unique_id']} {first['ds']:%Y-%m-%d})"
        )
    no_previous = rows["y_prev"].isna()
    if no_previous.any():
        first = rows.loc[no_previous].iloc[0]
        raise UserError(
            f"{source}: forecast for {first['unique_id']} on {first['ds']:%Y-%m-%d}, "
            "the series' first day, has no previous price"
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
            f"{source}: fold {first['fold']} of {first['unique_id']} is not in {paths.FOLDS} (rerun the model's stage)"
        )
    for column in ("y_lo", "y_hi"):
        if column not in rows:
            rows[column] = np.nan
    rows.insert(0, "model", model)
    columns = ["model", "unique_id", "ds", "fold", "y", "y_hat", "y_lo", "y_hi", "y_prev", "scale"]
    return rows[columns].sort_values(["unique_id", "ds"], kind="stable")


def score(rows: pd.DataFrame) -> dict:
    """The contract's scores of one model's forecasts (`forecast_rows` rows), in `METRIC_KEYS` order.

    The vs-naive figures use only the rows where the baseline also forecast, so both sides
    score the same days.
    """
    y, y_hat = rows["y"].to_numpy(), rows["y_hat"].to_numpy()
    accuracy, _, _ = metrics.directional_accuracy(y, y_hat, rows["y_prev"].to_numpy())
    paired = rows[rows["y_hat_naive"].notna()]
    ratio, dm = None, None
    if len(paired):
        py, p_hat, p_naive = paired["y"].to_numpy(), paired["y_hat"].to_numpy(), paired["y_hat_naive"].to_numpy()
        ratio = metrics.rmse_ratio(py, p_hat, p_naive)
        dm = metrics.diebold_mariano(py - p_hat, py - p_naive)
    return {
        "rmse": metrics.rmse(y, y_hat),
        "mae": metrics.mae(y, y_hat),
        "mape": metrics.mape(y, y_hat),
        "mase": metrics.mase(y, y_hat, rows["scale"].to_numpy()),
        "directional_accuracy": accuracy,
        "rmse_vs_naive": ratio,
        "dm_stat_vs_naive": dm[0] if dm else None,
        "dm_pvalue_vs_naive": dm[1] if dm else None,
        "n_forecasts": int(len(rows)),
    }


def beats_baseline(scores: dict) -> bool:
    """Whether the Diebold-Mariano test says a model's squared errors are smaller than the
    baseline's at the `ALPHA` level (two-sided p, negative statistic)."""
    p, stat = scores.get("dm_pvalue_vs_naive"), scores.get("dm_stat_vs_naive")
    return p is not None and stat is not None and p < ALPHA and stat < 0


def champions(report: dict) -> dict[str, str]:
    """Each series' champion, from `metrics.json`'s content: the lowest-RMSE model among those
    that beat the baseline (`beats_baseline`), else the baseline itself. A lower RMSE that
    could be luck does not dethrone the random walk. Without a baseline table, the lowest RMSE.
    Ties go to the first name."""
    chosen = {}
    for uid, by_model in report["series"].items():
        contenders = [m for m, scores in by_model.items() if m == BASELINE or beats_baseline(scores)]
        if BASELINE not in by_model:
            contenders = list(by_model)
        chosen[uid] = min(contenders, key=lambda m: (by_model[m]["rmse"], m))
    return chosen
