"""ARIMA: filtering the fitted state forward is the step-by-step update, close to refitting, and
its h-step forecasts are statsmodels' own `get_forecast(h)` from each cutoff."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.tsa.arima.model import ARIMA
from test_models import ar2_log_prices
from threadpoolctl import threadpool_limits

from pipeline.cli import UserError
from pipeline.models.arima import SCALE, Arima

T, STEPS = 600, 20  # fit on the first T days, forecast the next STEPS
Y = ar2_log_prices(T + STEPS, seed=3)


@pytest.fixture(autouse=True)
def one_thread():
    with threadpool_limits(limits=1):
        yield


def test_filtered_forecasts_equal_a_step_by_step_extend():
    model = Arima(order=[1, 1, 1], levels=(90,)).fit(Y[:T])
    forecasts, bounds = model.predict(Y, STEPS)[:, 0], model.predict_interval(Y, STEPS)[:, 0, 0]
    trend = model._trend(np.arange(len(Y)))
    # The reference: statsmodels' own update, one new observation at a time, from the fitted
    # parameters filtered over the train part (the fit keeps no filter output: low memory).
    results = ARIMA(SCALE * (Y[:T] - trend[:T]), order=model.order_, trend="n").filter(model.params_)
    expected, expected_bounds = [], []
    for day in range(T, T + STEPS):
        step = results.get_forecast(1)
        expected.append(step.predicted_mean[0] / SCALE + trend[day])
        expected_bounds.append(step.conf_int(alpha=0.1)[0] / SCALE + trend[day])
        results = results.extend(SCALE * (Y[day : day + 1] - trend[day]))
    # Equal to rounding (1e-10 in log price is 1e-8 % in price): the two paths do the same
    # arithmetic in a different order, after an approximately diffuse start that costs digits.
    np.testing.assert_allclose(forecasts, expected, rtol=0, atol=1e-10)
    np.testing.assert_allclose(bounds, expected_bounds, rtol=0, atol=1e-10)


@pytest.mark.parametrize("order", [[1, 1, 1], [2, 1, 2], [1, 0, 1]])
def test_h_step_forecasts_equal_get_forecast_from_results_filtered_to_the_cutoff(order):
    horizons = (1, 5, 20)
    model = Arima(order=order, horizons=horizons, levels=(80, 90)).fit(Y[:T])
    forecasts, intervals = model.predict(Y, STEPS), model.predict_interval(Y, STEPS)
    bounds = intervals[:, :, 1]  # the 90% level
    for i in (0, 7, STEPS - 1):
        cutoff = T - 1 + i
        days = np.arange(cutoff + 1)
        results = ARIMA(SCALE * (Y[days] - model._trend(days)), order=model.order_, trend="n").filter(model.params_)
        ahead = results.get_forecast(max(horizons))
        trend = model._trend(cutoff + np.asarray(horizons))
        rows = np.asarray(horizons) - 1
        expected = np.asarray(ahead.predicted_mean)[rows] / SCALE + trend
        expected_bounds = np.asarray(ahead.conf_int(alpha=0.1))[rows] / SCALE + trend[:, None]
        np.testing.assert_allclose(forecasts[i], expected, rtol=0, atol=1e-12)
        np.testing.assert_allclose(bounds[i], expected_bounds, rtol=0, atol=1e-12)
    assert np.all(np.diff(bounds[0, :, 1] - bounds[0, :, 0]) > 0)  # uncertainty grows with the horizon
    assert np.all(intervals[..., 0, 1] - intervals[..., 0, 0] < bounds[..., 1] - bounds[..., 0])  # 80% inside 90%


def test_filtered_forecasts_stay_within_0_05_percent_of_refitting_every_day():
    filtered = Arima(order=[1, 1, 1]).fit(Y[:T]).predict(Y, STEPS)[:, 0]
    refitted = [Arima(order=[1, 1, 1]).fit(Y[:day]).predict(Y[: day + 1], 1)[0, 0] for day in range(T, T + STEPS)]
    assert np.max(np.abs(np.exp(filtered - np.array(refitted)) - 1)) < 5e-4


def test_auto_order_finds_the_structure_and_counts_its_parameters():
    model = Arima(order="auto", max_p=2, max_q=2, d=1).fit(Y[:T])
    p, d, q = model.order_
    assert d == 1 and p + q >= 1  # AR(2) returns: the random walk (0, 1, 0) is not the best fit
    assert _aic(model) < _aic(Arima(order=[0, 1, 0]).fit(Y[:T]))
    assert model.parameter_counts() == {k: v for k, v in {"ar": p, "ma": q, "drift": 1, "sigma2": 1}.items() if v}


def _aic(model: Arima) -> float:
    """The AIC of a fitted model's estimates on its train part (the first T values)."""
    detrended = SCALE * (Y[:T] - model._trend(np.arange(T)))
    return ARIMA(detrended, order=model.order_, trend="n").filter(model.params_).aic


@pytest.mark.parametrize(("d", "trend"), [(0, "level"), (2, None)])
def test_trend_follows_the_differencing(d, trend):
    model = Arima(order=[1, d, 0]).fit(Y[:T])
    assert set(model.parameter_counts()) == {"ar", "sigma2"} | ({trend} if trend else set())
    assert np.all(np.abs(model.predict(Y, STEPS)[:, 0] - Y[T - 1 : -1]) < 0.1)  # near yesterday's log price


def test_no_converging_order_is_a_clear_error():
    flat = np.full(300, np.log(100.0))  # no variance to estimate: every fit of the grid fails
    with pytest.raises(UserError, match=r"^arima\.order: no ARIMA\(p, 1, q\) with p <= 1, q <= 1 converged"):
        Arima(order="auto", max_p=1, max_q=1).fit(flat)


def test_a_fixed_order_that_cannot_be_fitted_is_a_clear_error():
    flat = np.full(300, np.log(100.0))
    with pytest.raises(
        UserError, match=r"^arima\.order: ARIMA\(1, 1, 1\) could not be fitted on a train part of 300 prices: "
    ):
        Arima(order=[1, 1, 1]).fit(flat)


def test_intervals_and_forecasts_come_from_one_filter_pass_and_pickle_without_it():
    import pickle

    model = Arima(order=[1, 1, 1]).fit(Y[:T])
    forecasts = model.predict(Y, STEPS)
    assert model.predict_interval(Y, STEPS) is model._last_step[1][1]  # served from the kept pass
    other = Y.copy()
    other[-2] += 0.01  # a different history filters again: the last forecast sees this day
    assert model.predict(other, STEPS)[-1, 0] != forecasts[-1, 0]
    assert pickle.loads(pickle.dumps(model))._last_step is None
