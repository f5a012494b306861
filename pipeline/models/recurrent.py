"""Keras recurrent nets on the lag windows (stage `lstm`): LSTM, GRU or SimpleRNN on JAX.

    python -m pipeline.train lstm    # params: lstm.*, features.*  ->  data/predictions/lstm.parquet

Stacked recurrent layers (one per entry of `units`) read each window oldest value first and a
dense layer maps the last hidden state to one output per horizon (`strategy: mimo`, trained on
the h-day targets of the windows that have all of them inside the train part) or to the next
value alone (`recursive`, fed its own forecasts). Inputs are standardised with the mean and
standard deviation of the fold's train windows, each output with its own train targets'; early
stopping watches the last `validation_fraction` of the train windows (the most recent ones,
never shuffled into training) and restores the best epoch's weights. Covariates are more input
channels: each step of a window is `(1 + k)` values, the target's and each channel's on that day,
each channel standardised with its own train windows' mean and standard deviation.

Keras runs on JAX, chosen here before Keras is imported: on CPU it was the fastest backend
measured and, seeded with `keras.utils.set_random_seed`, bit-identical from process to process.
XLA is held to one thread per process, since the walk-forward loop parallelises over processes.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from pipeline.features import make_windows, transform
from pipeline.models.base import read_state, write_state
from pipeline.models.windowed import Windowed, by_channel, channel_scaling

# Keras reads its backend once, at its first import. That happens in `_keras()`, at the first
# fit or predict: creating or unpickling a `Recurrent` costs no Keras import (seconds a process).
os.environ["KERAS_BACKEND"] = "jax"
if "XLA_FLAGS" not in os.environ:
    os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
# XLA compilation, not training, was most of the stage: Keras jit-compiles new train, validation
# and predict steps for every fit (a new function each time), about 3 s a fold on 2 cores, while
# the 5 epochs of a fold train in about 1 s. JAX's persistent compilation cache keys compiled
# steps by their program, so every fold, worker and run after the first reuses them; the
# forecasts are the same bytes with and without it (tests/test_models.py). Every entry is kept:
# JAX's default skips compilations under a second, which are all of these.
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR",
    str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "stockcast" / "jax"),
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

WEIGHTS = "weights.safetensors"
CELLS = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "SimpleRNN"}  # params name -> Keras layer


def _keras():
    import keras

    return keras


class Recurrent(Windowed):
    """A stack of `cell` layers of `units` and a dense output, on `n_lags` lags of `target`.

    With `warm_start=True`, fitting an already fitted object starts from its weights (the
    walk-forward loop then carries a model from fold to fold) instead of a fresh initialisation.
    """

    def __init__(
        self,
        cell: str = "lstm",
        units: tuple[int, ...] = (32,),
        dropout: float = 0.0,
        epochs: int = 20,
        batch_size: int = 128,
        learning_rate: float = 0.001,
        patience: int = 3,
        validation_fraction: float = 0.1,
        seed: int = 0,
        warm_start: bool = False,
        n_lags: int = 60,
        target: str = "log_return",
        horizons: tuple[int, ...] = (1,),
        strategy: str = "mimo",
        covariates: tuple[str, ...] = (),
    ):
        self.cell = cell
        self.units = units
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.seed = seed
        self.warm_start = warm_start
        self.n_lags = n_lags
        self.target = target
        self.horizons = horizons
        self.strategy = strategy
        self.covariates = covariates

    def prepare(self) -> None:
        _keras()

    def _build(self):
        keras = _keras()
        # Layer names are given, not drawn from Keras' global counters, so they are the same in
        # every fit and name the blocks of `parameter_counts`.
        layers = [keras.Input((self.n_lags, self.n_channels()))]
        for i, size in enumerate(self.units):
            last = i == len(self.units) - 1
            layers.append(
                getattr(keras.layers, CELLS[self.cell])(
                    size, dropout=self.dropout, return_sequences=not last, name=f"{self.cell}_{i + 1}"
                )
            )
        layers.append(keras.layers.Dense(len(self.steps()), name="dense"))
        model = keras.Sequential(layers)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=self.learning_rate), loss="mse")
        return model

    def _inputs(self, X: np.ndarray) -> np.ndarray:
        """Standardised windows as sequences, oldest value first: shape (rows, n_lags, 1 + k)."""
        steps = by_channel(X, self.n_channels())[:, :, ::-1].transpose(0, 2, 1)
        return ((steps - np.asarray(self.input_mean_)) / np.asarray(self.input_scale_)).astype("float32")

    def _fit_windows(self, X: np.ndarray, Y: np.ndarray) -> None:
        # One net learns every output at once: only the windows with every horizon's target.
        complete = np.isfinite(Y).all(axis=1)
        X, y = X[complete], Y[complete]
        n_val = max(1, round(len(y) * self.validation_fraction))
        n_train = len(y) - n_val
        if n_train < 1:
            raise ValueError(f"{len(y)} train windows leave none to train on after {n_val} for validation")
        # Whole batches only: the oldest few windows are left out so that every training step
        # has one shape, and XLA compiles the step once per fit instead of twice.
        skip = n_train % self.batch_size if n_train > self.batch_size else 0
        keras = _keras()
        keras.utils.set_random_seed(self.seed)  # weights, dropout masks and batch order
        model = self._build()
        if self.warm_start and hasattr(self, "weights_"):
            model.set_weights(self.weights_)
        self.input_mean_, self.input_scale_ = channel_scaling(X, self.n_channels())
        self.target_mean_ = [float(v) for v in y.mean(axis=0)]
        self.target_scale_ = [float(v) or 1.0 for v in y.std(axis=0)]
        inputs = self._inputs(X)
        targets = ((y - self.target_mean_) / self.target_scale_).astype("float32")
        stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=self.patience, restore_best_weights=True)
        fitted = model.fit(
            inputs[skip:n_train],
            targets[skip:n_train],
            validation_data=(inputs[n_train:], targets[n_train:]),
            epochs=self.epochs,
            batch_size=self.batch_size,
            validation_batch_size=n_val,
            shuffle=True,
            verbose=0,
            callbacks=[stop, _Progress(f"{self.cell} on {n_train - skip} windows", self.epochs).callback()],
        )
        self.history_ = {name: [float(v) for v in values] for name, values in sorted(fitted.history.items())}
        self.weights_ = model.get_weights()
        self.network_ = model

    def _network(self):
        """The Keras model, rebuilt from `weights_` after a worker sent this model back or `load`."""
        if getattr(self, "network_", None) is None:
            self.network_ = self._build()
            self.network_.set_weights(self.weights_)
        return self.network_

    def _predict_windows(self, X: np.ndarray) -> np.ndarray:
        # One batch of all rows: each row's forecast depends on that row alone.
        out = self._network().predict(self._inputs(X), batch_size=max(len(X), 1), verbose=0)
        return out.astype("float64") * self.target_scale_ + self.target_mean_

    def lag_gradients(self, windows: np.ndarray) -> np.ndarray:
        """`(rows, n_lags)` standardised derivatives of the first output by lag, by JAX autodiff.

        `stateless_call` runs the Keras model as a pure function of its weights and inputs, which
        `jax.grad` differentiates. The net's input and output are already standardised, and each
        window's output depends on that window alone, so the gradient of the summed first outputs
        holds every window's own gradient in one backward pass.
        """
        import jax

        network = self._network()
        trainable = [v.value for v in network.trainable_variables]
        non_trainable = [v.value for v in network.non_trainable_variables]

        def summed_first_output(inputs):
            outputs, _ = network.stateless_call(trainable, non_trainable, inputs, training=False)
            return outputs[:, 0].sum()

        gradient = jax.grad(summed_first_output)(self._inputs(np.asarray(windows, dtype="float64")))
        return np.asarray(gradient, dtype="float64")[:, ::-1, 0]  # steps oldest first -> lag_1 first

    def _scaling(self) -> dict:
        keys = ("input_mean_", "input_scale_", "target_mean_", "target_scale_")
        return {key: getattr(self, key) for key in keys}

    def learned(self) -> dict:
        return {**self._scaling(), "epochs_": len(self.history_.get("loss", []))}

    def history(self) -> dict[str, list[float]]:
        return self.history_

    def native(self, y: np.ndarray, X: np.ndarray | None = None) -> tuple[str, object, np.ndarray]:
        """The Keras network and the last five input rows of `y` as it sees them (standardised sequences)."""
        if X is None:
            X, _ = make_windows(transform(np.asarray(y, dtype="float64"), self.target), self.n_lags)
        return "keras", self._network(), self._inputs(np.asarray(X[-5:], dtype="float64"))

    def save(self, directory: Path) -> None:
        from safetensors.numpy import save_file

        write_state(directory, {**self._scaling(), "history_": self.history_})
        save_file({f"{i:03d}": w for i, w in enumerate(self.weights_)}, str(Path(directory) / WEIGHTS))

    @classmethod
    def load(cls, directory: Path, params: dict) -> Recurrent:
        """The fitted net: weights from safetensors (arrays only), rebuilt on the first forecast."""
        from safetensors.numpy import load_file

        state = read_state(directory)
        tuples = {key: tuple(params.get(key, ())) for key in ("units", "horizons", "covariates")}
        model = cls(**{**params, **tuples})
        for key, value in state.items():
            setattr(model, key, value)
        weights = load_file(str(Path(directory) / WEIGHTS))
        model.weights_ = [weights[key] for key in sorted(weights)]
        return model

    def __getstate__(self) -> dict:
        # The Keras model (`network_`) is rebuilt from `weights_`: workers return fitted objects without it.
        state = self.__dict__.copy()
        state.pop("network_", None)
        return state

    def parameter_counts(self) -> dict[str, int]:
        """Trainable weights per block, as in the seed lecture: each recurrent layer's input
        weights W_xh, recurrent weights W_hh and bias (LSTM: 4 gates, GRU: 3, SimpleRNN: 1),
        then the dense output's W_hy and bias."""
        names = []
        for i in range(len(self.units)):
            names += [f"{self.cell}_{i + 1} {block}" for block in ("W_xh", "W_hh", "bias")]
        names += ["dense W_hy", "dense bias"]
        return {name: int(w.size) for name, w in zip(names, self.weights_, strict=True)}


class _Progress:
    """Epoch progress of one fit: a bar on a terminal, one summary line otherwise (CI logs)."""

    def __init__(self, label: str, epochs: int):
        self.label, self.epochs = label, epochs

    def callback(self):
        return _keras().callbacks.LambdaCallback(
            on_train_begin=self.begin, on_epoch_end=self.epoch_end, on_train_end=self.end
        )

    def begin(self, logs=None):
        self.start, self.val_loss, self.bar = time.perf_counter(), [], None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=self.epochs, desc=self.label, unit="epoch", leave=False, file=sys.stderr)

    def epoch_end(self, epoch, logs=None):
        self.val_loss.append(float(logs["val_loss"]))
        if self.bar is not None:
            self.bar.set_postfix(val_loss=f"{self.val_loss[-1]:.4f}", refresh=False)
            self.bar.update(1)

    def end(self, logs=None):
        if self.bar is not None:
            self.bar.close()
            return
        best = int(np.argmin(self.val_loss))
        print(
            f"{self.label}: {len(self.val_loss)} epochs, best val_loss {self.val_loss[best]:.4f} at epoch {best + 1}, "
            f"{time.perf_counter() - self.start:.1f} s",
            file=sys.stderr,
            flush=True,
        )
