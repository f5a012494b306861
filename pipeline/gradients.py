"""Gradients by lag: how much a fitted model's forecast moves with the value k steps back.

    profile = gradient_by_lag(model, forecast_windows(model, y, n))    # (n_lags,), lag_1 first, max 1
    vanishing_lag(profile)                                         # where it falls below 1% for good

For each window, the derivative of the model's first output (the shortest horizon; the one-step
forecast of a `recursive` model) with respect to each lag, in the model's standardised scale:
train-target standard deviations per train-input standard deviation, so models fitted on
different series or folds compare. Recurrent nets read the window oldest value first, so lag
k = 1 (the most recent value) is their last step: a vanilla RNN's gradient shrinks roughly
geometrically with k (the vanishing gradient), which gates let an LSTM or GRU avoid.

- `ScratchRnn`: its own backward pass (`ScratchRnn.input_gradients`);
- `Recurrent` (Keras on JAX): `jax.grad` through the Keras model's `stateless_call`;
- `Regressor` with a linear estimator (ridge): its coefficients, the same for every window.

The profile is the mean absolute derivative over the windows, divided by its largest value, so
every model's curve peaks at 1 and "falls below 1% of its largest" reads 0.01 on any of them.
"""

from __future__ import annotations

import numpy as np

from pipeline.features import lookback, make_windows, transform
from pipeline.models.recurrent import Recurrent
from pipeline.models.regressor import Regressor
from pipeline.models.scratch_rnn import ScratchRnn
from pipeline.models.windowed import Windowed


def forecast_windows(model: Windowed, y: np.ndarray, n: int) -> np.ndarray:
    """`(n, n_lags)`: the lag windows (lag_1 first) `model.predict(y, n)` forecasts from, i.e.
    those of the last `n` cutoffs of log prices `y` (a fold's test part, given its history)."""
    y = np.asarray(y, dtype="float64")
    start = len(y) - n - lookback(model.n_lags, model.target)
    if start < 0:
        raise ValueError(f"{n} windows of {model.n_lags} lags need more than {len(y)} prices")
    return make_windows(transform(y[start:], model.target), model.n_lags)[0]


def scratch_rnn_gradients(model: ScratchRnn, windows: np.ndarray) -> np.ndarray:
    """`(rows, n_lags)` standardised derivatives of the NumPy RNN, from its backward pass."""
    return model.input_gradients(windows) * model.input_scale_ / model.target_scale_[0]


def keras_gradients(model: Recurrent, windows: np.ndarray) -> np.ndarray:
    """`(rows, n_lags)` standardised derivatives of a Keras recurrent net, by JAX autodiff.

    `stateless_call` runs the Keras model as a pure function of its weights and inputs, which
    `jax.grad` differentiates. The net's input and output are already standardised, and each
    window's output depends on that window alone, so the gradient of the summed first outputs
    holds every window's own gradient in one backward pass.
    """
    import jax

    network = model._network()
    trainable = [v.value for v in network.trainable_variables]
    non_trainable = [v.value for v in network.non_trainable_variables]

    def summed_first_output(inputs):
        outputs, _ = network.stateless_call(trainable, non_trainable, inputs, training=False)
        return outputs[:, 0].sum()

    gradient = jax.grad(summed_first_output)(model._inputs(np.asarray(windows, dtype="float64")))
    return np.asarray(gradient, dtype="float64")[:, ::-1, 0]  # steps oldest first -> lag_1 first


def ridge_gradients(model: Regressor, windows: np.ndarray) -> np.ndarray:
    """`(rows, n_lags)`: the first output's coefficients on the standardised lags (the pipeline
    standardises both lags and target), repeated for each window: a linear model's derivative."""
    estimator = model.models_[0].regressor_.named_steps["model"]
    if not hasattr(estimator, "coef_"):
        raise ValueError(f"{type(estimator).__name__} has no coefficients: no gradient by lag for it")
    return np.tile(np.ravel(estimator.coef_), (len(windows), 1))


# The families with a gradient by lag, and how each computes it.
GRADIENTS = {ScratchRnn: scratch_rnn_gradients, Recurrent: keras_gradients, Regressor: ridge_gradients}


def lag_gradients(model: Windowed, windows: np.ndarray) -> np.ndarray:
    """`(rows, n_lags)`: each window's standardised derivative of `model`'s first output with
    respect to each lag, lag_1 (the most recent) first."""
    if type(model) not in GRADIENTS:
        raise ValueError(
            f"no gradient by lag for {type(model).__name__} (only {', '.join(c.__name__ for c in GRADIENTS)})"
        )
    return GRADIENTS[type(model)](model, np.asarray(windows, dtype="float64"))


def gradient_by_lag(model: Windowed, windows: np.ndarray) -> np.ndarray:
    """`(n_lags,)`: the mean absolute `lag_gradients` over `windows`, divided by its largest
    value (so the largest is 1), lag_1 first."""
    profile = np.abs(lag_gradients(model, windows)).mean(axis=0)
    if not profile.max() > 0:
        raise ValueError(f"{type(model).__name__}'s forecast does not depend on its lags: no profile to normalise")
    return profile / profile.max()


def vanishing_lag(profile: np.ndarray, fraction: float = 0.01) -> int | None:
    """The lag k (1-based) from which the profile stays below `fraction` of its largest value;
    `None` where the last lag is still above it (the gradient has not vanished inside the window).

    "Stays": a profile that dips below and rises again (a ridge coefficient near zero at some
    lag) has not vanished at the dip.
    """
    profile = np.asarray(profile, dtype="float64")
    below = profile < fraction * profile.max()
    if not below[-1]:
        return None
    return int(np.flatnonzero(~below)[-1]) + 2  # the lag after the last one above (lags count from 1)
