"""Prediction intervals for any model: conformal and adaptive conformal (ACI) half-widths.

Pure functions of arrays. A model's nonconformity score is its absolute error in log price,
|log y - log y_hat|, so that an interval is a relative band around the forecast,
y_hat * exp(-q) .. y_hat * exp(q), comparable across a series whose price doubled; it is always
ordered and finite.

- `conformal`: q is the (n + 1)-corrected quantile of n scores the model earned on data it did
  not train on: the ceil((n + 1) * level)-th smallest, which covers a new exchangeable score
  with probability at least `level` (split conformal prediction). Where that rank exceeds n the
  guarantee would need an infinite interval; the largest score is used instead (it takes
  n < 1 / (1 - level) - 1 scores: 19 at 95%, against 231 or more here).
- `aci` (Gibbs and Candes 2021, adaptive conformal inference): the level is updated after each
  forecast whose target has been observed, alpha_t+1 = alpha_t + gamma * (alpha - miss_t), so
  that a run of misses (a volatile spell) widens the next intervals and a run of hits narrows
  them; and the window of calibration scores rolls forward with the observed ones, the newest
  replacing the oldest, so that a spell more volatile than anything in the calibration can be
  covered at all. At horizon h the forecast made at cutoff t is resolved at t + h, so the
  update at cutoff t uses the scores of cutoffs up to t - h only. alpha_t is clipped to [0, 1]
  and the scores roll as in MAPIE's `TimeSeriesRegressor` (`adapt_conformal_inference` and
  `update`; tested against it at h=1), so the quantile stays finite.

Written here rather than taken from MAPIE, whose conformal regressors wrap a scikit-learn
estimator fitted on tabular data: here every model family (naive, ARIMA, Keras) and every
horizon share one calibration, from the walk-forward loop's own out-of-sample errors.
"""

from __future__ import annotations

import math

import numpy as np


def level_name(level: float) -> str:
    """A level as its column names write it: 80 -> '80', 97.5 -> '97.5'."""
    return format(float(level), "g")


def bound_columns(levels) -> list[str]:
    """`y_lo_<L>, y_hi_<L>` for each level, in order: the interval columns of a predictions table."""
    return [f"y_{side}_{level_name(level)}" for level in levels for side in ("lo", "hi")]


def scores(y: np.ndarray, y_hat: np.ndarray) -> np.ndarray:
    """Nonconformity scores: absolute errors in log price."""
    return np.abs(np.log(np.asarray(y, dtype="float64")) - np.log(np.asarray(y_hat, dtype="float64")))


def conformal_quantile(calibration: np.ndarray, coverage: float) -> float:
    """The half-width covering a new score with probability >= `coverage` (a fraction): the
    ceil((n + 1) * coverage)-th smallest calibration score (capped at the largest); 0 when the
    coverage asked for is 0 or less."""
    ordered = np.sort(np.asarray(calibration, dtype="float64"))
    if len(ordered) == 0:
        raise ValueError("conformal_quantile needs at least one calibration score")
    rank = math.ceil((len(ordered) + 1) * coverage)
    if rank <= 0:
        return 0.0
    return float(ordered[min(rank, len(ordered)) - 1])


def aci_quantiles(calibration: np.ndarray, errors: np.ndarray, horizon: int, level: float, gamma: float) -> np.ndarray:
    """ACI half-widths for a fold's forecasts at one horizon, in cutoff order.

    `errors` are the forecasts' own scores (row i: cutoff i of the fold, one trading day after
    row i - 1). Row i's half-width uses the scores and misses of rows i - horizon and before,
    whose targets are known at its cutoff, and never a later one: the level is updated with each
    resolved miss, and each resolved score replaces the oldest of the `len(calibration)` scores
    in the window. `level` is a fraction.
    """
    window = np.asarray(calibration, dtype="float64")
    n = len(window)
    history = np.concatenate([window, np.asarray(errors, dtype="float64")])
    alpha_target = 1.0 - level
    alpha = alpha_target
    out = np.empty(len(errors))
    missed = np.zeros(len(errors), dtype=bool)
    for i in range(len(errors)):
        resolved = i - horizon
        if resolved >= 0:
            alpha = min(max(alpha + gamma * (alpha_target - float(missed[resolved])), 0.0), 1.0)
        # The n most recent scores known at row i's cutoff: the calibration's tail, then rows <= i - horizon.
        known = n + max(resolved + 1, 0)
        out[i] = conformal_quantile(history[known - n : known], 1.0 - alpha)
        missed[i] = errors[i] > out[i]
    return out


def half_widths(
    calibration: np.ndarray, errors: np.ndarray, horizon: int, levels, method: str, gamma: float
) -> np.ndarray:
    """`(len(errors), len(levels))` half-widths in log price of one fold's forecasts at one
    horizon, by `method` (`conformal` or `aci`), calibrated on `calibration` (scores from before
    the fold's first cutoff), for increasing `levels`.

    ACI adapts each level on its own, so after a run of misses the 80% interval can be wider
    than the 95% one; the half-widths are made non-decreasing across levels (each the largest
    of its own and the lower levels'), which only widens a higher level's interval and keeps
    y_lo_95 <= y_lo_80 <= y_hat <= y_hi_80 <= y_hi_95. Conformal half-widths already nest.
    """
    columns = []
    for level in levels:
        coverage = float(level) / 100
        if method == "aci":
            columns.append(aci_quantiles(calibration, errors, horizon, coverage, gamma))
        else:
            columns.append(np.full(len(errors), conformal_quantile(calibration, coverage)))
    return np.maximum.accumulate(np.stack(columns, axis=1), axis=1)
