"""Benchmark 2: an epoch of the pipeline's recurrent training code beside a minimal Keras loop.

    python -m benchmarks recurrent

Both train the same layers (`lstm.*`: the first of `lstm.cells`, units, dropout, Adam at `lstm.learning_rate`, batch
`lstm.batch_size`) on the same 4,000 windows of 60 lags: the last 4,061 prices of the project's
first series, log returns standardised, the last `lstm.validation_fraction` of the windows held
out for validation. The pipeline's side is `Recurrent.fit` (windows, scaling, early stopping,
progress callback); the minimal side is `model.fit` on prepared arrays.

Each side is fitted for `EPOCHS` epochs, `REPEATS` times, interleaved. Every Keras `fit` call gets
one extra callback, the same on both sides, that times each epoch: the first epoch carries the
JIT compilation, the median of the others is the steady epoch. The best of the repeats is kept.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from benchmarks.inputs import default_inputs
from benchmarks.report import Result, ratio, stopwatch
from pipeline.features import make_windows, transform
from pipeline.models.recurrent import CELLS, Recurrent  # chooses Keras' backend (JAX) and XLA threads
from pipeline.params import Params
from pipeline.walkforward import series_from_prices

# isort: split
import keras  # after the pipeline's module, which configures it

N_WINDOWS, N_LAGS = 4000, 60
EPOCHS = 6  # one with compilation, five steady
REPEATS = 3


class EpochTimer(keras.callbacks.Callback):
    """Seconds of each epoch of one fit (validation included)."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)


@contextmanager
def timed_epochs() -> Iterator[list[EpochTimer]]:
    """Add an `EpochTimer` to every `keras.Model.fit` call in the block; yields the timers."""
    timers, fit = [], keras.Model.fit

    def timed_fit(model, *args, callbacks=None, **kwargs):
        timers.append(EpochTimer())
        return fit(model, *args, callbacks=[*(callbacks or []), timers[-1]], **kwargs)

    keras.Model.fit = timed_fit
    try:
        yield timers
    finally:
        keras.Model.fit = fit


def pipeline_fit(log_price: np.ndarray, params: Params, epochs: int) -> None:
    """`Recurrent.fit` for `epochs` epochs (patience = epochs: early stopping cannot end it sooner)."""
    p = params.lstm
    Recurrent(
        cell=p.cells[0],
        units=tuple(p.units),
        dropout=p.dropout,
        epochs=epochs,
        batch_size=p.batch_size,
        learning_rate=p.learning_rate,
        patience=epochs,
        validation_fraction=p.validation_fraction,
        seed=p.seed,
        n_lags=N_LAGS,
        target="log_return",
    ).fit(log_price)


def minimal_fit(log_price: np.ndarray, params: Params, epochs: int) -> None:
    """The same network trained by a bare `model.fit` on the same standardised windows."""
    p = params.lstm
    X, y = make_windows(transform(log_price, "log_return"), N_LAGS)
    mean, scale = y.mean(), y.std()
    inputs = ((X[:, ::-1] - mean) / scale).astype("float32")[..., None]
    targets = ((y - mean) / scale).astype("float32")
    n_val = round(len(y) * p.validation_fraction)
    keras.utils.set_random_seed(p.seed)
    layers = [keras.Input((N_LAGS, 1))]
    cell = getattr(keras.layers, CELLS[p.cells[0]])
    layers += [cell(u, dropout=p.dropout, return_sequences=i < len(p.units) - 1) for i, u in enumerate(p.units)]
    model = keras.Sequential([*layers, keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=p.learning_rate), loss="mse")
    model.fit(
        inputs[:-n_val],
        targets[:-n_val],
        validation_data=(inputs[-n_val:], targets[-n_val:]),
        epochs=epochs,
        batch_size=p.batch_size,
        shuffle=True,
        verbose=0,
    )


def run(params: Params) -> Result:
    prices, folds = default_inputs(params)
    uid = sorted(folds)[0]
    series = series_from_prices(prices[prices.unique_id == uid])[uid]
    log_price = np.log(series.price[-(N_WINDOWS + N_LAGS + 1) :])
    sides = {"pipeline Recurrent.fit": pipeline_fit, "minimal Keras model.fit": minimal_fit}
    wall, first, steady = ({s: np.inf for s in sides} for _ in range(3))
    for _ in range(REPEATS):
        for side, fit in sides.items():
            with timed_epochs() as timers, stopwatch() as elapsed:
                fit(log_price, params, EPOCHS)
            (epochs,) = [t.seconds for t in timers]
            wall[side] = min(wall[side], elapsed())
            first[side] = min(first[side], epochs[0])
            steady[side] = min(steady[side], float(np.median(epochs[1:])))
    p = params.lstm
    base = steady["minimal Keras model.fit"]
    result = Result(
        title=f"Recurrent net, one epoch: {p.cells[0]} {list(p.units)}, {N_WINDOWS} windows x {N_LAGS} lags of {uid}, "
        f"batch {p.batch_size}, Keras on {keras.backend.backend()}",
        columns=[
            "training code",
            f"fit of {EPOCHS} epochs s",
            "first epoch s (with compile)",
            "steady epoch s",
            "steady x minimal",
        ],
        rows=[[side, wall[side], first[side], steady[side], ratio(steady[side], base)] for side in sides],
    )
    r = steady["pipeline Recurrent.fit"] / base
    result.notes = [
        f"steady epoch: median of epochs 2-{EPOCHS}, best of {REPEATS} fits; "
        f"{N_WINDOWS - round(N_WINDOWS * p.validation_fraction)} train windows "
        f"(the pipeline keeps whole batches of {p.batch_size}: the oldest few are left out), the rest validation; "
        "the fit's wall includes building the model and windows",
        f"target within 1.2x of the minimal loop: {r:.2f}x ({'met' if r <= 1.2 else 'NOT met'})",
    ]
    return result
