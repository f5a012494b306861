"""The NumPy RNN beyond the conformance table: its hand-written backward pass against finite
differences, its training loop (clipping, Adagrad, early stopping), its bytes, and what it learns."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.models.scratch_rnn import (
    BLOCKS,
    ScratchRnn,
    adagrad_step,
    backward,
    forward,
    init_weights,
    mse_and_gradients,
)
from tests.test_models import ar2_log_prices

TINY = {"hidden": 4, "epochs": 6, "batch_size": 32, "learning_rate": 0.05, "n_lags": 5}
Y = ar2_log_prices(900, seed=11)


def tiny_net(rows: int = 4, steps: int = 6, hidden: int = 3, outputs: int = 2):
    """Weights large enough that tanh bends (a linear net would hide a missing tanh'), inputs, targets."""
    rng = np.random.default_rng(0)
    weights = {name: w + rng.normal(0, 0.5, w.shape) for name, w in init_weights(hidden, outputs, rng).items()}
    return weights, rng.normal(0, 1, (rows, steps)), rng.normal(0, 1, (rows, outputs))


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / (np.linalg.norm(a) + np.linalg.norm(b)))


def central_difference(f, array: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """d f / d array, one element at a time, by central differences (float64)."""
    out = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        saved = array[index]
        array[index] = saved + eps
        plus = f()
        array[index] = saved - eps
        minus = f()
        array[index] = saved
        out[index] = (plus - minus) / (2 * eps)
    return out


def test_backpropagation_through_time_matches_finite_differences():
    weights, x, targets = tiny_net()
    _, gradients = mse_and_gradients(weights, x, targets)
    assert list(gradients) == list(BLOCKS)
    for name in BLOCKS:
        numeric = central_difference(lambda: mse_and_gradients(weights, x, targets)[0], weights[name])
        assert relative_error(gradients[name], numeric) < 1e-6, name


def test_input_gradients_match_finite_differences():
    """What `pipeline.gradients` reads: d output / d input step, from the same backward pass."""
    weights, x, _ = tiny_net()
    outputs, states = forward(weights, x)
    d_outputs = np.zeros_like(outputs)
    d_outputs[:, 1] = 1.0  # the second output's gradient, so a mix-up of outputs shows
    _, d_inputs = backward(weights, x, states, d_outputs)
    numeric = central_difference(lambda: forward(weights, x)[0][:, 1].sum(), x)
    assert relative_error(d_inputs, numeric) < 1e-6


def test_fitted_input_gradients_are_the_derivatives_of_the_forecast_by_lag():
    """Through the standardisation and the oldest-first order: column k is d forecast / d lag_(k+1)."""
    model = ScratchRnn(horizons=(5, 1), **TINY).fit(Y[:600])
    windows = np.random.default_rng(1).normal(0, 0.01, (3, TINY["n_lags"]))
    numeric = central_difference(lambda: model._predict_windows(windows)[:, 0].sum(), windows, eps=1e-7)
    assert relative_error(model.input_gradients(windows), numeric) < 1e-6


def test_gradients_are_clipped_elementwise_before_adagrad_accumulates_them():
    weights = {"W_hh": np.zeros((1, 2))}
    memory = {"W_hh": np.zeros((1, 2))}
    adagrad_step(weights, {"W_hh": np.array([[1e6, 0.5]])}, memory, lr=0.1, clip=5.0)
    assert np.array_equal(memory["W_hh"], [[25.0, 0.25]])  # 1e6 counted as 5
    # Adagrad's first step is lr in the gradient's direction, whatever its size.
    assert np.allclose(weights["W_hh"], [[-0.1, -0.1]], rtol=0, atol=1e-7)


def test_same_seed_same_bytes_and_another_seed_other_weights():
    first, second = ScratchRnn(**TINY).fit(Y[:600]), ScratchRnn(**TINY).fit(Y[:600])
    other = ScratchRnn(**TINY, seed=1).fit(Y[:600])
    assert all(first.weights_[name].tobytes() == second.weights_[name].tobytes() for name in BLOCKS)
    assert first.history_ == second.history_
    assert not np.array_equal(first.weights_["W_hh"], other.weights_["W_hh"])


def test_early_stopping_keeps_the_best_epoch_and_records_every_epoch():
    model = ScratchRnn(**{**TINY, "epochs": 40, "patience": 2, "learning_rate": 0.3}).fit(Y[:600])
    val_loss = model.history_["val_loss"]
    assert len(model.history_["loss"]) == len(val_loss) < 40  # it stopped
    best = int(np.argmin(val_loss))
    assert best == len(val_loss) - 3  # then two epochs without a better one
    # The weights kept are the best epoch's: a run that ends there (training is deterministic).
    ended = ScratchRnn(**{**TINY, "epochs": best + 1, "patience": 40, "learning_rate": 0.3}).fit(Y[:600])
    assert all(np.array_equal(model.weights_[name], ended.weights_[name]) for name in BLOCKS)
    assert model.learned()["epochs_"] == len(val_loss)


def test_it_learns_the_ar2_coefficients():
    """On AR(2) returns r_t = 0.5 r_t-1 - 0.3 r_t-2 + e_t the best one-step forecast is linear,
    so the fitted net's derivative by lag approaches (0.5, -0.3, 0, 0, 0)."""
    y = ar2_log_prices(6000, seed=2)
    model = ScratchRnn(**{**TINY, "epochs": 10, "learning_rate": 0.02, "patience": 10}).fit(y)
    windows = np.random.default_rng(3).normal(0, 0.01, (200, TINY["n_lags"]))
    slopes = model.input_gradients(windows).mean(axis=0)
    assert np.allclose(slopes, [0.5, -0.3, 0, 0, 0], rtol=0, atol=0.05)  # 0.03 off at most here
    assert model.history_["loss"][-1] < model.history_["loss"][0]


def test_parameter_counts_follow_the_lecture_blocks():
    model = ScratchRnn(**{**TINY, "hidden": 3}, horizons=(1, 5)).fit(Y[:600])
    assert model.parameter_counts() == {"W_xh": 3, "W_hh": 9, "b_h": 3, "W_hy": 6, "b_y": 2}


def test_too_few_windows_is_a_clear_error():
    with pytest.raises(ValueError, match="leave none to train on"):
        ScratchRnn(**{**TINY, "validation_fraction": 1.0}).fit(Y[:50])
