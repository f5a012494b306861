"""Forecast scores: point errors, direction (accuracy, Pesaran-Timmermann), prediction intervals and the
Diebold-Mariano test.

Pure functions of NumPy arrays in price units. A score that is undefined for its inputs (a
zero scale, no scored day, a loss differential with zero variance) is returned as `None`, never
as inf or NaN: the reports write it as null and say why. Prices are positive (the ingest stage
guarantees it), so MAPE is always defined.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_pinball_loss,
    root_mean_squared_error,
)
from statsmodels.stats.diagnostic import pesaran_timmermann
from statsmodels.tsa.stattools import diebold_mariano_test


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
    pooled from several folds and series are each scaled by their own train part. The scale is
    the one-step naive MAE at every horizon, so h-step scores stay comparable across horizons
    (a random walk's naive MASE grows about like sqrt(h)). `None` when any scale is zero: a
    constant train part has no naive error to scale by.
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


def directional_accuracy(y: np.ndarray, y_hat: np.ndarray, y_cutoff: np.ndarray) -> tuple[float | None, int, int]:
    """Share of forecasts that call the direction of the move from the price at their cutoff.

    `y_cutoff` is the last price the forecast knew (at horizon 1, the previous day's). Returns
    `(accuracy, n_scored, n_flat)`. Days on which the actual price equals the cutoff's have no
    direction to call: they are left out and counted in `n_flat`. A forecast of no change
    (`y_hat == y_cutoff`, e.g. the naive random walk every day) calls no direction and counts as
    wrong, so the naive baseline scores 0. `accuracy` is `None` when no day is scored.
    """
    actual = np.sign(np.asarray(y) - np.asarray(y_cutoff))
    predicted = np.sign(np.asarray(y_hat) - np.asarray(y_cutoff))
    moved = actual != 0
    n_scored = int(moved.sum())
    n_flat = int(len(actual) - n_scored)
    if n_scored == 0:
        return None, 0, n_flat
    return float(np.mean(predicted[moved] == actual[moved])), n_scored, n_flat


def direction_pvalue(y: np.ndarray, y_hat: np.ndarray, y_cutoff: np.ndarray) -> float | None:
    """Pesaran-Timmermann p-value (statsmodels, one-sided: direction called better than by
    chance) of the forecast moves y_hat - y_cutoff against the actual moves y - y_cutoff, on the
    days the price moved (as `directional_accuracy`). None where either side never or
    always rises (the test's variance is zero: e.g. the naive forecast, which never moves)."""
    actual, predicted = np.asarray(y) - np.asarray(y_cutoff), np.asarray(y_hat) - np.asarray(y_cutoff)
    moved = actual != 0
    actual, predicted = actual[moved], predicted[moved]
    if len(actual) < 2 or len(set(actual > 0)) < 2 or len(set(predicted > 0)) < 2:
        return None
    return float(pesaran_timmermann(actual, predicted, alternative="larger").pvalue)


def interval_coverage(y: np.ndarray, y_lo: np.ndarray, y_hi: np.ndarray) -> float:
    """Share of actual values inside the closed interval [y_lo, y_hi], a fraction."""
    y = np.asarray(y)
    return float(np.mean((np.asarray(y_lo) <= y) & (y <= np.asarray(y_hi))))


def interval_width(y_lo: np.ndarray, y_hi: np.ndarray) -> float:
    """Mean width of the intervals, in price units."""
    return float(np.mean(np.asarray(y_hi) - np.asarray(y_lo)))


def interval_score(y: np.ndarray, y_lo: np.ndarray, y_hi: np.ndarray, alpha: float) -> float:
    """Mean interval score of central (1 - alpha) intervals (Gneiting and Raftery, 2007), price units:

        (u - l) + (2 / alpha) (l - y) [y < l] + (2 / alpha) (y - u) [y > u]

    The width plus a penalty for each miss, in proportion to how far the actual value falls
    outside; lower is better. The penalty's 2 / alpha makes the true (alpha / 2, 1 - alpha / 2)
    quantiles the bounds that minimise it, so neither a narrow interval that misses often nor a
    wide one that never misses wins.
    """
    y, y_lo, y_hi = (np.asarray(a, dtype="float64") for a in (y, y_lo, y_hi))
    below, above = np.maximum(y_lo - y, 0), np.maximum(y - y_hi, 0)
    return float(np.mean((y_hi - y_lo) + (2 / alpha) * (below + above)))


def interval_pinball(y: np.ndarray, y_lo: np.ndarray, y_hi: np.ndarray, alpha: float) -> float:
    """Mean of the pinball losses of the bounds of central (1 - alpha) intervals read as quantiles,
    price units: the lower bound at tau = alpha / 2, the upper at tau = 1 - alpha / 2.

    The pinball loss at tau of a quantile q is tau (y - q) when y > q, else (1 - tau) (q - y)
    (scikit-learn's `mean_pinball_loss`). The mean of the two is alpha / 4 times `interval_score`.
    """
    lower = mean_pinball_loss(y, y_lo, alpha=alpha / 2)
    upper = mean_pinball_loss(y, y_hi, alpha=1 - alpha / 2)
    return float((lower + upper) / 2)


def diebold_mariano(
    y: np.ndarray, y_hat_a: np.ndarray, y_hat_b: np.ndarray, horizon: int = 1
) -> tuple[float, float] | None:
    """Diebold-Mariano test of equal accuracy of two `horizon`-step forecasts, squared-error loss.

    statsmodels' `diebold_mariano_test(y, y_hat_a, y_hat_b, lags=horizon - 1, harvey_adj=True,
    horizon=horizon)`: with d = (y - y_hat_a)² - (y - y_hat_b)², the statistic is mean(d) over the
    square root of its Newey-West variance (Bartlett weights, horizon - 1 autocovariances: h-step
    errors overlap by h - 1 days), times the Harvey-Leybourne-Newbold correction
    sqrt((n + 1 - 2h + h(h - 1)/n) / n); the two-sided p-value is from Student's t with n - 1
    degrees of freedom. At horizon 1 (no autocovariances) this is R's
    `forecast::dm.test(e_a, e_b, alternative = "two.sided", h = 1, power = 2)`; above 1 R weighs
    the autocovariances equally instead, so the two differ.

    A negative statistic means forecast a has the smaller loss. The days must be in time order
    within each series. Returns `(statistic, p_value)`, or `None` when there are no more days
    than the horizon (the HLN factor is then zero or undefined) or the loss differential is
    constant (e.g. a forecast against itself: statsmodels gives NaN or an infinite statistic).
    """
    y, y_hat_a, y_hat_b = (np.asarray(a, dtype="float64") for a in (y, y_hat_a, y_hat_b))
    d = (y - y_hat_a) ** 2 - (y - y_hat_b) ** 2
    if len(d) <= horizon or np.ptp(d) == 0:
        return None
    result = diebold_mariano_test(y, y_hat_a, y_hat_b, lags=horizon - 1, harvey_adj=True, horizon=horizon)
    return float(result.statistic), float(result.pvalue)
