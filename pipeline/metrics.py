"""Forecast scores: point errors, directional accuracy, intervals and the Diebold-Mariano test.

Pure functions of NumPy arrays in price units. A score that is undefined for its inputs (a
zero scale, no scored day, a loss differential with zero variance) is returned as `None`, never
as inf or NaN: the reports write it as null and say why. Prices are positive (the ingest stage
guarantees it), so MAPE is always defined.
"""

from __future__ import annotations

import numpy as np
from scipy import stats
from sklearn.metrics import mean_absolute_error, mean_absolute_percentage_error, root_mean_squared_error


def rmse(y: np.ndarray, y_hat: np.ndarray) -> float:
    """Root mean squared error."""
    return float(root_mean_squared_error(y, y_hat))


def mae(y: np.ndarray, y_hat: np.ndarray) -> float:
    """Mean absolute error."""
    return float(mean_absolute_error(y, y_hat))


def mape(y: np.ndarray, y_hat: np.ndarray) -> float:
    """Mean absolute percentage error as a fraction (0.01 is 1%), scikit-learn's convention."""
    return float(mean_absolute_percentage_error(y, y_hat))


def naive_scale(train_prices: np.ndarray) -> float:
    """MASE's scale: the in-sample MAE of the one-step naive forecast, mean |p_t - p_{t-1}|.

    Zero for a constant train part, which makes MASE undefined (see `mase`).
    """
    if len(train_prices) < 2:
        raise ValueError("naive_scale needs at least two prices")
    return float(np.mean(np.abs(np.diff(train_prices))))


def mase(y: np.ndarray, y_hat: np.ndarray, scale: np.ndarray | float) -> float | None:
    """Mean absolute scaled error: mean of |y - y_hat| / scale (Hyndman and Koehler, 2006).

    `scale` is one number or one per forecast (each fold's own `naive_scale`), so forecasts
    pooled from several folds and series are each scaled by their own train part. `None` when
    any scale is zero: a constant train part has no naive error to scale by.
    """
    scale = np.broadcast_to(np.asarray(scale, dtype="float64"), np.shape(y))
    if np.any(scale <= 0):
        return None
    return float(np.mean(np.abs(np.asarray(y) - np.asarray(y_hat)) / scale))


def rmse_ratio(y: np.ndarray, y_hat: np.ndarray, y_hat_baseline: np.ndarray) -> float | None:
    """RMSE of `y_hat` over RMSE of the baseline on the same rows; below 1 beats the baseline.

    `None` when the baseline is exact on every row (its RMSE is zero).
    """
    baseline = rmse(y, y_hat_baseline)
    return rmse(y, y_hat) / baseline if baseline > 0 else None


def directional_accuracy(y: np.ndarray, y_hat: np.ndarray, y_prev: np.ndarray) -> tuple[float | None, int, int]:
    """Share of days where the forecast calls the direction of the move from yesterday's price.

    Returns `(accuracy, n_scored, n_flat)`. Days on which the actual price did not change have
    no direction to call: they are left out and counted in `n_flat`. A forecast of no change
    (`y_hat == y_prev`, e.g. the naive random walk every day) calls no direction and counts as
    wrong, so the naive baseline scores 0. `accuracy` is `None` when no day is scored.
    """
    actual = np.sign(np.asarray(y) - np.asarray(y_prev))
    predicted = np.sign(np.asarray(y_hat) - np.asarray(y_prev))
    moved = actual != 0
    n_scored = int(moved.sum())
    n_flat = int(len(actual) - n_scored)
    if n_scored == 0:
        return None, 0, n_flat
    return float(np.mean(predicted[moved] == actual[moved])), n_scored, n_flat


def interval_coverage(y: np.ndarray, y_lo: np.ndarray, y_hi: np.ndarray) -> float:
    """Share of actual values inside the closed interval [y_lo, y_hi]."""
    y = np.asarray(y)
    return float(np.mean((np.asarray(y_lo) <= y) & (y <= np.asarray(y_hi))))


def interval_width(y_lo: np.ndarray, y_hi: np.ndarray) -> float:
    """Mean width of the intervals, in price units."""
    return float(np.mean(np.asarray(y_hi) - np.asarray(y_lo)))


def diebold_mariano(e1: np.ndarray, e2: np.ndarray) -> tuple[float, float] | None:
    """Diebold-Mariano test of equal accuracy of two one-step forecasts, squared-error loss.

    `e1`, `e2` are the two forecasts' errors on the same days. With d = e1² - e2², the
    statistic is mean(d) / sqrt(var(d) / n) (variance with divisor n: at horizon 1 no
    autocovariance terms enter), times the Harvey-Leybourne-Newbold correction sqrt((n - 1) / n)
    for h = 1; the two-sided p-value is from Student's t with n - 1 degrees of freedom. This is
    R's `forecast::dm.test(e1, e2, alternative = "two.sided", h = 1, power = 2)`.

    A negative statistic means the first forecast has the smaller loss. Returns
    `(statistic, p_value)`, or `None` when the loss differential has zero variance (e.g. a
    forecast against itself), where R stops with "Variance of DM statistic is zero". Because
    h = 1 uses no autocovariances, the order of the days does not matter, so errors pooled from
    several series and folds can be tested together.
    """
    d = np.asarray(e1, dtype="float64") ** 2 - np.asarray(e2, dtype="float64") ** 2
    n = len(d)
    if n < 2:
        return None
    variance = float(np.mean((d - d.mean()) ** 2)) / n
    if not variance > 0:
        return None
    statistic = float(d.mean()) / np.sqrt(variance) * np.sqrt((n - 1) / n)
    p_value = 2 * stats.t.cdf(-abs(statistic), df=n - 1)
    return float(statistic), float(p_value)
