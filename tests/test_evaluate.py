"""The evaluate stage: scores from small hand-made tables, the metrics.json contract, the
leaderboard, and byte-identical reruns of the stage."""

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import run_in

from pipeline import diagnostics, evaluate, io, leaderboard, plots, scoring
from pipeline.cli import UserError

N_DAYS, TEST_SIZE = 120, 20  # two folds of 20 test days per series
HORIZONS = (1, 3)  # the tables' horizons: h=1 plays one step, h=3 a longer one


def make_prices() -> pd.DataFrame:
    """Two seeded random walks (one with an unchanged day in its last fold) and a constant series."""
    rng = np.random.default_rng(7)
    ds = pd.bdate_range("2020-01-01", periods=N_DAYS)
    walk_a = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, N_DAYS)))
    walk_b = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, N_DAYS)))
    walk_b[-5] = walk_b[-6]  # a day without a move
    frames = [
        pd.DataFrame({"unique_id": uid, "ds": ds, "close": price})
        for uid, price in (("AAA", walk_a), ("BBB", walk_b), ("FLAT", np.full(N_DAYS, 10.0)))
    ]
    return pd.concat(frames, ignore_index=True).astype({"unique_id": "str"})


def make_folds(prices: pd.DataFrame) -> dict:
    folds = {}
    for uid, rows in prices.groupby("unique_id", sort=True):
        days = rows["ds"].dt.strftime("%Y-%m-%d").tolist()
        folds[uid] = []
        for k in range(2):
            test_start = N_DAYS - (2 - k) * TEST_SIZE
            folds[uid].append(
                {
                    "fold": k,
                    "history_start": days[0],
                    "train_start": days[1],
                    "train_end": days[test_start - 1],
                    "test_start": days[test_start],
                    "test_end": days[test_start + TEST_SIZE - 1],
                }
            )
    return folds


LEVELS = ("80", "95")
SPREAD = {"80": 0.02, "95": 0.03}  # each interval's half-width at h=1 as a share of the price


def make_tables(prices: pd.DataFrame, horizons: tuple[int, ...] = HORIZONS) -> dict[str, pd.DataFrame]:
    """`naive` (no intervals), a drifting model (`mymodel`) and one that peeks at the answer
    (`oracle`), both with 80% and 95% intervals, at every horizon: each fold's test days whose
    cutoff is on or after the day before the fold's first test day, as the walk-forward loop
    writes them."""
    frames = []
    for uid, rows in prices.groupby("unique_id", sort=True):
        price, ds = rows["close"].to_numpy(), rows["ds"].to_numpy()
        for fold in range(2):
            test_start = N_DAYS - (2 - fold) * TEST_SIZE
            for h in horizons:
                target = np.arange(test_start + h - 1, test_start + TEST_SIZE)
                frames.append(
                    pd.DataFrame(
                        {
                            "unique_id": uid,
                            "ds": ds[target],
                            "cutoff": ds[target - h],
                            "h": h,
                            "fold": fold,
                            "y": price[target],
                            "y_cutoff": price[target - h],
                        }
                    )
                )
    base = pd.concat(frames, ignore_index=True).astype({"unique_id": "str", "h": "int64", "fold": "int64"})
    base = base.sort_values(["unique_id", "h", "ds"], kind="stable").reset_index(drop=True)
    last = base["y_cutoff"]
    naive = base.assign(y_hat=last)
    drift = base.assign(y_hat=last * 1.001 ** base["h"])
    oracle = base.assign(y_hat=last + 0.5 * (base["y"] - last))
    # Half-widths grow like sqrt(h); mymodel's are around the cutoff's price, oracle's around its forecast.
    for level in LEVELS:
        half = SPREAD[level] * np.sqrt(base["h"]) * last
        drift[f"y_lo_{level}"], drift[f"y_hi_{level}"] = last - half, last + half
        oracle[f"y_lo_{level}"], oracle[f"y_hi_{level}"] = oracle["y_hat"] - half / 4, oracle["y_hat"] + half / 4
    columns = ["unique_id", "ds", "cutoff", "h", "fold", "y", "y_hat"]
    bounds = [f"y_{side}_{level}" for level in LEVELS for side in ("lo", "hi")]
    return {"naive": naive[columns], "mymodel": drift[columns + bounds], "oracle": oracle[columns + bounds]}


MYMODEL_METADATA = {
    "model": "mymodel",
    "stage": "test",
    "covariates": ["volume", "NASDAQ"],
    "n_params": 1313,
    "parameter_counts": {"lstm W_xh": 128, "lstm W_hh": 1024, "lstm b": 128, "dense W_hy": 32, "dense b": 1},
    "intervals": {"method": "aci", "levels": [80, 95], "gamma": 0.005},
}
DESCRIPTIONS = {
    "mymodel": MYMODEL_METADATA,
    "oracle": {"model": "oracle", "intervals": {"method": "gaussian", "levels": [80, 95], "gamma": None}},
    "naive": {"model": "naive"},
}
INTERVAL_KEYS = tuple(f"{key}_{level}" for level in LEVELS for key in ("coverage", "width", "interval_score"))


@pytest.fixture(scope="module")
def inputs():
    prices = make_prices()
    folds = make_folds(prices)
    context = scoring.price_context(prices)
    return prices, folds, context, scoring.fold_scales(context, folds)


@pytest.fixture(scope="module")
def rows(inputs):
    prices, _, context, scales = inputs
    return scoring.forecast_rows(make_tables(prices), context, scales)


def test_metrics_report_has_the_contract_shape_and_valid_json(rows):
    report = evaluate.metrics_report(rows)
    assert list(report) == ["models", "buy_and_hold", "series", "tests"]
    assert list(report["models"]) == ["mymodel", "naive", "oracle"]
    assert list(report["series"]) == ["AAA", "BBB", "FLAT"]
    entries = [*report["models"].items(), *(e for by_model in report["series"].values() for e in by_model.items())]
    assert len(entries) == 3 + 3 * 3
    for model, scores in entries:
        # naive's table has no interval columns, so it has no interval keys
        keys = (*scoring.METRIC_KEYS, *(INTERVAL_KEYS if model != "naive" else ()))
        assert tuple(scores) == (*keys, "by_horizon", "trading")  # trading: the h=1 forecasts' economic value
        assert list(scores["by_horizon"]) == ["1", "3"]
        top = {k: v for k, v in scores.items() if k not in ("by_horizon", "trading")}
        assert top == scores["by_horizon"]["1"]  # top: h=1
        for at_h in scores["by_horizon"].values():
            assert tuple(at_h) == keys
            assert all(v is None or type(v) is float for k, v in at_h.items() if k != "n_forecasts")
            assert type(at_h["n_forecasts"]) is int
    assert scoring.horizons(report) == [1, 3]
    json.dumps(report, allow_nan=False)  # no NaN or inf anywhere


def test_rmse_and_mae_recomputed_with_numpy_agree_at_every_horizon(rows, inputs):
    report = evaluate.metrics_report(rows)
    for model, table in make_tables(inputs[0]).items():
        for h, at_h in table.groupby("h"):
            scores = report["models"][model]["by_horizon"][str(h)]
            error = at_h["y"].to_numpy() - at_h["y_hat"].to_numpy()
            assert scores["rmse"] == pytest.approx(math.sqrt(np.mean(error**2)), rel=1e-12)
            assert scores["mae"] == pytest.approx(np.mean(np.abs(error)), rel=1e-12)
            assert scores["n_forecasts"] == len(at_h) == 3 * 2 * (TEST_SIZE - h + 1)
            for uid, part in at_h.groupby("unique_id"):
                e = part["y"].to_numpy() - part["y_hat"].to_numpy()
                series = report["series"][uid][model]["by_horizon"][str(h)]
                assert series["rmse"] == pytest.approx(math.sqrt(np.mean(e**2)), rel=1e-12)


def test_scores_against_the_baseline_at_every_horizon(rows):
    report = evaluate.metrics_report(rows)
    for h in ("1", "3"):
        naive, oracle = report["models"]["naive"]["by_horizon"][h], report["models"]["oracle"]["by_horizon"][h]
        assert naive["rmse_vs_naive"] == 1.0
        assert naive["dm_stat_vs_naive"] is None and naive["dm_pvalue_vs_naive"] is None
        assert naive["directional_accuracy"] == 0.0  # no change forecast: no direction called
        # Halving every error quarters every squared error: RMSE ratio 0.5 on the moving series.
        assert report["series"]["AAA"]["oracle"]["by_horizon"][h]["rmse_vs_naive"] == pytest.approx(0.5)
        assert oracle["directional_accuracy"] == 1.0
        assert oracle["dm_stat_vs_naive"] < 0 and oracle["dm_pvalue_vs_naive"] < 0.05


def test_the_h1_rows_of_a_multi_horizon_table_score_as_a_one_horizon_table(rows, inputs):
    prices, _, context, scales = inputs
    alone = evaluate.metrics_report(scoring.forecast_rows(make_tables(prices, (1,)), context, scales))
    both = evaluate.metrics_report(rows)
    assert alone["models"]["mymodel"]["by_horizon"].keys() == {"1"}
    for model, scores in alone["models"].items():
        assert scores["by_horizon"]["1"] == both["models"][model]["by_horizon"]["1"]
        for uid in alone["series"]:
            assert alone["series"][uid][model]["by_horizon"]["1"] == both["series"][uid][model]["by_horizon"]["1"]
    assert both["models"]["oracle"]["by_horizon"]["3"] != both["models"]["oracle"]["by_horizon"]["1"]


def test_mase_uses_each_folds_one_step_train_scale_at_every_horizon(rows, inputs):
    prices = inputs[0]
    price = prices.loc[prices["unique_id"] == "AAA", "close"].to_numpy()
    start = N_DAYS - 2 * TEST_SIZE
    scales = [np.mean(np.abs(np.diff(price[:start]))), np.mean(np.abs(np.diff(price[: start + TEST_SIZE])))]
    report = evaluate.metrics_report(rows)["series"]["AAA"]["naive"]["by_horizon"]
    for h in HORIZONS:
        # naive's h-step error is the move over h days; each fold's first h - 1 test days have none
        errors = [
            np.abs(price[s + h - 1 : s + TEST_SIZE] - price[s - 1 : s + TEST_SIZE - h])
            for s in (start, start + TEST_SIZE)
        ]
        expected = np.mean(np.concatenate([errors[0] / scales[0], errors[1] / scales[1]]))
        assert report[str(h)]["mase"] == pytest.approx(expected, rel=1e-12)


def test_a_constant_series_gives_nulls_not_nan(rows):
    flat = evaluate.metrics_report(rows)["series"]["FLAT"]
    assert flat["mymodel"]["mase"] is None  # no price change in the train part
    assert flat["mymodel"]["directional_accuracy"] is None  # no day moved
    assert flat["mymodel"]["rmse_vs_naive"] is None  # the naive forecast is exact
    assert flat["mymodel"]["dm_stat_vs_naive"] is None  # constant loss differential
    assert flat["mymodel"]["rmse"] == pytest.approx(0.01)
    # A pooled MASE over a constant fold is undefined as well.
    assert evaluate.metrics_report(rows)["models"]["mymodel"]["mase"] is None


def test_unchanged_days_are_excluded_and_counted_per_horizon(rows):
    details = evaluate.evaluation_report(rows, DESCRIPTIONS)
    mymodel = details["models"]["mymodel"]
    # h=1: FLAT's 40 test days and BBB's one day without a move.
    assert mymodel["direction_days_unchanged"] == 41
    assert mymodel["direction_days_scored"] == 3 * 2 * TEST_SIZE - 41
    assert {k: v for k, v in mymodel.items() if k.startswith(("direction", "pinball"))} == (
        details["by_horizon"]["1"]["models"]["mymodel"]
    )
    # h=3: only FLAT's 2 x 18 days equal their cutoff's price (BBB's flat day moved over 3 days).
    assert details["by_horizon"]["3"]["models"]["mymodel"]["direction_days_unchanged"] == 2 * (TEST_SIZE - 2)
    assert mymodel["n_params"] == 1313 and details["models"]["naive"]["n_params"] is None
    assert details["horizons"] == [1, 3] and list(details["by_horizon"]) == ["1", "3"]
    assert details["folds"] == details["by_horizon"]["1"]["folds"]
    json.dumps(details, allow_nan=False)


def interval_by_numpy(table: pd.DataFrame, level: str) -> tuple[float, float, float, float]:
    """Coverage, width, interval score and pinball loss of one level, written out with NumPy."""
    y, lo, hi = (table[c].to_numpy() for c in ("y", f"y_lo_{level}", f"y_hi_{level}"))
    alpha = 1 - int(level) / 100
    miss = np.where(y < lo, lo - y, 0) + np.where(y > hi, y - hi, 0)
    lower = np.where(y >= lo, alpha / 2 * (y - lo), (1 - alpha / 2) * (lo - y))
    upper = np.where(y >= hi, (1 - alpha / 2) * (y - hi), alpha / 2 * (hi - y))
    return (
        np.mean((lo <= y) & (y <= hi)),
        np.mean(hi - lo),
        np.mean(hi - lo + 2 / alpha * miss),
        (np.mean(lower) + np.mean(upper)) / 2,
    )


def test_interval_scores_recomputed_with_numpy_agree_per_model_level_horizon_and_series(rows, inputs):
    report = evaluate.metrics_report(rows)
    details = evaluate.evaluation_report(rows, DESCRIPTIONS)
    coverages = []
    for model in ("mymodel", "oracle"):
        table = make_tables(inputs[0])[model]
        for h, at_h in table.groupby("h"):
            scores, more = report["models"][model]["by_horizon"][str(h)], details["by_horizon"][str(h)]["models"][model]
            for level in LEVELS:
                coverage, width, interval_score, pinball = interval_by_numpy(at_h, level)
                assert scores[f"coverage_{level}"] == pytest.approx(coverage, rel=1e-12)
                assert scores[f"width_{level}"] == pytest.approx(width, rel=1e-12)
                assert scores[f"interval_score_{level}"] == pytest.approx(interval_score, rel=1e-12)
                assert more[f"pinball_{level}"] == pytest.approx(pinball, rel=1e-12)
                coverages.append(coverage)
                for uid, part in at_h.groupby("unique_id"):
                    by_series = report["series"][uid][model]["by_horizon"][str(h)]
                    assert by_series[f"interval_score_{level}"] == pytest.approx(interval_by_numpy(part, level)[2])
    assert 0 < min(coverages) < max(coverages) < 1  # some days inside, some outside: the penalty is exercised
    mymodel = report["models"]["mymodel"]["by_horizon"]
    assert mymodel["3"]["width_80"] > 1.5 * mymodel["1"]["width_80"]  # the intervals widen like sqrt(h)
    assert mymodel["1"]["coverage_95"] >= mymodel["1"]["coverage_80"]


def test_evaluation_names_each_models_interval_method_and_drops_the_single_interval(rows):
    details = evaluate.evaluation_report(rows, DESCRIPTIONS)
    models = details["models"]
    assert (models["mymodel"]["interval_method"], models["mymodel"]["interval_gamma"]) == ("aci", 0.005)
    assert (models["oracle"]["interval_method"], models["oracle"]["interval_gamma"]) == ("gaussian", None)
    assert (models["naive"]["interval_method"], models["naive"]["interval_gamma"]) == (None, None)
    assert not any(k.startswith("pinball") for k in models["naive"])  # no interval columns
    for entry in [*models.values(), *(m for at_h in details["by_horizon"].values() for m in at_h["models"].values())]:
        assert not {"interval_coverage", "interval_mean_width"} & set(entry)
    assert list(models["oracle"])[-2:] == ["pinball_80", "pinball_95"]
    # Without its table's metadata a model's bounds are still scored; only the method is unknown.
    assert evaluate.evaluation_report(rows, {})["models"]["oracle"]["interval_method"] is None


def test_a_model_without_intervals_has_no_interval_scores_anywhere(rows):
    points = rows[rows["model"] == "naive"]
    assert scoring.interval_levels(points) == []  # its columns are there, from the other tables, but empty
    assert tuple(evaluate.metrics_report(points)["models"]["naive"]) == (*scoring.METRIC_KEYS, "by_horizon", "trading")
    assert evaluate.calibration_frame(evaluate.metrics_report(points)).empty


def test_interval_levels_are_the_complete_pairs_in_numeric_order():
    frame = pd.DataFrame(
        {"y_lo_95": [1.0], "y_hi_95": [2.0], "y_lo_9.5": [1.0], "y_hi_9.5": [2.0], "y_lo_50": [1.0]}
    ).assign(y_hi_50=np.nan, y=1.0)
    assert scoring.interval_levels(frame) == ["9.5", "95"]  # 50 has no upper bound value; "9.5" < "95" by number
    assert scoring.bounds("9.5") == ("y_lo_9.5", "y_hi_9.5")


def test_calibration_frame_is_every_coverage_by_horizon_model_and_level(rows):
    report = evaluate.metrics_report(rows)
    frame = evaluate.calibration_frame(report)
    assert list(frame.columns) == ["h", "model", "level", "coverage"]
    assert list(zip(frame["h"], frame["model"], frame["level"], strict=True)) == [
        (h, m, level) for h in HORIZONS for m in ("mymodel", "oracle") for level in (80, 95)
    ]
    assert frame["level"].dtype == "int64"  # written 80, not 80.0, in the CSV
    for h, model, level, coverage in frame.itertuples(index=False):
        assert coverage == report["models"][model]["by_horizon"][str(h)][f"coverage_{level}"]


def test_fan_frame_is_the_models_last_fold_at_each_level(rows):
    series = rows[(rows["unique_id"] == "AAA") & (rows["h"] == 1)]
    fan = evaluate.fan_frame(series, "oracle")
    assert list(fan.columns) == ["level", "ds", "y", "y_hat", "y_lo", "y_hi"]
    assert list(fan["level"].unique()) == [80, 95] and len(fan) == 2 * TEST_SIZE
    last = series[(series["model"] == "oracle") & (series["fold"] == 1)]
    at_95 = fan[fan["level"] == 95]
    assert list(at_95["ds"]) == list(last["ds"]) and list(at_95["y_hi"]) == list(last["y_hi_95"])
    assert (fan["y_lo"] <= fan["y_hat"]).all() and (fan["y_hat"] <= fan["y_hi"]).all()
    assert evaluate.fan_frame(series, "naive").empty


def test_pairwise_dm_is_antisymmetric_and_per_horizon(rows):
    report = evaluate.metrics_report(rows)
    for h in HORIZONS:
        pairs = evaluate.pairwise_dm(rows[rows["h"] == h])
        assert sorted(pairs) == ["mymodel", "naive", "oracle"]
        assert pairs["oracle"]["naive"]["dm_stat"] == pytest.approx(-pairs["naive"]["oracle"]["dm_stat"])
        assert pairs["oracle"]["naive"]["dm_pvalue"] == pytest.approx(pairs["naive"]["oracle"]["dm_pvalue"])
        assert pairs["oracle"]["naive"]["dm_stat"] == pytest.approx(
            report["models"]["oracle"]["by_horizon"][str(h)]["dm_stat_vs_naive"], rel=1e-12
        )


def test_skill_frame_has_a_row_per_horizon_and_model(rows):
    skill = evaluate.skill_frame(evaluate.metrics_report(rows))
    assert list(skill.columns) == ["h", "model", "rmse_vs_naive"]
    assert list(zip(skill["h"], skill["model"], strict=True)) == [
        (h, m) for h in HORIZONS for m in ("mymodel", "naive", "oracle")
    ]
    assert (skill.loc[skill["model"] == "naive", "rmse_vs_naive"] == 1.0).all()


def test_leaderboard_names_every_model_and_says_who_beats_naive(rows, inputs):
    _, folds, context, _ = inputs
    report = evaluate.metrics_report(rows)
    stats = {
        uid: diagnostics.series_stats(g["ds"].to_numpy(), np.log(g["price"].to_numpy()), 10)[0]
        for uid, g in context.groupby("unique_id")
    }
    diagnosed = {"seasonal_period": 10, "series": stats}
    details = evaluate.evaluation_report(rows, DESCRIPTIONS)
    figure = Path("plots/images/skill_by_horizon.png")
    calibration, fan = Path("plots/images/calibration.png"), Path("plots/images/fan_AAA.png")
    page = leaderboard.render(report, details, folds, [figure, calibration, fan], diagnosed)
    for h in ("1", "3"):  # the headline: SPA's verdict and the model confidence set
        p = leaderboard._p(report["tests"]["spa"][h]["pvalue"])
        assert f"- **h={h}: a model beats the naive random walk** after allowing for testing 2 models" in page
        assert f"(consistent p={p} < 5%; squared log-price error, pooled over 3 series)" in page
    assert "Model confidence set (10%): oracle." in page
    assert "| 1 | oracle |" in page  # ranked first by one-step RMSE
    assert "The table below is at h=1 (one step)" in page and "Scores at h=1 (one step):" in page
    blocks = "lstm W_xh 128, lstm W_hh 1,024, lstm b 128, dense W_hy 32, dense b 1"
    assert f"| mymodel | volume, NASDAQ | 1,313 | {blocks} |" in page  # the covariates its table's metadata names
    assert "| naive | none | n/a | - |" in page
    intervals = page.split("## Prediction intervals")[1].split("\n## ")[0]
    assert "| model | method | h | 80% interval | 95% interval |" in intervals
    s = report["models"]["mymodel"]["by_horizon"]["3"]
    cells = [
        f"{L}%: {s[f'coverage_{L}']:.1%} covered, width {leaderboard._sig(s[f'width_{L}'])}, "
        f"IS {leaderboard._sig(s[f'interval_score_{L}'])}"
        for L in LEVELS
    ]
    assert f"| mymodel | aci (gamma 0.005) | 3 | {cells[0]} | {cells[1]} |" in intervals
    assert "| oracle | gaussian | 1 | 80%: " in intervals and "| oracle | gaussian | 3 | 80%: " in intervals
    assert "| naive |" not in intervals  # no intervals, no row
    assert "coverage" in intervals and "conformal" in intervals and "interval score" in intervals  # the prose
    assert f"![Nominal against empirical coverage]({calibration.as_posix()})" in intervals
    aaa = page.split("### AAA")[1].split("\n### ")[0]
    assert f"]({fan.as_posix()})" in aaa and "fan_" not in page.split("### BBB")[1].split("## By fold")[0]
    assert "| FLAT | 120 | constant | n/a | constant | n/a |" in page
    skill = page.split("## Skill by horizon")[1].split("\n## ")[0]
    assert "| model | h=1 | h=3 |" in skill
    assert "| naive | 1 (baseline) | 1 (baseline) |" in skill
    oracle = report["models"]["oracle"]["by_horizon"]
    p = {h: leaderboard._p(oracle[h]["dm_pvalue_vs_naive"]) for h in ("1", "3")}
    assert f"| oracle | 0.5000 (p={p['1']}) ✓ | 0.5000 (p={p['3']}) ✓ |" in skill
    assert f"![RMSE / naive by horizon]({figure.as_posix()})" in skill
    without_oracle = rows[rows["model"] != "oracle"]
    details = evaluate.evaluation_report(without_oracle, DESCRIPTIONS)
    page = leaderboard.render(evaluate.metrics_report(without_oracle), details, folds, [], diagnosed)
    assert "- **h=1: no model beats the naive random walk** after allowing for testing 1 model" in page
    assert "- **h=3: no model beats the naive random walk**" in page
    assert "no evidence it beats naive" in page
    assert "![" not in page  # no figure given, none linked
    points = rows[rows["model"] == "naive"]
    page = leaderboard.render(
        evaluate.metrics_report(points), evaluate.evaluation_report(points, {}), folds, [], diagnosed
    )
    assert "## Prediction intervals" not in page  # intervals.method: none


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.assign(y_hat=t["y_hat"].where(t.index != 3, np.nan)), "column 'y_hat': 1 values are not finite"),
        (lambda t: t.assign(y=t["y"] * 1.01), "column 'y' differs from the target price"),
        (lambda t: t.assign(ds=t["ds"] + pd.Timedelta(days=365 * 30)), "forecasts are for days not in"),
        (lambda t: pd.concat([t, t.iloc[:1]]), "more than one forecast for AAA at h=1"),
        (lambda t: t.assign(fold=t["fold"] + 5), "column 'fold': fold 5 of AAA is not in"),
        (lambda t: t.drop(columns="y_hi_95"), "column 'y_lo_95' needs its partner 'y_hi_95'"),
        (lambda t: t.drop(columns="y_lo_80"), "column 'y_hi_80' needs its partner 'y_lo_80'"),
        (lambda t: t.rename(columns={"y_lo_80": "y_lo", "y_hi_80": "y_hi"}), "column 'y_lo' is not an interval bound"),
        (lambda t: t.rename(columns={"y_lo_80": "y_lo_x", "y_hi_80": "y_hi_x"}), "column 'y_lo_x' is not an interval"),
        (lambda t: t.rename(columns={"y_lo_95": "y_lo_100", "y_hi_95": "y_hi_100"}), "'y_lo_100' is not an interval"),
        (lambda t: t.rename(columns={"y_lo_80": "y_lo_0", "y_hi_80": "y_hi_0"}), "'y_lo_0' is not an interval bound"),
        (
            lambda t: t.assign(y_hi_95=t["y_hi_95"].where(t.index != 3, np.inf)),
            "column 'y_hi_95': 1 values are not finite",
        ),
        (
            lambda t: t.assign(y_lo_80=t["y_lo_80"].where(t.index % 2 == 0, t["y_hi_80"] + 1)),
            f"column 'y_lo_80' is above 'y_hi_80' on {3 * (2 * TEST_SIZE + 2 * (TEST_SIZE - 2)) // 2} rows "
            "(first: AAA h=1 on",
        ),
        (lambda t: t.assign(h=t["h"].where(t.index != 3, 0)), "column 'h' must hold positive whole numbers"),
        (lambda t: t.assign(h=t["h"].astype("float64")), "column 'h' must hold positive whole numbers"),
        (lambda t: t.assign(cutoff=t["cutoff"].astype(str)), "column 'cutoff' must hold dates"),
        (
            lambda t: t.assign(cutoff=t["cutoff"].where(t.index != 3, t["cutoff"] - pd.offsets.BDay(1))),
            "column 'cutoff': 1 cutoffs are not h trading days before ds (first: AAA h=1",
        ),
        (
            lambda t: t.assign(cutoff=t["cutoff"].where(t.index != 3, pd.Timestamp("2020-01-04"))),  # a Saturday
            "column 'cutoff': 1 cutoffs are not days of their series",
        ),
        (lambda t: t[t["h"] == 1], "column 'h' has no forecasts at h=3"),
    ],
)
def test_a_bad_table_is_a_user_error_naming_it(inputs, change, message):
    prices, _, context, scales = inputs
    tables = make_tables(prices)
    tables["broken"] = change(tables["oracle"])
    with pytest.raises(UserError, match="broken.parquet") as err:
        scoring.forecast_rows(tables, context, scales)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_reading_predictions_needs_a_table_and_keeps_the_plot_label_free(tmp_path):
    with pytest.raises(UserError, match="no predictions tables"):
        evaluate.read_predictions(tmp_path)
    tables = make_tables(make_prices())
    io.write_table(tables["naive"], tmp_path / "actual.parquet")
    with pytest.raises(UserError, match="'actual' is reserved"):
        evaluate.read_predictions(tmp_path)


def test_a_table_without_horizons_is_refused_naming_the_column(tmp_path):
    io.write_table(make_tables(make_prices())["naive"].drop(columns="cutoff"), tmp_path / "naive.parquet")
    with pytest.raises(UserError, match=r"naive.parquet: missing column 'cutoff'"):
        evaluate.read_predictions(tmp_path)


def _write_inputs(repo):
    prices = make_prices()
    io.write_table(prices, repo / "data/prices.parquet")
    io.write_json(make_folds(prices), repo / "data/folds.json")
    for model, table in make_tables(prices).items():
        io.write_table(table, repo / f"data/predictions/{model}.parquet", metadata=DESCRIPTIONS[model])
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["evaluate"] = {"zoom_days": 10}
    params["diagnostics"] = {"seasonal_period": 10}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _digests(root):
    return {
        p.relative_to(root).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_the_stage_writes_every_report_and_a_rerun_is_byte_identical(repo_copy, monkeypatch):
    _write_inputs(repo_copy)
    assert run_in(repo_copy, "python", "-m", "pipeline.diagnostics").returncode == 0
    (repo_copy / "reports/plots/images").mkdir(parents=True, exist_ok=True)
    (repo_copy / "reports/plots/images/forecast_GONE.png").write_bytes(b"stale")
    result = run_in(repo_copy, "python", "-m", "pipeline.evaluate")
    assert result.returncode == 0, result.stderr
    first = _digests(repo_copy / "reports")
    assert {
        "metrics.json",
        "evaluation.json",
        "leaderboard.md",
        "plots/rmse_by_fold.csv",
        "plots/skill_by_horizon.csv",
        "plots/images/skill_by_horizon.png",
        "plots/forecast/AAA.csv",
        "plots/cumulative/BBB.csv",
        "plots/images/zoom_FLAT.png",
        "plots/calibration.csv",
        "plots/images/calibration.png",
        "plots/images/fan_AAA.png",
        "diagnostics/decomposition_AAA.png",
    } <= set(first)
    # FLAT's champion is naive (oracle ties it exactly), which has no intervals to fan out
    assert "plots/images/fan_FLAT.png" not in first
    assert "plots/images/forecast_GONE.png" not in first  # stale figures are removed
    metrics = json.loads((repo_copy / "reports/metrics.json").read_text())
    assert list(metrics["models"]) == ["mymodel", "naive", "oracle"]
    page = (repo_copy / "reports/leaderboard.md").read_text()
    assert all(f"| {model} |" in page for model in ("mymodel", "naive", "oracle"))
    assert "(plots/images/forecast_AAA.png)" in page and "(diagnostics/decomposition_AAA.png)" in page
    assert "- [skill_by_horizon](plots/images/skill_by_horizon.png)" in page
    skill = (repo_copy / "reports/plots/skill_by_horizon.csv").read_text().splitlines()
    assert skill[0] == "h,model,rmse_vs_naive" and skill[1].startswith("1,mymodel,") and len(skill) == 1 + 2 * 3
    assert list(metrics["models"]["oracle"]["by_horizon"]) == ["1", "3"]
    calibration = (repo_copy / "reports/plots/calibration.csv").read_text().splitlines()
    assert calibration[0] == "h,model,level,coverage" and calibration[1].startswith("1,mymodel,80,0.")
    assert len(calibration) == 1 + 2 * 2 * 2  # horizons x models with intervals x levels
    evaluation = json.loads((repo_copy / "reports/evaluation.json").read_text())
    assert list(evaluation["by_horizon"]["3"]) == ["models", "folds", "dm_pairwise"]
    assert evaluation["models"]["mymodel"]["interval_method"] == "aci"  # from the table's metadata
    # The same inputs again, this time in this process, with the figures on parallel.n_jobs = 2
    # processes (13 figures are too few by default): the same bytes.
    monkeypatch.chdir(repo_copy)
    monkeypatch.setattr(plots, "MIN_TASKS_PER_PROCESS", 1)
    evaluate.main()
    diagnostics.main()
    assert _digests(repo_copy / "reports") == first
