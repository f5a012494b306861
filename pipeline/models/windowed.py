"""The shared base of the window models: log prices in, lag windows to the learner, log prices out.

A window model learns from the rows of the features table (`pipeline.features`): `n_lags` values
of the target transform (log returns or prices, lag_1 the most recent) predict the next value.
The walk-forward loop passes those rows as `X`, aligned with `y` (row i holds the lags that
predict day i, NaN where a day has no full window); without `X` (a forecast from the latest
prices) they are built from `y` by the same function, so both give the same numbers.
Subclasses implement `_fit_windows(X, y)` and `_predict_windows(X)` on arrays and nothing else.
"""

from __future__ import annotations

import numpy as np

from pipeline.cli import UserError
from pipeline.features import lookback, make_windows, transform
from pipeline.models.base import Model

TINY_PRICE = 1e-12  # a price forecast at or below zero still needs a log


class Windowed(Model):
    """Base class: subclasses set `n_lags` and `target` in their constructor."""

    n_lags: int
    target: str

    def input_columns(self) -> list[str]:
        return [f"lag_{i}" for i in range(1, self.n_lags + 1)]

    def fit(self, y: np.ndarray, X: np.ndarray | None = None) -> Windowed:
        y = np.asarray(y, dtype="float64")
        skip = lookback(self.n_lags, self.target)
        targets = transform(y, self.target)[self.n_lags :]
        windows = make_windows(transform(y, self.target), self.n_lags)[0] if X is None else X[skip:]
        if len(targets) == 0:
            raise UserError(
                f"features.n_lags: {self.n_lags} lags leave no train window in a train part of {len(y)} prices"
            )
        self._fit_windows(np.asarray(windows, dtype="float64"), targets)
        return self

    def predict(self, y: np.ndarray, n: int, X: np.ndarray | None = None) -> np.ndarray:
        y = np.asarray(y, dtype="float64")
        start = len(y) - n - lookback(self.n_lags, self.target)
        if start < 0:
            raise ValueError(f"{n} forecasts of {self.n_lags} lags need more than {len(y)} prices")
        # The tail's windows are exactly the last n rows of the features table; the last price
        # is only ever a target, never a lag.
        windows = make_windows(transform(y[start:], self.target), self.n_lags)[0] if X is None else X[len(y) - n :]
        forecast = np.asarray(self._predict_windows(np.asarray(windows, dtype="float64")), dtype="float64").reshape(n)
        if self.target == "log_return":
            return y[len(y) - n - 1 : len(y) - 1] + forecast
        return np.log(np.maximum(forecast, TINY_PRICE))

    def _fit_windows(self, X: np.ndarray, y: np.ndarray) -> None:
        raise NotImplementedError

    def _predict_windows(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError
