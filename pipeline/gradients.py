"""Gradients by lag: how much a fitted model's forecast moves with the value k steps back.

    windows = forecast_windows(y, n, model.n_lags, model.target)   # the windows predict(y, n) reads
    profile = normalised_profile(model.lag_gradients(windows))     # (n_lags,), lag_1 first, max 1
    vanishing_lag(profile)                                         # where it falls below 1% for good

Each model computes its own derivatives (`Model.lag_gradients`: the recurrent nets by their
backward pass, a linear regressor by its coefficients), in its standardised scale, so models
fitted on different series or folds compare. Recurrent nets read the window oldest value first,
so lag k = 1 (the most recent value) is their last step: a vanilla RNN's gradient shrinks roughly
geometrically with k (the vanishing gradient), which gates let an LSTM or GRU avoid.

The profile is the mean absolute derivative over the windows, divided by its largest value, so
every model's curve peaks at 1 and "falls below 1% of its largest" reads 0.01 on any of them.
The model stages compute it over each series' last fold (`pipeline.train`); evaluate pools the
series (`gradient_report`), draws and tabulates it. Pure functions of arrays: no model family
is imported here.
"""

from __future__ import annotations

import numpy as np

from pipeline.features import lookback, make_windows, transform

VANISHED = 0.01  # "falls below 1% of its largest"


def forecast_windows(y: np.ndarray, n: int, n_lags: int, target: str) -> np.ndarray:
    """`(n, n_lags)`: the lag windows (lag_1 first) of the last `n` cutoffs of log prices `y`,
    those a window model's `predict(y, n)` forecasts from (a fold's test part, given its history)."""
    y = np.asarray(y, dtype="float64")
    start = len(y) - n - lookback(n_lags, target)
    if start < 0:
        raise ValueError(f"{n} windows of {n_lags} lags need more than {len(y)} prices")
    return make_windows(transform(y[start:], target), n_lags)[0]


def normalised_profile(gradients: np.ndarray) -> np.ndarray:
    """`(n_lags,)`: the mean absolute derivative by lag over the rows of `gradients`, divided by
    its largest value (so the largest is 1), lag_1 first."""
    profile = np.abs(np.asarray(gradients, dtype="float64")).mean(axis=0)
    if not profile.max() > 0:
        raise ValueError("the forecast does not depend on its lags: no profile to normalise")
    return profile / profile.max()


def vanishing_lag(profile: np.ndarray, fraction: float = VANISHED) -> int | None:
    """The lag k (1-based) from which the profile stays below `fraction` of its largest value;
    `None` where the last lag is still above it (the gradient has not vanished inside the window).

    "Stays": a profile that dips below and rises again (a ridge coefficient near zero at some
    lag) has not vanished at the dip.
    """
    profile = np.asarray(profile, dtype="float64")
    below = profile < fraction * profile.max()
    if not below[-1]:
        return None
    return int(np.flatnonzero(~below)[-1]) + 2  # the lag after the last one above (lags count from 1)


def gradient_report(descriptions: dict[str, dict], lags: tuple[int, ...] = (1, 5, 10, 20, 60)) -> dict:
    """Per model whose table's metadata has profiles (`gradient_by_lag`, by series): the mean of
    its series' profiles, normalised again, the lag where it vanishes and its values at `lags`
    (those inside the window). Models without profiles are left out."""
    out = {}
    for model, description in sorted(descriptions.items()):
        by_series = description.get("gradient_by_lag")
        if not by_series:
            continue
        profile = normalised_profile(np.array(list(by_series.values())))
        out[model] = {
            "profile": [float(v) for v in profile],
            "vanishing_lag": vanishing_lag(profile),
            "at_lags": {str(k): float(profile[k - 1]) for k in lags if k <= len(profile)},
        }
    return out
