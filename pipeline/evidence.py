"""Evidence that survives multiple testing: Hansen's SPA test, the model confidence set and
corrected per-series Diebold-Mariano shares (the Pesaran-Timmermann test of direction is a
per-forecast score: `metrics.direction_pvalue`), and which series get their own figures.

Pure functions of the evaluate stage's forecast rows (`scoring.forecast_rows`) and of
`metrics.json`'s content. The loss of SPA and MCS is the squared error of the log price,
(log y - log y_hat)², so that series at different price levels weigh alike when pooled (a
squared price error would let a $400 stock outweigh a $4 one ten thousand times).

- SPA (`arch.bootstrap.SPA`, stationary bootstrap, arch's default block length sqrt(T), 1000
  replications, seeded by `evaluate.seed`): null "no model has a smaller expected loss than the
  baseline", per horizon, per series on its own days, and pooled: on each date the mean loss over
  the series forecast that date, one value per model and date (a cross-sectional average, so the
  bootstrap resamples dates and keeps the series' same-day dependence). The reported p-value is
  SPA's consistent one.
- MCS (`arch.bootstrap.MCS`, size 0.10, method R, the same bootstrap and seed) per horizon on the
  same pooled losses, every model and the baseline included: the models not rejected at 10%.
- Per model and horizon, the share of series on which it beats the baseline by the
  Diebold-Mariano test after Holm's correction over the series (statsmodels' `multipletests`):
  corrected p < `scoring.ALPHA` and a negative statistic.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from arch.bootstrap import MCS, SPA
from statsmodels.stats.multitest import multipletests

from pipeline.scoring import ALPHA, BASELINE

REPS = 1000  # bootstrap replications (arch's default); SPA p-values move by about 0.01 between seeds
MCS_SIZE = 0.10  # the model confidence set's size: models kept unless rejected at 10%
CORRECTION = "holm"  # multipletests' method over series: controls the family-wise error rate


def losses(rows: pd.DataFrame) -> pd.DataFrame:
    """Squared log-price errors of one horizon's rows: index (`unique_id`, `ds`), a column per
    model, only the (series, day) pairs every model forecast."""
    loss = (np.log(rows["y"]) - np.log(rows["y_hat"])) ** 2
    table = rows.assign(loss=loss).pivot(index=["unique_id", "ds"], columns="model", values="loss")
    return table.dropna().sort_index()


def pooled(table: pd.DataFrame) -> pd.DataFrame:
    """The cross-series mean loss of each model on each date (`losses`' rows averaged by `ds`)."""
    return table.groupby(level="ds").mean()


def spa_pvalues(table: pd.DataFrame, seed: int) -> dict | None:
    """SPA of every model against `BASELINE` on `table` (rows in time order, a column per model):
    `pvalue` (consistent), `pvalue_lower`, `pvalue_upper`, `n_days`; None without the baseline,
    a model whose loss differential varies, or more than one day."""
    if BASELINE not in table or len(table) < 2:
        return None
    # A model whose loss differential with the baseline is constant (the baseline itself under
    # another name, or a flat series) has no variance to studentize by: it is left out.
    others = [m for m in table.columns if m != BASELINE and np.ptp(table[m] - table[BASELINE]) > 0]
    if not others:
        return None
    test = SPA(table[BASELINE], table[others], reps=REPS, bootstrap="stationary", seed=seed)
    test.compute()
    p = test.pvalues
    return {
        "pvalue": float(p["consistent"]),
        "pvalue_lower": float(p["lower"]),
        "pvalue_upper": float(p["upper"]),
        "n_days": int(len(table)),
    }


def confidence_set(table: pd.DataFrame, seed: int) -> dict | None:
    """The MCS of the models in `table` at `MCS_SIZE`: `included` (names, sorted), `pvalues` (each
    model's MCS p-value), `size`; None with fewer than two models or days."""
    if table.shape[1] < 2 or len(table) < 2:
        return None
    test = MCS(table, size=MCS_SIZE, reps=REPS, method="R", bootstrap="stationary", seed=seed)
    test.compute()
    pvalues = test.pvalues["Pvalue"]
    return {
        "included": sorted(str(m) for m in test.included),
        "pvalues": {str(m): float(pvalues[m]) for m in sorted(pvalues.index)},
        "size": MCS_SIZE,
    }


def tests_report(rows: pd.DataFrame, seed: int) -> dict:
    """`metrics.json`'s `tests`: per horizon `spa."<h>"` (pooled, and `series.<uid>`) and
    `mcs."<h>"` (on the pooled losses). Without a baseline table SPA is null."""
    spa, mcs = {}, {}
    for h, group in rows.groupby("h", sort=True):
        table = losses(group)
        mean = pooled(table)
        spa[str(h)] = spa_pvalues(mean, seed)
        if spa[str(h)] is not None:
            spa[str(h)]["series"] = {
                uid: spa_pvalues(by_series.droplevel("unique_id"), seed)
                for uid, by_series in table.groupby(level="unique_id", sort=True)
            }
        mcs[str(h)] = confidence_set(mean, seed)
    return {"spa": spa, "mcs": mcs}


def cross_series(report: dict) -> dict:
    """Per horizon and model, from `metrics.json`'s `series`: `n_series` (those with a DM test),
    `median_rmse_vs_naive` and `share_beating_naive` (DM p after Holm's correction over the
    series < `ALPHA`, statistic negative). The baseline has no entry."""
    out: dict[str, dict] = {}
    for by_model in report["series"].values():
        for model, scores in by_model.items():
            for h, s in scores["by_horizon"].items():
                if model != BASELINE:
                    out.setdefault(h, {}).setdefault(model, []).append(s)
    return {
        h: {model: _summary(entries) for model, entries in sorted(by_model.items())}
        for h, by_model in sorted(out.items(), key=lambda item: int(item[0]))
    }


def _summary(entries: list[dict]) -> dict:
    ratios = [s["rmse_vs_naive"] for s in entries if s["rmse_vs_naive"] is not None]
    tested = [s for s in entries if s["dm_pvalue_vs_naive"] is not None]
    beats = 0
    if tested:
        pvalues = [s["dm_pvalue_vs_naive"] for s in tested]
        # One test needs no correction (Holm's is then the identity, `p <= alpha` as multipletests
        # has it); skipping the call matters because multipletests runs gc.collect() each time,
        # 0.2 s in a process holding matplotlib and pandas, for every model and horizon.
        reject = [pvalues[0] <= ALPHA] if len(tested) == 1 else multipletests(pvalues, ALPHA, CORRECTION)[0]
        beats = sum(bool(r) and s["dm_stat_vs_naive"] < 0 for r, s in zip(reject, tested, strict=True))
    return {
        "n_series": len(tested),
        "median_rmse_vs_naive": float(np.median(ratios)) if ratios else None,
        "share_beating_naive": beats / len(tested) if tested else None,
    }


def series_skill_frame(report: dict) -> pd.DataFrame:
    """`h`, `model`, `unique_id`, `rmse_vs_naive` of every model but the baseline on every series
    (NaN where undefined): the data of the figure across series."""
    rows = [
        (int(h), model, uid, s["rmse_vs_naive"])
        for uid, by_model in report["series"].items()
        for model, scores in by_model.items()
        if model != BASELINE
        for h, s in scores["by_horizon"].items()
    ]
    frame = pd.DataFrame(rows, columns=["h", "model", "unique_id", "rmse_vs_naive"])
    return frame.astype({"h": "int64", "rmse_vs_naive": "float64"}).sort_values(["h", "model", "unique_id"])


def figure_series(report: dict, limit: int) -> list[str]:
    """The series drawn one by one: all when there are at most `limit`, else `limit` of them
    spread evenly over the series ranked by their median RMSE / naive at the shortest horizon
    over the models (ties and missing ratios by name): the best, the worst and evenly between."""
    series = report["series"]
    if len(series) <= limit:
        return list(series)

    def median_ratio(uid: str) -> float:
        ratios = [s["rmse_vs_naive"] for m, s in series[uid].items() if m != BASELINE and s["rmse_vs_naive"]]
        return float(np.median(ratios)) if ratios else np.inf

    ranked = sorted(series, key=lambda uid: (median_ratio(uid), uid))
    picks = np.unique(np.round(np.linspace(0, len(ranked) - 1, limit)).astype(int)) if limit else []
    return sorted(ranked[i] for i in picks)
