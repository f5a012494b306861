"""Multiple testing and direction: SPA, MCS and Pesaran-Timmermann equal the libraries' own on the
same inputs; the pooling, the Holm shares and the rule for the series drawn one by one."""

import numpy as np
import pandas as pd
import pytest
from arch.bootstrap import MCS, SPA
from statsmodels.stats.diagnostic import pesaran_timmermann
from statsmodels.stats.multitest import multipletests

from pipeline import evidence, metrics

DAYS = pd.bdate_range("2022-01-03", periods=60)


def make_rows(n_series: int = 3, seed: int = 1) -> pd.DataFrame:
    """Forecast rows at h=1 of naive, a noisier model and a better one, series of 60 days
    (the last series starts 10 days late, so dates have 2 or 3 series)."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n_series):
        days = DAYS[10:] if i == n_series - 1 else DAYS
        y = 50 * (i + 1) * np.exp(np.cumsum(rng.normal(0, 0.01, len(days) + 1)))
        cutoff, actual = y[:-1], y[1:]
        for model, y_hat in (
            ("naive", cutoff),
            ("noisy", cutoff * np.exp(rng.normal(0, 0.01, len(days)))),
            ("better", cutoff + 0.3 * (actual - cutoff) + rng.normal(0, 0.001, len(days))),
        ):
            frames.append(
                pd.DataFrame({"model": model, "unique_id": f"S{i}", "ds": days, "h": 1, "y": actual, "y_hat": y_hat})
            )
    return pd.concat(frames, ignore_index=True)


def test_losses_are_squared_log_errors_and_the_pooling_is_the_mean_over_series_per_date():
    rows = make_rows()
    table = evidence.losses(rows)
    one = rows[(rows["model"] == "noisy") & (rows["unique_id"] == "S1")]
    assert table.loc["S1", "noisy"].to_numpy() == pytest.approx((np.log(one["y"]) - np.log(one["y_hat"])) ** 2)
    mean = evidence.pooled(table)
    assert len(mean) == len(DAYS)  # every date, whichever series forecast it
    day = DAYS[3]  # before S2 starts: the mean of S0 and S1
    assert mean.loc[day, "better"] == pytest.approx(
        (table.loc[("S0", day), "better"] + table.loc[("S1", day), "better"]) / 2
    )
    day = DAYS[30]
    assert mean.loc[day, "naive"] == pytest.approx(table.xs(day, level="ds")["naive"].mean())


def test_spa_equals_arch_on_the_same_losses_and_seed():
    mean = evidence.pooled(evidence.losses(make_rows()))
    result = evidence.spa_pvalues(mean, seed=3)
    test = SPA(mean["naive"], mean[["better", "noisy"]], reps=1000, bootstrap="stationary", seed=3)
    test.compute()
    assert result["pvalue"] == float(test.pvalues["consistent"])
    assert (result["pvalue_lower"], result["pvalue_upper"]) == (test.pvalues["lower"], test.pvalues["upper"])
    assert result["n_days"] == len(DAYS)
    assert result["pvalue"] < 0.05  # `better` halves the error: found
    worse = evidence.spa_pvalues(mean[["naive", "noisy"]], seed=3)
    assert worse["pvalue"] > 0.5  # a model that only adds noise beats nothing
    assert evidence.spa_pvalues(mean[["naive"]].assign(copy=mean["naive"]), seed=3) is None  # nothing to test


def test_mcs_equals_arch_on_the_same_losses_and_seed():
    mean = evidence.pooled(evidence.losses(make_rows()))
    result = evidence.confidence_set(mean, seed=5)
    test = MCS(mean, size=0.10, reps=1000, method="R", bootstrap="stationary", seed=5)
    test.compute()
    assert result["included"] == sorted(test.included) == ["better"]
    assert result["pvalues"] == {m: float(p) for m, p in test.pvalues["Pvalue"].sort_index().items()}
    assert result["size"] == 0.10


def test_tests_report_per_horizon_pooled_and_per_series():
    rows = make_rows()
    report = evidence.tests_report(rows, seed=0)
    assert list(report) == ["spa", "mcs"] and list(report["spa"]) == ["1"]
    table = evidence.losses(rows)
    assert report["spa"]["1"]["pvalue"] == evidence.spa_pvalues(evidence.pooled(table), 0)["pvalue"]
    s2 = table.loc["S2"]
    assert report["spa"]["1"]["series"]["S2"] == evidence.spa_pvalues(s2, 0)
    assert report["spa"]["1"]["series"]["S2"]["n_days"] == len(DAYS) - 10
    assert report["mcs"]["1"]["included"] == ["better"]
    assert evidence.tests_report(rows[rows["model"] != "naive"], 0)["spa"]["1"] is None  # no baseline


def series_report(ratios: dict[str, float], pvalues: dict[str, float]) -> dict:
    def scores(ratio, p, stat):
        return {"rmse_vs_naive": ratio, "dm_pvalue_vs_naive": p, "dm_stat_vs_naive": stat}

    return {
        "series": {
            uid: {
                "naive": {**scores(1.0, None, None), "by_horizon": {"1": scores(1.0, None, None)}},
                "m": {
                    **scores(ratios[uid], pvalues[uid], -1.0),
                    "by_horizon": {"1": scores(ratios[uid], pvalues[uid], -1.0)},
                },
            }
            for uid in ratios
        }
    }


def test_cross_series_shares_are_holm_corrected():
    pvalues = {"A": 0.001, "B": 0.02, "C": 0.04, "D": 0.5}  # uncorrected, three are below 0.05
    report = series_report({"A": 0.9, "B": 0.95, "C": 0.99, "D": 1.02}, pvalues)
    summary = evidence.cross_series(report)["1"]["m"]
    rejected = multipletests(list(pvalues.values()), alpha=0.05, method="holm")[0]
    assert summary["share_beating_naive"] == rejected.sum() / 4 == 0.25  # Holm keeps only A
    assert summary["median_rmse_vs_naive"] == pytest.approx(0.97)
    assert summary["n_series"] == 4
    assert "naive" not in evidence.cross_series(report)["1"]


@pytest.mark.parametrize("p", [0.01, 0.05, 0.0501])
def test_one_series_is_its_own_holm_correction(p):
    summary = evidence.cross_series(series_report({"A": 0.9}, {"A": p}))["1"]["m"]
    expected = multipletests([p], alpha=0.05, method="holm")[0].sum()
    assert summary["share_beating_naive"] == expected == (p <= 0.05)


def test_figure_series_keeps_the_best_the_worst_and_evenly_between():
    ratios = {f"S{i:02d}": 1 + i / 100 for i in range(20)}  # S00 best, S19 worst
    report = series_report(ratios, dict.fromkeys(ratios, 0.5))
    assert evidence.figure_series(report, 30) == list(ratios)  # all, when they fit
    picked = evidence.figure_series(report, 5)
    assert picked == ["S00", "S05", "S10", "S14", "S19"]
    assert evidence.figure_series(report, 1) == ["S00"] and evidence.figure_series(report, 0) == []
    assert len(evidence.figure_series(report, 12)) == 12


def test_pesaran_timmermann_equals_statsmodels_on_the_moves():
    rng = np.random.default_rng(4)
    y_cutoff = 100 + rng.normal(0, 1, 300)
    y = y_cutoff + rng.normal(0, 1, 300)
    y_hat = y_cutoff + 0.5 * (y - y_cutoff) + rng.normal(0, 1, 300)
    y[:5] = y_cutoff[:5]  # days without a move are left out, as in the directional accuracy
    moved = y != y_cutoff
    expected = pesaran_timmermann((y - y_cutoff)[moved], (y_hat - y_cutoff)[moved], alternative="larger").pvalue
    assert metrics.direction_pvalue(y, y_hat, y_cutoff) == float(expected) < 0.01
    assert metrics.direction_pvalue(y, y_cutoff, y_cutoff) is None  # naive: never a forecast rise
