"""Scoring per horizon on a table small enough to score by hand, and the champion rule per horizon."""

import math

import numpy as np
import pandas as pd
import pytest

from pipeline import evaluate, metrics, scoring
from pipeline.cli import UserError

PRICES = [10.0, 11.0, 12.0, 11.0, 13.0, 14.0, 13.0, 15.0]  # days 0-7; train to day 3, test days 4-7
DAYS = pd.bdate_range("2021-03-01", periods=len(PRICES))
# (h, target day, cutoff day, the model's forecast). h=1: days 4-7; h=2: the test days whose
# cutoff is day 3 or later, days 5-7.
FORECASTS = [
    (1, 4, 3, 12.0),
    (1, 5, 4, 13.5),
    (1, 6, 5, 14.5),
    (1, 7, 6, 14.0),
    (2, 5, 3, 12.0),
    (2, 6, 4, 12.0),
    (2, 7, 5, 13.5),
]


HALF_WIDTH = {"90": 1.0, "50": 0.5}  # the model's intervals: its forecast plus or minus these


def table(model: bool) -> pd.DataFrame:
    """A predictions table of series X: the model's forecasts with 90% and 50% intervals (in that
    order: the columns need not be sorted), or naive's (the cutoff's price) without intervals."""
    frame = pd.DataFrame(
        {
            "unique_id": "X",
            "ds": [DAYS[t] for _, t, _, _ in FORECASTS],
            "cutoff": [DAYS[c] for _, _, c, _ in FORECASTS],
            "h": np.array([h for h, _, _, _ in FORECASTS], dtype="int64"),
            "fold": np.zeros(len(FORECASTS), dtype="int64"),
            "y": [PRICES[t] for _, t, _, _ in FORECASTS],
            "y_hat": [f if model else PRICES[c] for _, _, c, f in FORECASTS],
        }
    )
    if model:
        for level, half in HALF_WIDTH.items():
            frame[f"y_lo_{level}"], frame[f"y_hi_{level}"] = frame["y_hat"] - half, frame["y_hat"] + half
    return frame


def tables() -> dict[str, pd.DataFrame]:
    return {"naive": table(model=False), "m": table(model=True)}


@pytest.fixture(scope="module")
def inputs():
    prices = pd.DataFrame({"unique_id": "X", "ds": DAYS, "close": PRICES})
    folds = {
        "X": [
            {
                "fold": 0,
                "history_start": "2021-03-01",
                "train_start": "2021-03-02",
                "train_end": f"{DAYS[3]:%Y-%m-%d}",
                "test_start": f"{DAYS[4]:%Y-%m-%d}",
                "test_end": f"{DAYS[7]:%Y-%m-%d}",
            }
        ]
    }
    context = scoring.price_context(prices)
    return context, scoring.fold_scales(context, folds)


def test_each_horizon_is_scored_against_naive_at_the_same_horizon_by_hand(inputs):
    rows = scoring.forecast_rows(tables(), *inputs)
    m = evaluate.metrics_report(rows)["models"]["m"]["by_horizon"]
    # h=1: y 13, 14, 13, 15 from cutoff prices 11, 13, 14, 13. naive errors 2, 1, -1, 2 (squares sum
    # to 10); m's 1, 0.5, -1.5, 1 (4.5). m calls up, up, up, up: the third is wrong.
    assert m["1"]["rmse_vs_naive"] == pytest.approx(math.sqrt(4.5 / 10), rel=1e-12)
    assert m["1"]["directional_accuracy"] == 0.75
    # h=2: y 14, 13, 15 from cutoff prices 11, 13, 14. naive errors 3, 0, 1 (10); m's 2, 1, 1.5
    # (7.25). Day 6 equals its cutoff's price and is left out; m calls day 5 up (right) and day 7
    # down (wrong). Against the previous day's price instead it would score 2 of 3.
    assert m["2"]["rmse_vs_naive"] == pytest.approx(math.sqrt(7.25 / 10), rel=1e-12)
    assert m["2"]["directional_accuracy"] == 0.5
    # MASE at both horizons over the one-step train scale: mean |10->11->12->11| moves = 1.
    assert m["1"]["mase"] == pytest.approx((1 + 0.5 + 1.5 + 1) / 4) and m["2"]["mase"] == pytest.approx(4.5 / 3)
    assert (m["1"]["n_forecasts"], m["2"]["n_forecasts"]) == (4, 3)


def test_intervals_are_scored_at_each_level_and_horizon_by_hand(inputs):
    rows = scoring.forecast_rows(tables(), *inputs)
    m = evaluate.metrics_report(rows)["models"]["m"]["by_horizon"]
    interval_keys = [f"{k}_{level}" for level in ("50", "90") for k in ("coverage", "width", "interval_score")]
    assert list(m["1"]) == [*scoring.METRIC_KEYS, *interval_keys]  # by level in numeric order
    # h=1: y 13, 14, 13, 15, forecasts 12, 13.5, 14.5, 14.
    # 50% (alpha 0.5, a miss costs 4 per unit): [11.5, 12.5] 0.5 below y, [13, 14] holds 14 (closed),
    # [14, 15] 1 above y, [13.5, 14.5] 0.5 below y. IS (1 + 2) + 1 + (1 + 4) + (1 + 2), mean 3.
    assert (m["1"]["coverage_50"], m["1"]["width_50"]) == (0.25, 1.0)
    assert m["1"]["interval_score_50"] == pytest.approx(3.0, rel=1e-12)
    # 90% (a miss costs 20 per unit): [11, 13] holds 13, [12.5, 14.5], [13.5, 15.5] 0.5 above
    # y = 13, [13, 15] holds 15. IS 2 + 2 + (2 + 10) + 2, mean 4.5.
    assert (m["1"]["coverage_90"], m["1"]["width_90"]) == (0.75, 2.0)
    assert m["1"]["interval_score_90"] == pytest.approx(4.5, rel=1e-12)
    # h=2: y 14, 13, 15, forecasts 12, 12, 13.5. 50%: every y above, by 1.5, 0.5 and 1:
    # IS (1 + 6) + (1 + 2) + (1 + 4), mean 5. 90%: [11, 13] 1 below 14, [11, 13] holds 13,
    # [12.5, 14.5] 0.5 below 15: IS (2 + 20) + 2 + (2 + 10), mean 12.
    assert m["2"]["coverage_50"] == 0.0 and m["2"]["interval_score_50"] == pytest.approx(5.0, rel=1e-12)
    assert m["2"]["coverage_90"] == pytest.approx(1 / 3) and m["2"]["interval_score_90"] == pytest.approx(12.0)
    assert "coverage_50" not in evaluate.metrics_report(rows)["models"]["naive"]  # naive's table has none


def test_pinball_losses_by_hand(inputs):
    rows = scoring.forecast_rows(tables(), *inputs)
    m = evaluate.evaluation_report(rows, {})["models"]["m"]
    # h=1, 90%: lower bounds 11, 12.5, 13.5, 13 at tau 0.05 (0.05 per unit above, 0.95 below):
    # 0.1 + 0.075 + 0.475 + 0.1 = 0.75; upper 13, 14.5, 15.5, 15 at tau 0.95 (0.05 per unit
    # below): 0 + 0.025 + 0.125 + 0 = 0.15. Mean of the means: (0.1875 + 0.0375) / 2.
    assert m["pinball_90"] == pytest.approx((0.75 / 4 + 0.15 / 4) / 2, rel=1e-12)
    # 50%: lower 11.5, 13, 14, 13.5 at tau 0.25: 0.375 + 0.25 + 0.75 + 0.375; upper 12.5, 14, 15,
    # 14.5 at tau 0.75: 0.375 + 0 + 0.5 + 0.375.
    assert m["pinball_50"] == pytest.approx((1.75 / 4 + 1.25 / 4) / 2, rel=1e-12)


def test_rows_carry_the_cutoff_price_and_naive_at_the_same_horizon(inputs):
    rows = scoring.forecast_rows(tables(), *inputs)
    m = rows[rows["model"] == "m"]
    assert list(m["y_cutoff"]) == [PRICES[c] for _, _, c, _ in FORECASTS]
    assert list(m["y_hat_naive"]) == [PRICES[c] for _, _, c, _ in FORECASTS]  # naive forecasts its cutoff's price
    assert list(m["h"]) == [1, 1, 1, 1, 2, 2, 2]
    assert list(rows.columns[8:12]) == ["y_lo_50", "y_hi_50", "y_lo_90", "y_hi_90"]  # by level, after y_hat
    assert rows.loc[rows["model"] == "naive", "y_lo_50"].isna().all()  # naive's table has no intervals


def test_the_dm_test_allows_for_the_horizon(inputs):
    rows = scoring.forecast_rows(tables(), *inputs)
    at_2 = rows[(rows["model"] == "m") & (rows["h"] == 2)]
    y, y_hat, naive = (at_2[c].to_numpy() for c in ("y", "y_hat", "y_hat_naive"))
    scores = scoring.score(at_2)
    expected = metrics.diebold_mariano(y, y_hat, naive, horizon=2)
    assert (scores["dm_stat_vs_naive"], scores["dm_pvalue_vs_naive"]) == pytest.approx(expected, rel=1e-12)
    assert expected != pytest.approx(metrics.diebold_mariano(y, y_hat, naive, horizon=1))
    with pytest.raises(ValueError, match="one horizon"):
        scoring.score(rows[rows["model"] == "m"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.assign(cutoff=t["cutoff"].where(t.index != 5, DAYS[3])), "column 'cutoff': 1 cutoffs"),
        (lambda t: t.assign(h=t["h"].where(t.index != 0, -1)), "column 'h'"),
        (lambda t: t.assign(h=1), "more than one forecast for X at h=1 on"),
        (lambda t: t.drop(columns="y_hi_50"), "column 'y_lo_50' needs its partner 'y_hi_50'"),
        (lambda t: t.rename(columns={"y_lo_90": "y_lo_ninety"}), "column 'y_lo_ninety' is not an interval bound"),
        (lambda t: t.assign(y_lo_90=t["y_lo_90"].where(t.index != 2, np.nan)), "'y_lo_90': 1 values are not finite"),
        (lambda t: t.assign(y_lo_50=t["y_hi_50"] + 0.1), "column 'y_lo_50' is above 'y_hi_50' on 7 rows (first: X h=1"),
    ],
)
def test_a_bad_cutoff_or_horizon_is_refused_naming_file_and_column(inputs, change, message):
    broken = tables()
    broken["m"] = change(broken["m"])
    with pytest.raises(UserError, match="m.parquet") as err:
        scoring.forecast_rows(broken, *inputs)
    assert message in str(err.value) and "\n" not in str(err.value)


def scores(rmse: float, stat: float | None = None, p: float | None = None) -> dict:
    return {"rmse": rmse, "dm_stat_vs_naive": stat, "dm_pvalue_vs_naive": p}


def test_champions_per_horizon():
    # At h=1 m's lower RMSE could be luck; at h=5 it beats naive; at h=20 it is worse.
    at = {"1": (scores(1.0), scores(0.9, -1.0, 0.3)), "5": (scores(2.0), scores(1.5, -3.0, 0.01))}
    at["20"] = (scores(4.0), scores(5.0, 3.0, 0.01))
    series = {
        "naive": {**at["1"][0], "by_horizon": {h: pair[0] for h, pair in at.items()}},
        "m": {**at["1"][1], "by_horizon": {h: pair[1] for h, pair in at.items()}},
    }
    report = {"models": series, "series": {"X": series}}
    assert scoring.horizons(report) == [1, 5, 20]  # numeric order, not "1", "20", "5"
    assert scoring.champions(report) == scoring.champions(report, 1) == {"X": "naive"}
    assert scoring.champions(report, 5) == {"X": "m"}
    assert scoring.champions(report, 20) == {"X": "naive"}
    with pytest.raises(UserError, match=r"metrics.json: no scores at horizon 7 \(it has 1, 5, 20"):
        scoring.champions(report, 7)
