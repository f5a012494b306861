"""Gradients by lag: each family's `lag_gradients` exact on hand-built nets and equal to finite
differences of fitted models' forecasts (Keras, ridge), lag_1 first; the profiles, the lag where
one vanishes, and what the model stages and evaluate make of them."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.gradients import forecast_windows, gradient_report, normalised_profile, vanishing_lag
from pipeline.models.recurrent import Recurrent
from pipeline.models.regressor import Regressor, make_estimator
from pipeline.models.scratch_rnn import ScratchRnn
from tests.test_models import LAGS, TINY_NET, Y

# Keras 3.15 copies its variables with np.array(variable), which numpy 2.4 flags; harmless.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

N_LAGS = 10
DECAY = 0.5  # the hand-built nets' recurrent weight: the gradient halves with every step back
# Powers of two: the chain rule through the scalers is exact in floating point.
SCALING = {"input_mean_": [0.25], "input_scale_": [2.0], "target_mean_": [0.0], "target_scale_": [0.5]}


def hand_built(model):
    """`model` with one hidden unit, W_xh = W_hy = 1, W_hh = DECAY, zero biases, and SCALING.

    At a window whose every value is the input mean the standardised inputs and every state are
    0, where tanh' = 1: the derivative by lag k is DECAY^(k-1) exactly, the vanishing gradient.
    """
    for key, value in SCALING.items():
        setattr(model, key, value)
    if isinstance(model, ScratchRnn):
        model.weights_ = {"W_xh": [[1.0]], "W_hh": [[DECAY]], "b_h": [0.0], "W_hy": [[1.0]], "b_y": [0.0]}
        model.weights_ = {name: np.array(w) for name, w in model.weights_.items()}
    else:  # Keras SimpleRNN: kernel, recurrent kernel, bias, then the dense kernel and bias
        model.weights_ = [np.array(w, dtype="float32") for w in ([[1.0]], [[DECAY]], [0.0], [[1.0]], [0.0])]
    return model


@pytest.mark.parametrize(
    "model",
    [ScratchRnn(hidden=1, n_lags=N_LAGS), Recurrent(cell="simple_rnn", units=(1,), n_lags=N_LAGS)],
    ids=["scratch_rnn", "keras_simple_rnn"],
)
def test_hand_built_rnn_gradient_halves_with_every_lag(model):
    model = hand_built(model)
    windows = np.full((3, N_LAGS), SCALING["input_mean_"][0])
    expected = DECAY ** np.arange(N_LAGS)  # lag_1 first: the most recent value counts most
    assert np.array_equal(model.lag_gradients(windows), np.tile(expected, (3, 1)))
    assert np.array_equal(normalised_profile(model.lag_gradients(windows)), expected)
    assert vanishing_lag(expected) == 8  # 0.5^7 < 1% <= 0.5^6


def test_scratch_rnn_raw_gradients_carry_the_scalers():
    model = hand_built(ScratchRnn(hidden=1, n_lags=N_LAGS))
    raw = model.input_gradients(np.full((1, N_LAGS), SCALING["input_mean_"][0]))[0]
    assert np.array_equal(raw, DECAY ** np.arange(N_LAGS) * 0.5 / 2.0)  # target scale / input scale


def central_difference_by_lag(forecast, windows: np.ndarray, eps: float) -> np.ndarray:
    """`(rows, lags)`: d forecast / d lag, one lag at a time, by central differences."""
    out = np.zeros_like(windows)
    for k in range(windows.shape[1]):
        step = np.zeros_like(windows)
        step[:, k] = eps
        out[:, k] = (forecast(windows + step) - forecast(windows - step)) / (2 * eps)
    return out


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_keras_gradients_are_finite_differences_of_the_keras_forecast(cell):
    model = Recurrent(cell=cell, horizons=(1, 5), **TINY_NET).fit(Y[:300])
    windows = forecast_windows(Y[:400], 8, model.n_lags, model.target)
    analytic = model.lag_gradients(windows) * model.target_scale_[0] / model.input_scale_[0]  # to raw units
    # Keras computes in float32: a step of a tenth of a standard deviation keeps rounding small.
    numeric = central_difference_by_lag(
        lambda w: model._predict_windows(w)[:, 0], windows, eps=0.1 * model.input_scale_[0]
    )
    assert np.allclose(analytic, numeric, rtol=1e-2, atol=1e-3 * np.abs(numeric).max())


def test_ridge_gradients_are_its_coefficients_on_the_standardised_lags():
    model = Regressor(make_estimator("ridge", {}, 0), n_lags=LAGS, horizons=(1, 5)).fit(Y[:300])
    windows = forecast_windows(Y[:400], 8, model.n_lags, model.target)
    fitted = model.models_[0]  # the first horizon's pipeline
    lag_scale, target_scale = fitted.regressor_.named_steps["scale"].scale_, fitted.transformer_.scale_[0]
    # A change of one standard deviation of lag k moves the forecast by coefficient k target deviations.
    numeric = central_difference_by_lag(lambda w: model._predict_windows(w)[:, 0], windows, eps=1.0)
    assert np.allclose(model.lag_gradients(windows), numeric * lag_scale / target_scale, rtol=1e-9, atol=0)
    coefficients = np.abs(fitted.regressor_.named_steps["model"].coef_)
    assert np.allclose(normalised_profile(model.lag_gradients(windows)), coefficients / coefficients.max(), rtol=1e-12)


def test_forecast_windows_are_the_ones_predict_reads():
    model = ScratchRnn(hidden=2, epochs=1, n_lags=LAGS).fit(Y[:300])
    windows = forecast_windows(Y[:400], 30, model.n_lags, model.target)
    assert windows.shape == (30, LAGS)
    assert np.array_equal(Y[369:399, None] + model._predict_windows(windows), model.predict(Y[:400], 30))
    with pytest.raises(ValueError, match="need more than"):
        forecast_windows(Y[:30], 30, model.n_lags, model.target)


def test_models_without_a_gradient_by_lag_have_none():
    forest = Regressor(make_estimator("random_forest", {"n_estimators": 2}, 0), n_lags=LAGS).fit(Y[:300])
    assert forest.lag_gradients(np.zeros((2, LAGS))) is None
    dead = hand_built(ScratchRnn(hidden=1, n_lags=N_LAGS))
    dead.weights_["W_hy"][:] = 0.0
    with pytest.raises(ValueError, match="does not depend on its lags"):
        normalised_profile(dead.lag_gradients(np.zeros((2, N_LAGS))))


def test_gradient_report_pools_series_and_reads_the_lags_inside_the_window():
    descriptions = {
        "rnn": {"gradient_by_lag": {"A": [1.0, 0.5, 0.001], "B": [0.5, 1.0, 0.001]}},
        "naive": {"gradient_by_lag": None},
        "old": {},  # a table written before gradients by lag
    }
    report = gradient_report(descriptions, lags=(1, 3, 5))
    assert list(report) == ["rnn"]
    assert report["rnn"]["profile"] == [1.0, 1.0, 0.001 / 0.75]  # the mean of the series, largest 1
    assert report["rnn"]["vanishing_lag"] == 3
    assert report["rnn"]["at_lags"] == {"1": 1.0, "3": 0.001 / 0.75}


@pytest.mark.parametrize(
    ("profile", "fraction", "lag"),
    [
        ([1.0, 0.5, 0.005, 0.02, 0.001], 0.01, 5),  # dips below at lag 3 but rises again at 4
        ([1.0, 0.5, 0.2], 0.01, None),  # still above at the last lag: not vanished in the window
        ([0.001, 1.0, 0.001], 0.01, 3),  # the largest need not be lag 1
        ([2.0, 0.4, 0.2], 0.2, 3),  # relative to the largest: 0.2 x 2.0; equal to it is not below
    ],
)
def test_vanishing_lag(profile, fraction, lag):
    assert vanishing_lag(np.array(profile), fraction) == lag
