"""A vanilla RNN in NumPy on the lag windows (stage `rnn_scratch`): the lecture's min-char-rnn exercise.

    ScratchRnn(hidden=16).fit(log_prices).predict(log_prices, n)

Each window is read oldest value first, h_t = tanh(W_xh x_t + W_hh h_{t-1} + b_h), and the last
hidden state gives y = W_hy h_T + b_y: one output per horizon (`strategy: mimo`, on the windows
that have every horizon's target inside the train part) or the next value alone (`recursive`).
Inputs are standardised with the mean and standard deviation of the fold's train windows, each
output with its own train targets', as `pipeline.models.recurrent` does; with covariates, x_t is
the step's `1 + k` values (the target's and each channel's), each channel standardised on its own.

Written by hand, not in Keras, because building it is the lecture's exercise ("before we stop
building things from scratch"), and its own backward pass gives the gradient of a forecast with
respect to every lag (`input_gradients`), the measure of the vanishing gradient the LSTM fixes.
Training follows min-char-rnn: squared error, backpropagation through time (`backward`), each
gradient clipped elementwise to [-clip, clip], and Adagrad, which divides each weight's step by
the root of its summed squared gradients: one learning rate for weights whose gradients differ in
size by orders of magnitude, and no moment estimates to write or tune (Adam would add both).
Mini-batches come in a seeded shuffled order; early stopping watches the most recent
`validation_fraction` of the train windows and restores the best epoch's weights. Everything
random is drawn from `numpy.random.default_rng(seed)`: the same seed gives the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.models.base import read_state, write_state
from pipeline.models.windowed import Windowed, by_channel, channel_scaling

WEIGHTS = "weights.safetensors"
BLOCKS = ("W_xh", "W_hh", "b_h", "W_hy", "b_y")  # the lecture's names, in the order of the arithmetic
INIT_SCALE = 0.01  # min-char-rnn's
ADAGRAD_EPSILON = 1e-8  # min-char-rnn's: keeps the first step finite where a gradient is zero


def init_weights(hidden: int, n_outputs: int, rng: np.random.Generator, n_inputs: int = 1) -> dict[str, np.ndarray]:
    """min-char-rnn's initialisation for a net of `hidden` units on `n_inputs` inputs per step:
    normal matrices of standard deviation 0.01, zero biases.

    The recurrence starts almost linear and short-memoried; on 60 lags of AR(2) returns it
    forecast better than a fan-in-scaled start (0.928 against 0.938 x the random walk's RMSE).
    """
    return {
        "W_xh": rng.normal(0.0, INIT_SCALE, (hidden, n_inputs)),
        "W_hh": rng.normal(0.0, INIT_SCALE, (hidden, hidden)),
        "b_h": np.zeros(hidden),
        "W_hy": rng.normal(0.0, INIT_SCALE, (n_outputs, hidden)),
        "b_y": np.zeros(n_outputs),
    }


def forward(weights: dict[str, np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Outputs `(rows, n_outputs)` and hidden states `(steps + 1, rows, hidden)` (states[0] = 0)
    of standardised windows `x` `(rows, steps)` or `(rows, steps, inputs)`, oldest value first.

    Vectorised over the rows: the loop runs over the time steps alone.
    """
    steps, (rows, hidden) = x.shape[1], (x.shape[0], len(weights["b_h"]))
    inputs = _steps(x) @ weights["W_xh"].T + weights["b_h"]  # W_xh x_t + b_h for every t at once
    states = np.zeros((steps + 1, rows, hidden))
    for t in range(steps):
        states[t + 1] = np.tanh(inputs[t] + states[t] @ weights["W_hh"].T)
    return states[-1] @ weights["W_hy"].T + weights["b_y"], states


def backward(
    weights: dict[str, np.ndarray], x: np.ndarray, states: np.ndarray, d_outputs: np.ndarray
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Backpropagation through time: the gradients of a loss with respect to every weight block
    and to every input step (the shape of `x`), given its gradient `d_outputs` with respect to
    the outputs `forward` returned for `x`."""
    steps = x.shape[1]
    d_pre = np.empty_like(states[1:])  # gradient at each step's pre-activation
    d_state = d_outputs @ weights["W_hy"]
    for t in reversed(range(steps)):
        d_pre[t] = d_state * (1.0 - states[t + 1] ** 2)  # tanh' = 1 - tanh^2
        d_state = d_pre[t] @ weights["W_hh"]
    # The weights are shared by every step: their gradients sum over steps and rows.
    gradients = {
        "W_xh": np.tensordot(d_pre, _steps(x), axes=([0, 1], [0, 1])),
        "W_hh": np.tensordot(d_pre, states[:-1], axes=([0, 1], [0, 1])),
        "b_h": d_pre.sum(axis=(0, 1)),
        "W_hy": d_outputs.T @ states[-1],
        "b_y": d_outputs.sum(axis=0),
    }
    d_inputs = (d_pre @ weights["W_xh"]).transpose(1, 0, 2)
    return gradients, d_inputs if x.ndim == 3 else d_inputs[..., 0]


def _steps(x: np.ndarray) -> np.ndarray:
    """Windows `(rows, steps[, inputs])` as `(steps, rows, inputs)`."""
    return (x[..., None] if x.ndim == 2 else x).transpose(1, 0, 2)


def mse_and_gradients(
    weights: dict[str, np.ndarray], x: np.ndarray, targets: np.ndarray
) -> tuple[float, dict[str, np.ndarray]]:
    """The mean squared error of the outputs over every row and output, and its gradients."""
    outputs, states = forward(weights, x)
    error = outputs - targets
    gradients, _ = backward(weights, x, states, 2.0 * error / error.size)
    return float(np.mean(error**2)), gradients


def adagrad_step(
    weights: dict[str, np.ndarray],
    gradients: dict[str, np.ndarray],
    memory: dict[str, np.ndarray],
    lr: float,
    clip: float,
) -> None:
    """min-char-rnn's update, in place: clip each gradient elementwise to [-clip, clip] (a cap on
    an exploding gradient), add its square to `memory`, step by lr / sqrt(memory)."""
    for name, gradient in gradients.items():
        gradient = np.clip(gradient, -clip, clip)
        memory[name] += gradient**2
        weights[name] -= lr * gradient / np.sqrt(memory[name] + ADAGRAD_EPSILON)


class ScratchRnn(Windowed):
    """A vanilla RNN of `hidden` tanh units and a linear output, on `n_lags` lags of `target`."""

    def __init__(
        self,
        hidden: int = 16,
        epochs: int = 10,
        batch_size: int = 128,
        learning_rate: float = 0.01,
        clip: float = 5.0,
        patience: int = 3,
        validation_fraction: float = 0.1,
        seed: int = 0,
        n_lags: int = 60,
        target: str = "log_return",
        horizons: tuple[int, ...] = (1,),
        strategy: str = "mimo",
        covariates: tuple[str, ...] = (),
    ):
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.clip = clip
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.seed = seed
        self.n_lags = n_lags
        self.target = target
        self.horizons = horizons
        self.strategy = strategy
        self.covariates = covariates

    def _inputs(self, X: np.ndarray) -> np.ndarray:
        """Standardised windows, oldest value first: shape (rows, n_lags, 1 + k)."""
        steps = by_channel(X, self.n_channels())[:, :, ::-1].transpose(0, 2, 1)
        return (steps - np.asarray(self.input_mean_)) / np.asarray(self.input_scale_)

    def _fit_windows(self, X: np.ndarray, Y: np.ndarray) -> None:
        # One net learns every output at once: only the windows with every horizon's target.
        complete = np.isfinite(Y).all(axis=1)
        X, Y = X[complete], Y[complete]
        n_val = max(1, round(len(Y) * self.validation_fraction))
        n_train = len(Y) - n_val
        if n_train < 1:
            raise ValueError(f"{len(Y)} train windows leave none to train on after {n_val} for validation")
        self.input_mean_, self.input_scale_ = channel_scaling(X, self.n_channels())
        self.target_mean_ = [float(v) for v in Y.mean(axis=0)]
        self.target_scale_ = [float(v) or 1.0 for v in Y.std(axis=0)]
        inputs, targets = self._inputs(X), (Y - self.target_mean_) / self.target_scale_
        rng = np.random.default_rng(self.seed)
        weights = init_weights(self.hidden, Y.shape[1], rng, self.n_channels())
        self.weights_, self.history_ = self._train(weights, inputs, targets, n_train, rng)

    def _train(self, weights, inputs, targets, n_train, rng) -> tuple[dict[str, np.ndarray], dict[str, list[float]]]:
        """Adagrad epochs over shuffled mini-batches of the first `n_train` rows; the best
        weights on the rest (the most recent windows) and the per-epoch losses."""
        memory = {name: np.zeros_like(w) for name, w in weights.items()}
        history, best, waited = {"loss": [], "val_loss": []}, None, 0
        for _ in range(self.epochs):
            order = rng.permutation(n_train)
            losses = []
            for start in range(0, n_train, self.batch_size):
                batch = order[start : start + self.batch_size]
                loss, gradients = mse_and_gradients(weights, inputs[batch], targets[batch])
                adagrad_step(weights, gradients, memory, self.learning_rate, self.clip)
                losses.append(loss)
            outputs, _ = forward(weights, inputs[n_train:])
            history["loss"].append(float(np.mean(losses)))
            history["val_loss"].append(float(np.mean((outputs - targets[n_train:]) ** 2)))
            if best is None or history["val_loss"][-1] < min(history["val_loss"][:-1]):
                best, waited = {name: w.copy() for name, w in weights.items()}, 0
            else:
                waited += 1
                if waited >= self.patience:
                    break
        return best, history

    def _predict_windows(self, X: np.ndarray) -> np.ndarray:
        outputs, _ = forward(self.weights_, self._inputs(X))
        return outputs * self.target_scale_ + self.target_mean_

    def input_gradients(self, X: np.ndarray) -> np.ndarray:
        """`(rows, n_lags)`: the derivative of each window's first output (the shortest horizon,
        in target units) with respect to each lag of its price channel (lag_1, the most recent,
        first), from the net's own backward pass."""
        x = self._inputs(np.asarray(X, dtype="float64"))
        outputs, states = forward(self.weights_, x)
        first = np.zeros_like(outputs)
        first[:, 0] = 1.0
        _, d_inputs = backward(self.weights_, x, states, first)
        # Undo the standardisation (chain rule) and the oldest-first order of the steps.
        return d_inputs[:, ::-1, 0] * self.target_scale_[0] / self.input_scale_[0]

    def lag_gradients(self, windows: np.ndarray) -> np.ndarray:
        """`input_gradients` in the standardised units the model contract asks for."""
        return self.input_gradients(windows) * self.input_scale_[0] / self.target_scale_[0]

    def _scaling(self) -> dict:
        keys = ("input_mean_", "input_scale_", "target_mean_", "target_scale_")
        return {key: getattr(self, key) for key in keys}

    def learned(self) -> dict:
        return {**self._scaling(), "epochs_": len(self.history_["loss"])}

    def history(self) -> dict[str, list[float]]:
        return self.history_

    def parameter_counts(self) -> dict[str, int]:
        """Trainable weights by block, named as in the lecture: input W_xh, recurrent W_hh and
        its bias b_h, output W_hy and its bias b_y."""
        return {name: int(self.weights_[name].size) for name in BLOCKS}

    def save(self, directory: Path) -> None:
        from safetensors.numpy import save_file

        write_state(directory, {**self._scaling(), "history_": self.history_})
        save_file(self.weights_, str(Path(directory) / WEIGHTS))

    @classmethod
    def load(cls, directory: Path, params: dict) -> ScratchRnn:
        """The fitted net: scalers from JSON, weights from safetensors (numbers only)."""
        from safetensors.numpy import load_file

        model = cls(**{**params, **{key: tuple(params.get(key, ())) for key in ("horizons", "covariates")}})
        for key, value in read_state(directory).items():
            setattr(model, key, value)
        weights = load_file(str(Path(directory) / WEIGHTS))
        model.weights_ = {name: weights[name] for name in BLOCKS}
        return model
