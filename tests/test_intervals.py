"""Prediction intervals: conformal and ACI half-widths, their coverage, the canary, and MAPIE."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from pipeline.intervals import aci_quantiles, bound_columns, conformal_quantile, half_widths, level_name, scores
from pipeline.models.arima import Arima
from pipeline.models.naive import Drift, Naive
from pipeline.params import SplitParams
from pipeline.split import make_folds
from pipeline.walkforward import Intervals, walk_forward


def test_names_and_scores():
    assert [level_name(v) for v in (80, 95.0, 97.5)] == ["80", "95", "97.5"]
    assert bound_columns([80, 95]) == ["y_lo_80", "y_hi_80", "y_lo_95", "y_hi_95"]
    assert scores([100.0, 110.0], [110.0, 100.0]) == pytest.approx([np.log(1.1), np.log(1.1)], rel=1e-15)


def test_the_conformal_quantile_is_the_n_plus_1_corrected_rank():
    calibration = np.arange(1.0, 20.0)  # 19 scores: 1, 2, ..., 19
    assert conformal_quantile(calibration, 0.8) == 16.0  # ceil(20 * 0.8) = 16th smallest
    assert conformal_quantile(calibration, 0.5) == 10.0
    assert conformal_quantile(calibration, 0.99) == 19.0  # rank 20 > n: the largest, finite
    assert conformal_quantile(calibration, 0.0) == 0.0
    with pytest.raises(ValueError):
        conformal_quantile(np.array([]), 0.8)


def _random_walk(n_days: int, seed: int, sigma: float = 0.01) -> pd.DataFrame:
    returns = np.random.default_rng(seed).normal(0, sigma, n_days)
    days = pd.bdate_range("1990-01-01", periods=n_days)
    return pd.DataFrame({"unique_id": "RW", "ds": days, "close": 100 * np.exp(np.cumsum(returns))})


def _coverage(table: pd.DataFrame, level: int) -> float:
    inside = (table[f"y_lo_{level}"] <= table["y"]) & (table["y"] <= table[f"y_hi_{level}"])
    return float(inside.mean())


@pytest.mark.parametrize("method", ["conformal", "aci"])
def test_on_a_long_gaussian_random_walk_coverage_is_within_2_points_of_nominal(method):
    prices = _random_walk(12_000, seed=11)
    folds = make_folds(prices, SplitParams(n_windows=10, test_size=1000))
    table, _ = walk_forward(Naive((1, 5)), prices, folds, intervals=Intervals(method, (80, 95), 0.01))
    one_step = table[table["h"] == 1]
    assert len(one_step) == 10_000
    assert abs(_coverage(one_step, 80) - 0.80) <= 0.02 and abs(_coverage(one_step, 95) - 0.95) <= 0.02


def test_aci_long_run_miscoverage_stays_within_its_bound_where_conformal_drifts():
    """Gibbs and Candes (2021), Proposition 4.1: |mean(miss) - alpha| <= (max(alpha, 1 - alpha)
    + gamma) / (gamma T) at horizon 1 (it holds while alpha_t stays inside [0, 1], checked too).
    Here the test scores are three times as spread as the calibration scores for the second
    half: a static quantile under-covers badly."""
    rng = np.random.default_rng(5)
    calibration = np.abs(rng.normal(0, 1, 500))
    errors = np.abs(rng.normal(0, 1, 4000) * np.r_[np.ones(2000), 3 * np.ones(2000)])
    alpha, gamma = 0.2, 0.01
    adaptive = aci_quantiles(calibration, errors, 1, 1 - alpha, gamma)
    miss = np.mean(errors > adaptive)
    assert abs(miss - alpha) <= (max(alpha, 1 - alpha) + gamma) / (gamma * len(errors))
    assert adaptive.max() < calibration.max() * 3  # never the clipped, widest case: alpha_t stayed above 0
    static = np.mean(errors > conformal_quantile(calibration, 1 - alpha))
    assert static - alpha > 0.15  # without adapting, about 0.46 of the scores fall outside


def test_aci_reads_only_resolved_misses():
    """At horizon h the half-width of row i uses the scores of rows up to i - h only."""
    rng = np.random.default_rng(2)
    calibration, errors = np.abs(rng.normal(0, 1, 300)), np.abs(rng.normal(0, 1, 400))
    for h in (1, 5):
        before = aci_quantiles(calibration, errors, h, 0.8, 0.05)
        for t in (0, 100, 399):
            changed = errors.copy()
            changed[t:] *= 5
            after = aci_quantiles(calibration, changed, h, 0.8, 0.05)
            assert np.array_equal(after[: t + h], before[: t + h])
            if t + h < len(errors) - 20:
                assert not np.array_equal(after, before)  # the check can fail: later rows moved


def test_our_aci_equals_mapie_time_series_regressor():
    """A case both handle: a fitted scikit-learn regressor, absolute residuals, one step ahead,
    a calibration set of 500 rolled forward with each new score (MAPIE's `update`), and a
    volatility shift in the test part beyond anything in the calibration."""
    from mapie.conformity_scores import AbsoluteConformityScore
    from mapie.regression import TimeSeriesRegressor
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(1600, 2))
    y = X @ [1.0, 0.5] + rng.normal(size=1600) * np.r_[np.ones(1000), 3 * np.ones(300), 0.7 * np.ones(300)]
    estimator = LinearRegression().fit(X[:200], y[:200])
    mapie = TimeSeriesRegressor(
        estimator, method="aci", cv="prefit", conformity_score=AbsoluteConformityScore(sym=True)
    )
    mapie.fit(X[200:700], y[200:700])
    theirs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MAPIE's deprecation notes
        for i in range(700, 1600):
            _, bounds = mapie.predict(X[i : i + 1], confidence_level=0.8, allow_infinite_bounds=True)
            theirs.append((bounds[0, 1, 0] - bounds[0, 0, 0]) / 2)
            mapie.adapt_conformal_inference(X[i : i + 1], y[i : i + 1], gamma=0.01, confidence_level=0.8)
            mapie.update(X[i : i + 1], y[i : i + 1])
    calibration = np.abs(y[200:700] - estimator.predict(X[200:700]))
    ours = aci_quantiles(calibration, np.abs(y[700:] - estimator.predict(X[700:])), 1, 0.8, 0.01)
    assert np.ptp(ours) > 2  # the intervals did adapt
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


def test_half_widths_by_method_and_level():
    calibration, errors = np.arange(1.0, 20.0), np.full(30, 100.0)  # every test score misses
    static = half_widths(calibration, errors, 1, (50, 80), "conformal", 0.1)
    assert static.shape == (30, 2) and (static == [10.0, 16.0]).all()
    adaptive = half_widths(calibration, errors, 1, (50, 80), "aci", 0.1)
    assert (adaptive[0] == static[0]).all()  # no target resolved yet: the conformal half-widths
    assert (np.diff(adaptive[:5, 0]) > 0).all() and adaptive[:, 0].max() == 100.0  # misses widen them


def _inputs():
    prices = _random_walk(700, seed=3)
    return prices, make_folds(prices, SplitParams(n_windows=3, test_size=60))


@pytest.mark.parametrize("method", ["conformal", "aci", "model"])
@pytest.mark.parametrize("make", [lambda: Drift((1, 5)), lambda: Arima(order=[1, 1, 0], horizons=(1, 5))])
def test_bounds_are_finite_ordered_and_leak_nothing(method, make):
    """The canary covers the bounds: changing prices at or after day t moves no bound whose
    cutoff is before t, and moves some later one; bounds nest around the forecast."""
    prices, folds = _inputs()
    spec = Intervals(method, (80, 95), 0.05)
    model = make()
    model.levels = (80, 95)
    table, _ = walk_forward(model, prices, folds, intervals=spec)
    bounds = bound_columns(spec.levels)
    assert table.columns.tolist()[-4:] == bounds and np.isfinite(table[bounds].to_numpy()).all()
    assert (table.y_lo_95 <= table.y_lo_80).all() and (table.y_lo_80 <= table.y_hat).all()
    assert (table.y_hat <= table.y_hi_80).all() and (table.y_hi_80 <= table.y_hi_95).all()
    for t in (400, 505, 699):  # a train day of the second fold, a test day of the second fold, the last day
        changed = prices.copy()
        changed.loc[t:, "close"] *= np.exp(np.random.default_rng(t).normal(0, 0.03, len(prices) - t))
        model = make()
        model.levels = (80, 95)
        other, _ = walk_forward(model, changed, folds, intervals=spec)
        early = table["cutoff"] < prices["ds"].iloc[t]
        pd.testing.assert_frame_equal(other.loc[early, bounds], table.loc[early, bounds], check_exact=True)
        if t < 699:
            assert not other.loc[~early, bounds].equals(table.loc[~early, bounds])


def test_model_intervals_keep_arimas_own_and_calibrate_the_others():
    prices, folds = _inputs()
    spec = Intervals("model", (80, 95), 0.01)
    arima, naive = Arima(order=[1, 1, 0], horizons=(1,)), Naive((1,))
    assert spec.label(arima) == "gaussian" and spec.label(naive) == "conformal"
    own, _ = walk_forward(arima, prices, folds, intervals=spec)
    conformal, _ = walk_forward(
        Arima(order=[1, 1, 0], horizons=(1,)), prices, folds, intervals=Intervals("conformal", (80, 95), 0.01)
    )
    pd.testing.assert_series_equal(own.y_hat, conformal.y_hat)
    assert not np.allclose(own.y_hi_80, conformal.y_hi_80)  # the Gaussian bounds, not the conformal ones
