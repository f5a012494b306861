"""The shared base of the window models: log prices in, lag windows to the learner, log prices out.

A window model learns from the rows of the features table (`pipeline.features`): `n_lags` values
of the target transform (log returns or prices, lag_1 the most recent) ending at a cutoff. The
walk-forward loop passes those rows as `X`, aligned with `y` (row i holds the lags that end the
day before i, NaN where a day has no full window); without `X` (a forecast from the latest
prices) they are built from `y` by the same function, so both give the same numbers.

Covariates (`covariates`, `pipeline.covariates`) are more channels over the same lags: `X` then
holds the target's lags and each channel's (`features.input_columns`), and a model without the
walk-forward loop's `X` builds it with `inputs` from the channels by day. A train window with a
missing covariate value (before the first day that has one) is left out.

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
from pipeline.covariates import channels
from pipeline.features import input_columns, input_rows, lookback, make_windows, transform
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


def by_channel(X: np.ndarray, n_channels: int) -> np.ndarray:
    """Input rows `(rows, n_channels * n_lags)` as `(rows, n_channels, n_lags)`, lag_1 first."""
    return np.asarray(X, dtype="float64").reshape(len(X), n_channels, -1)


def channel_scaling(X: np.ndarray, n_channels: int) -> tuple[list[float], list[float]]:
    """Each channel's mean and standard deviation (1 where it is constant) over the rows `X`."""
    channels = by_channel(X, n_channels)
    means = [float(channels[:, j].mean()) for j in range(n_channels)]
    return means, [float(channels[:, j].std()) or 1.0 for j in range(n_channels)]


class Windowed(Model):
    """Base class: subclasses set `n_lags`, `target`, `horizons`, `strategy` and `covariates` in
    their constructor."""

    n_lags: int
    target: str
    strategy: str

    def input_columns(self) -> list[str]:
        return input_columns(self.n_lags, self.covariates)

    def n_channels(self) -> int:
        """Values per lag: the target's and one per covariate channel."""
        return 1 + len(channels(self.covariates))

    def inputs(self, log_price: np.ndarray, channel_values: np.ndarray | None) -> np.ndarray | None:
        if not self.covariates:
            return None
        return input_rows(log_price, channel_values, self.n_lags, self.target)

    def _windows(self, y: np.ndarray, X: np.ndarray | None, start: int) -> np.ndarray:
        """The input rows from day `start` on: `X`'s, or built from `y` (no covariates)."""
        if X is None and self.covariates:
            raise ValueError(f"covariates {list(self.covariates)} need X (`inputs`)")
        if X is None:
            return make_windows(transform(y[start - lookback(self.n_lags, self.target) :], self.target), self.n_lags)[0]
        return np.asarray(X[start:], dtype="float64")

    def steps(self) -> tuple[int, ...]:
        """The horizons the learner has an output for: all of them, or the one step a recursion repeats."""
        return (1,) if self.strategy == "recursive" else tuple(self.horizons)

    def fit(self, y: np.ndarray, X: np.ndarray | None = None) -> Windowed:
        if self.covariates and self.strategy == "recursive":
            raise ValueError("a recursive strategy would need the covariates' values after the cutoff")
        y = np.asarray(y, dtype="float64")
        skip = lookback(self.n_lags, self.target)
        windows = self._windows(y, X, skip)
        cutoffs = np.arange(skip - 1, len(y) - 1)  # row r's lags end on day skip - 1 + r
        targets = horizon_targets(y, cutoffs, self.steps(), self.target)
        complete = np.isfinite(windows).all(axis=1)  # a covariate missing before its first value
        windows, targets = windows[complete], targets[complete]
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
        windows = self._windows(y, X, len(y) - n)
        incomplete = ~np.isfinite(windows).all(axis=1)
        if incomplete.any():
            raise UserError(
                f"features.covariates: the forecast from day {len(y) - n - 1 + int(np.argmax(incomplete))} of a "
                "series has a missing covariate value in its window (before the covariate's first value)"
            )
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
