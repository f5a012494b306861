"""The model contract's base class: what every family has, with the defaults most need.

A family subclasses `Model` and writes `fit` and `predict`; everything else has a default here,
so the walk-forward loop, the model store and the tracking stage call one declared interface
instead of probing for optional methods.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np

STATE = "state.json"  # learned scalars and short lists, as JSON


class Model:
    """Base class of every forecasting model (see `pipeline.models` for the contract).

    A model forecasts `horizons` (trading days, strictly increasing), a constructor argument of
    every family: strategies that train one output per horizon need them at `fit`.
    """

    horizons: tuple[int, ...] = (1,)
    own_intervals = False  # True: `predict_interval` gives the model's own bounds at `levels`
    levels: tuple[float, ...] = ()
    covariates: tuple[str, ...] = ()  # `features.covariates` the model reads (a constructor argument where any)
    inputs_from = "windows"  # the table `input_columns` are in: `windows` or `covariates` (the channels by day)

    def fit(self, y: np.ndarray, X: np.ndarray | None = None) -> Model:
        raise NotImplementedError

    def predict(self, y: np.ndarray, n: int, X: np.ndarray | None = None) -> np.ndarray:
        """`(n, len(horizons))` log-price forecasts from the last `n` cutoffs before the end of `y`.

        Row i is forecast from cutoff `len(y) - n - 1 + i` (so with h=1 row i forecasts the
        i-th of the last `n` values, as the one-step loop always did); column j is the log price
        `horizons[j]` days after that cutoff, which may lie past the end of `y`. A forecast reads
        nothing after its cutoff: the leakage canary of the tests.
        """
        raise NotImplementedError

    def predict_interval(self, y: np.ndarray, n: int, X: np.ndarray | None = None) -> np.ndarray | None:
        """`(n, len(horizons), len(levels), 2)` lower and upper log-price bounds of `predict`'s
        forecasts at each of `levels` (percent), or `None` for a model without its own intervals
        (the walk-forward loop calibrates every model's: `pipeline.intervals`)."""
        return None

    def prepare(self) -> None:
        """Import the libraries `fit` will need (a worker does it while the stage reads its inputs)."""

    def input_columns(self) -> list[str]:
        """The columns of the features stage's table `inputs_from` (`data/windows.parquet` or
        `data/covariates.parquet`) the model reads as `X`; `[]` for a model of the prices alone."""
        return []

    def inputs(self, log_price: np.ndarray, channel_values: np.ndarray | None) -> np.ndarray | None:
        """`X` for `fit`/`predict` on `log_price`, built from the covariate channels by day
        (`(days, k)`, `pipeline.covariates.channels(self.covariates)` order), the same rows the
        walk-forward loop reads from the features stage's table; `None` for a model without covariates."""
        return None

    def get_params(self) -> dict:
        """The constructor's arguments as the constructor stored them (scikit-learn's rule)."""
        parameters = inspect.signature(type(self).__init__).parameters.values()
        named = (p.name for p in parameters if p.name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD)
        return {name: getattr(self, name) for name in named}

    def config(self) -> dict:
        """The constructor's arguments as JSON values, as the model store records them."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.get_params().items()}

    def learned(self) -> dict:
        """The fitted model's small learned values (JSON-ready), e.g. `{"order_": [1, 1, 1]}`."""
        return {}

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters by weight block, e.g. `{"lstm_1 W_xh": 128}`; `{}` for none."""
        return {}

    def lag_gradients(self, windows: np.ndarray) -> np.ndarray | None:
        """`(rows, n_lags)`: the derivative of each lag window's first forecast (the shortest
        horizon) with respect to each lag of the price channel, lag_1 (the most recent) first, in
        the model's standardised units (train-target standard deviations per train-input standard
        deviation, so models fitted on different series compare); `None` for a model that has
        none. `windows` are rows of `X` (`features.input_rows`; without covariates, the rows
        `features.make_windows` builds: `pipeline.gradients`)."""
        return None

    def history(self) -> dict[str, list[float]]:
        """Training curves of the last fit (e.g. `loss`, `val_loss` per epoch); `{}` for none."""
        return {}

    def native(self, y: np.ndarray, X: np.ndarray | None = None) -> tuple[str, object, np.ndarray] | None:
        """`(library, learned object, input example built from log prices y and their inputs X)`
        for an MLflow flavour of that library (`sklearn`, `keras`), or `None` where there is none."""
        return None

    def save(self, directory: Path) -> None:
        """Write the fitted state into `directory` (which exists and is empty): no pickle."""
        write_state(directory, self.learned())

    @classmethod
    def load(cls, directory: Path, params: dict) -> Model:
        """The fitted model `save` wrote, built from its constructor `params`; runs no code from
        the files (they hold numbers and names only)."""
        model = cls(**params)
        for key, value in read_state(directory).items():
            setattr(model, key, value)
        return model


def cutoff_values(y: np.ndarray, n: int) -> np.ndarray:
    """The values at the last `n` cutoffs of `y` (positions len(y)-n-1 .. len(y)-2), as a column."""
    y = np.asarray(y, dtype="float64")
    if n >= len(y):
        raise ValueError(f"{n} cutoffs need more than {len(y)} values")
    return y[len(y) - n - 1 : len(y) - 1, None]


def write_state(directory: Path, state: dict) -> None:
    """`state` as sorted, indented JSON: floats are written with `repr`, so they read back exactly."""
    (Path(directory) / STATE).write_text(json.dumps(state, indent=1, sort_keys=True, allow_nan=False) + "\n")


def read_state(directory: Path) -> dict:
    return json.loads((Path(directory) / STATE).read_text())
