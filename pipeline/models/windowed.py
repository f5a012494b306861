"""The shared base of the window models: log prices in, lag windows to the learner, log prices out.

A window model learns from the rows of the features table (`pipeline.features`): `n_lags` values
of the target transform (log returns or prices, lag_1 the most recent) predict the next value.
`fit` builds the train part's windows, `predict` the windows of the last `n` days, each from the
values before its day only; the forecast of the transform is mapped back to a log price.
Subclasses implement `_fit_windows(X, y)` and `_predict_windows(X)` on arrays and nothing else.
"""

from __future__ import annotations

import numpy as np

from pipeline.features import lookback, make_windows, transform

TINY_PRICE = 1e-12  # a price forecast at or below zero still needs a log


class Windowed:
    """Base class: subclasses set `n_lags` and `target` in their constructor."""

    n_lags: int
    target: str

    def fit(self, y: np.ndarray) -> Windowed:
        X, t = make_windows(transform(np.asarray(y, dtype="float64"), self.target), self.n_lags)
        if len(t) == 0:
            raise ValueError(f"{len(y)} train prices leave no window of {self.n_lags} lags")
        self._fit_windows(X, t)
        return self

    def predict(self, y: np.ndarray, n: int) -> np.ndarray:
        y = np.asarray(y, dtype="float64")
        start = len(y) - n - lookback(self.n_lags, self.target)
        if start < 0:
            raise ValueError(f"{n} forecasts of {self.n_lags} lags need more than {len(y)} prices")
        # The tail's windows are exactly the last n rows of the features table; the last price
        # is only ever a target, never a lag.
        X, _ = make_windows(transform(y[start:], self.target), self.n_lags)
        forecast = np.asarray(self._predict_windows(X), dtype="float64").reshape(n)
        if self.target == "log_return":
            return y[len(y) - n - 1 : len(y) - 1] + forecast
        return np.log(np.maximum(forecast, TINY_PRICE))

    def _fit_windows(self, X: np.ndarray, y: np.ndarray) -> None:
        raise NotImplementedError

    def _predict_windows(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError
