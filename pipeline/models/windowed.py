"""The shared base of the window models: log prices in, lag windows to the learner, log prices out.

A window model learns from the rows of the features table (`pipeline.features`): `n_lags` values
of the target transform (log returns or prices, lag_1 the most recent) ending at a cutoff. The
walk-forward loop passes those rows as `X`, aligned with `y` (row i holds the lags that end the
day before i, NaN where a day has no full window); without `X` (a forecast from the latest
prices) they are built from `y` by the same function, so both give the same numbers.

Every horizon h is forecast by one of two strategies (`strategy`):

- one output per horizon (`direct` for the regressor, `mimo` for the recurrent net): the learner
  is trained on the h-day target of each window, the cumulative log return from the cutoff to
  h days later (or the price h days later, for `target: price`);
- `recursive`: the one-step learner fed its own forecasts, h times.

A train window whose h-day target lies past the train part's last day has no target for that
horizon (NaN in the targets the learner gets): it is left out, not peeked at. Subclasses
implement `_fit_windows(X, Y)` (Y: one column per trained output, NaN where a window has no
target) and `_predict_windows(X)` (one column per output) on arrays and nothing else.
"""

from __future__ import annotations

import numpy as np

from pipeline.cli import UserError
from pipeline.features import lookback, make_windows, transform
from pipeline.models.base import Model, cutoff_values

TINY_PRICE = 1e-12  # a price forecast at or below zero still needs a log


def horizon_targets(y: np.ndarray, cutoffs: np.ndarray, steps, target: str) -> np.ndarray:
    """`(len(cutoffs), len(steps))`: each cutoff's target `step` days later, NaN past the end of `y`.

    `log_return`: the cumulative log return y[c + h] - y[c]; `price`: the price exp(y[c + h]).
    """
    out = np.full((len(cutoffs), len(steps)), np.nan)
    for j, h in enumerate(steps):
        inside = cutoffs + h < len(y)
        later = y[cutoffs[inside] + h]
        out[inside, j] = later - y[cutoffs[inside]] if target == "log_return" else np.exp(later)
    return out


class Windowed(Model):
    """Base class: subclasses set `n_lags`, `target`, `horizons` and `strategy` in their constructor."""

    n_lags: int
    target: str
    strategy: str

    def input_columns(self) -> list[str]:
        return [f"lag_{i}" for i in range(1, self.n_lags + 1)]

    def steps(self) -> tuple[int, ...]:
        """The horizons the learner has an output for: all of them, or the one step a recursion repeats."""
        return (1,) if self.strategy == "recursive" else tuple(self.horizons)

    def fit(self, y: np.ndarray, X: np.ndarray | None = None) -> Windowed:
        y = np.asarray(y, dtype="float64")
        skip = lookback(self.n_lags, self.target)
        windows = make_windows(transform(y, self.target), self.n_lags)[0] if X is None else X[skip:]
        cutoffs = np.arange(skip - 1, len(y) - 1)  # row r's lags end on day skip - 1 + r
        targets = horizon_targets(y, cutoffs, self.steps(), self.target)
        empty = [h for h, column in zip(self.steps(), targets.T, strict=True) if not np.isfinite(column).any()]
        if empty:
            raise UserError(
                f"features.n_lags: {self.n_lags} lags leave no train window with a {empty[0]}-day target "
                f"in a train part of {len(y)} prices"
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
        windows = np.asarray(windows, dtype="float64")
        forecast = self._recursive(windows) if self.strategy == "recursive" else self._outputs(windows)
        if self.target == "log_return":
            return cutoff_values(y, n) + forecast
        return np.log(np.maximum(forecast, TINY_PRICE))

    def _outputs(self, windows: np.ndarray) -> np.ndarray:
        out = np.asarray(self._predict_windows(windows), dtype="float64")
        return out.reshape(len(windows), len(self.steps()))

    def _recursive(self, windows: np.ndarray) -> np.ndarray:
        """Each horizon's cumulative target from the one-step learner fed its own forecasts:
        the forecast becomes lag_1 of the next window and the oldest lag drops out."""
        window, total, out = windows.copy(), np.zeros(len(windows)), []
        wanted = set(self.horizons)
        for step in range(1, max(self.horizons) + 1):
            following = self._outputs(window)[:, 0]
            total = total + following if self.target == "log_return" else following
            if step in wanted:
                out.append(total)
            window = np.concatenate([following[:, None], window[:, :-1]], axis=1)
        return np.stack(out, axis=1)

    def _fit_windows(self, X: np.ndarray, Y: np.ndarray) -> None:
        raise NotImplementedError

    def _predict_windows(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError
