"""ARIMA on log prices (stage `arima`), fit once per fold and filtered forward over the test days.

    python -m pipeline.train arima    # params: arima.*  ->  data/predictions/arima.parquet

`fit` estimates statsmodels' ARIMA on the train part by exact maximum likelihood; with
`order: auto` it first picks (p, q) by AIC on that same train part. `predict` runs the Kalman
filter with the fitted parameters over the longer history (`results.apply`, no re-estimation)
and, from the state filtered up to each cutoff, forecasts every horizon: the state-space h-step
forecast, what `get_forecast(h)` of the results filtered to that cutoff gives (tested). At h=1
that is what re-fitting at every step would give, within a few hundredths of a percent, some
250x faster (`python -m benchmarks arima`).

The trend is the mean of the d-times differenced series: a mean level for d=0, a drift (the
mean daily log return) for d=1, none for d=2 (a constant second difference of log prices would
be a trend in the growth rate, which no stock has). It is estimated on the train part and
removed before the ARMA fit, as the drift baseline does, rather than estimated jointly
(statsmodels' `trend="t"`): on S&P 500 the joint fit made the order grid about 3x slower for
the same forecasts.

With covariates (`arima.exog: true`, `features.covariates`) it is a regression with ARIMA errors:
log price = the trend + beta' x_{t-1} + an ARIMA(p, d, q) error, where x_{t-1} are the covariate
channels (`pipeline.covariates`) of the day before, each standardised on the train part (a
channel constant there, e.g. a series' own column, is left out). Lagging them one day makes the
regressor of day t known at cutoff t - 1, so the one-step forecast is honest; for h > 1 the
regressors of the days after the cutoff are not known, and the forecast holds the cutoff's
values (x_{c+h-1} := x_c for every h): the state is filtered forward with the same transition,
the regression term stays the one-step forecast's. statsmodels estimates the regression and the
ARMA coefficients together (feasible GLS around the innovations MLE).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats
from statsmodels.tools.sm_exceptions import ConvergenceWarning, SingularMatrixWarning, SpecificationWarning
from statsmodels.tsa.arima.model import ARIMA

from pipeline import paths
from pipeline.cli import UserError
from pipeline.covariates import channels
from pipeline.models.base import Model, read_state, write_state

# The model sees log prices in percent. Daily log returns have a variance near 1e-4, too small
# for the optimiser's tolerances: unscaled, half the fits of an order grid stop at their starting
# values and report no convergence; scaled, they converge in fewer steps. (Scaling shifts every
# order's AIC by the same amount, so it picks the same order.)
SCALE = 100.0


# The optimiser of `innovations_mle` (scipy's L-BFGS-B), with tolerances tight enough that the
# order search's AICs match statsmodels' default state-space fit to 3 decimals.
SEARCH = {"method": "L-BFGS-B", "options": {"maxiter": 200, "ftol": 1e-12, "gtol": 1e-7}}
# The fit that forecasts: central-difference gradients and tolerances near machine precision.
# Near-cancelling AR and MA roots make the likelihood flat, and SEARCH's end point there moves
# forecasts by up to 1e-7 on another CPU (emulated older instruction sets); FINAL's by 5e-10.
FINAL = {"method": "L-BFGS-B", "jac": "3-point", "options": {"maxiter": 200, "ftol": 1e-15, "gtol": 1e-10}}


def _fit(y: np.ndarray, order: tuple[int, int, int], optimiser: dict, exog: np.ndarray | None = None):
    """Exact maximum-likelihood ARIMA results on `SCALE * y`, with the optimiser's chatter silenced.

    The likelihood is maximised with the innovations algorithm on the differenced series
    (`method="innovations_mle"`) and then evaluated by the Kalman filter, so the AIC is the
    state-space one, in about a third of the time of statsmodels' default state-space fit. The
    results keep no filter output (`low_memory`) and no parameter covariance: `predict`
    re-filters from the parameters, and nothing reads standard errors.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", SingularMatrixWarning)  # in the starting values of a degenerate series
        warnings.simplefilter("ignore", SpecificationWarning)  # "endog and exog differenced" before GLS: as meant
        warnings.filterwarnings("ignore", message="Non-(stationary|invertible) starting", category=UserWarning)
        warnings.filterwarnings("ignore", message="Provided `endog` series has been differenced", category=UserWarning)
        warnings.filterwarnings("ignore", message="Feasible GLS failed to converge", category=UserWarning)
        warnings.filterwarnings(
            "ignore", category=RuntimeWarning
        )  # a degenerate fit fails or does not converge: see the callers
        model = ARIMA(SCALE * y, exog=exog, order=order, trend="n")
        minimize_kwargs = {**optimiser, "options": dict(optimiser["options"])}  # statsmodels writes into it
        return model.fit(
            method="innovations_mle",
            method_kwargs={"minimize_kwargs": minimize_kwargs},
            cov_type="none",
            low_memory=True,
        )


def _converged(results) -> bool:
    """Whether the optimiser reported success (with regressors: the feasible GLS iterations
    converged and the last ARMA fit succeeded) and the likelihood is finite."""
    details = results.fit_details
    if "arma_results" in details:  # statsmodels' GLS around the ARMA estimator
        converged = bool(details["converged"]) and _converged_arma(details["arma_results"][-1])
    else:
        converged = _converged_arma(details)
    return converged and bool(np.isfinite(results.llf))


def _converged_arma(details) -> bool:
    return bool(details["minimize_results"].success)


def select_order(y: np.ndarray, max_p: int, max_q: int, d: int, exog: np.ndarray | None = None) -> tuple[int, int, int]:
    """The (p, d, q) with the lowest AIC on `y` (log prices, regressors `exog`) over p <= max_p, q <= max_q.

    Fits that fail or do not converge are skipped. Ties go to the smaller p + q, then smaller p.
    """
    best = None
    for p in range(max_p + 1):
        for q in range(max_q + 1):
            try:
                results = _fit(y, (p, d, q), SEARCH, exog)
            except (np.linalg.LinAlgError, ValueError, ZeroDivisionError):
                continue
            if not _converged(results):
                continue
            key = (results.aic, p + q, p)
            if best is None or key < best[0]:
                best = (key, (p, d, q))
    if best is None:
        raise UserError(
            f"arima.order: no ARIMA(p, {d}, q) with p <= {max_p}, q <= {max_q} converged "
            f"on a train part of {len(y)} prices"
        )
    return best[1]


def h_step_forecasts(filtered, first: int, horizons) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of the h-step forecasts from every cutoff `first - 1 .. nobs - 2`.

    `filtered` is a statsmodels `FilterResults` of a time-invariant state-space model. From the
    one-step predicted state of each cutoff (a_{c+1|c}, P_{c+1|c}) the state is carried forward
    with the transition, a <- T a + c, P <- T P T' + R Q R', and read through the design at each
    horizon: y_{c+h|c} = Z a_{c+h|c} + d, variance Z P_{c+h|c} Z' + H, where d is the
    observation intercept of day c + 1 at every horizon (a regression on covariates lagged one
    day puts beta' x_c there: the cutoff's values, held). Written here because
    statsmodels forecasts h steps from one origin at a time (`get_forecast`): that would be one
    filter run per cutoff, 250 a fold, where this is one run and a few matrix products.
    Returns two `(cutoffs, len(horizons))` arrays.
    """
    T, Z = filtered.transition[:, :, 0], filtered.design[:, :, 0]
    R, Q = filtered.selection[:, :, 0], filtered.state_cov[:, :, 0]
    c, H = filtered.state_intercept[:, 0], filtered.obs_cov[0, 0, 0]
    RQR = R @ Q @ R.T
    nobs = filtered.predicted_state.shape[1] - 1
    intercept = filtered.obs_intercept[0]
    d = intercept[first:nobs] if len(intercept) > 1 else intercept[0]  # time-varying with regressors
    a = filtered.predicted_state[:, first:nobs]  # column i: a_{c+1|c} of cutoff c = first - 1 + i
    P = filtered.predicted_state_cov[:, :, first:nobs]
    means, variances = [], []
    wanted = set(horizons)
    for step in range(1, max(horizons) + 1):
        if step in wanted:
            means.append(Z[0] @ a + d)
            variances.append(np.einsum("i,ijn,j->n", Z[0], P, Z[0]) + H)
        a = T @ a + c[:, None]
        P = np.einsum("ij,jkn,lk->iln", T, P, T) + RQR[:, :, None]
    return np.stack(means, axis=1), np.stack(variances, axis=1)


def _same(a, b) -> bool:
    """Whether two of `_forecasts`' arguments are equal (arrays by value, NaN equal to NaN)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b, equal_nan=True)
    return a == b


class Arima(Model):
    """statsmodels ARIMA of log prices; `order` is `[p, d, q]` or `"auto"` (AIC grid per fold).
    Its own intervals are the state-space forecasts' Gaussian ones, at each of `levels` (percent).
    With `covariates`, a regression on them lagged one day, with ARIMA errors; `X` is then their
    channels by day (`data/covariates.parquet`)."""

    own_intervals = True
    inputs_from = "covariates"

    def __init__(
        self,
        order="auto",
        max_p: int = 2,
        max_q: int = 2,
        d: int = 1,
        levels: tuple[float, ...] = (80, 95),
        horizons: tuple[int, ...] = (1,),
        covariates: tuple[str, ...] = (),
    ):
        self.order = order
        self.max_p = max_p
        self.max_q = max_q
        self.d = d
        self.levels = levels
        self.horizons = horizons
        self.covariates = covariates

    def input_columns(self) -> list[str]:
        return channels(self.covariates)

    def inputs(self, log_price: np.ndarray, channel_values: np.ndarray | None) -> np.ndarray | None:
        return None if not self.covariates else np.asarray(channel_values, dtype="float64")

    def _lagged(self, X: np.ndarray | None, n_days: int) -> tuple[int, np.ndarray | None]:
        """(the first day with every regressor, the regressors from that day on): day t's are the
        covariate channels of day t - 1. (0, None) without covariates."""
        if not self.covariates:
            return 0, None
        if X is None:
            raise ValueError(f"covariates {list(self.covariates)} need X (`inputs`)")
        lagged = np.vstack([np.full((1, X.shape[1]), np.nan), np.asarray(X, dtype="float64")[: n_days - 1]])
        finite = np.isfinite(lagged).all(axis=1)
        start = int(np.argmax(finite)) if finite.any() else n_days
        if start >= n_days or not finite[start:].all():
            raise UserError(
                f"features.covariates: a covariate value is missing after its first day ({paths.COVARIATES})"
            )
        return start, lagged[start:]

    def _standardised(self, lagged: np.ndarray | None) -> np.ndarray | None:
        """The regressors standardised as on the train part, without the channels constant there."""
        used = np.asarray(getattr(self, "exog_used_", []), dtype=bool)
        if lagged is None or not used.any():
            return None
        return ((lagged - np.asarray(self.exog_mean_)) / np.asarray(self.exog_scale_))[:, used]

    def fit(self, y: np.ndarray, X: np.ndarray | None = None) -> Arima:
        y = np.asarray(y, dtype="float64")
        d = self.d if self.order == "auto" else int(self.order[1])
        self.level_ = float(y.mean()) if d == 0 else 0.0
        self.drift_ = float((y[-1] - y[0]) / (len(y) - 1)) if d == 1 else 0.0
        start, lagged = self._lagged(X, len(y))
        if lagged is not None:
            scale = lagged.std(axis=0)
            self.exog_used_ = [bool(v) for v in scale > 0]
            self.exog_mean_ = [float(v) for v in lagged.mean(axis=0)]
            self.exog_scale_ = [float(v) or 1.0 for v in scale]
        exog = self._standardised(lagged)
        detrended = (y - self._trend(np.arange(len(y))))[start:]
        if self.order == "auto":
            self.order_ = select_order(detrended, self.max_p, self.max_q, d, exog)
        else:
            self.order_ = tuple(int(v) for v in self.order)
        try:
            results = _fit(detrended, self.order_, FINAL, exog)
        except (np.linalg.LinAlgError, ValueError, ZeroDivisionError) as error:
            raise UserError(
                f"arima.order: ARIMA{self.order_} could not be fitted on a train part of {len(y)} prices: {error}"
            ) from None
        # The estimates are all a forecast needs: `_forecasts` filters any history with them.
        self.params_ = np.asarray(results.params, dtype="float64")
        self._last_step = None
        return self

    def _trend(self, positions: np.ndarray) -> np.ndarray:
        """The deterministic part of the log prices at `positions` (day 0 is the train part's first)."""
        return self.level_ + self.drift_ * np.asarray(positions, dtype="float64")

    def _forecasts(self, y: np.ndarray, n: int, X: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Every horizon's forecasts from the last `n` cutoffs of `y`, `(n, H)`, and their
        Gaussian interval bounds at each level, `(n, H, L, 2)`.

        The walk-forward loop asks for the forecasts and then the intervals of the same days:
        the last call's answer is kept so the Kalman filter runs once for both.
        """
        y = np.asarray(y, dtype="float64")
        key = (y, n, None if X is None else np.asarray(X, dtype="float64"))
        if self._last_step is not None and all(map(_same, self._last_step[0], key)):
            return self._last_step[1]
        start, lagged = self._lagged(X, len(y))
        exog = self._standardised(lagged)
        if len(y) - n - 1 < start:
            raise ValueError(f"the first of {n} cutoffs comes before the first day with every covariate ({start})")
        # What `results.apply(refit=False)` does, from the estimates alone: the same bytes.
        detrended = (y - self._trend(np.arange(len(y))))[start:]
        filtered = ARIMA(SCALE * detrended, exog=exog, order=self.order_, trend="n").filter(self.params_)
        mean, variance = h_step_forecasts(filtered.filter_results, len(y) - n - start, self.horizons)
        targets = np.arange(len(y) - n - 1, len(y) - 1)[:, None] + np.asarray(self.horizons)
        trend = self._trend(targets)
        z = stats.norm.ppf(0.5 + np.asarray(self.levels, dtype="float64") / 200)
        half = z * np.sqrt(variance)[..., None]  # (n, H, L)
        bounds = np.stack([mean[..., None] - half, mean[..., None] + half], axis=-1) / SCALE + trend[..., None, None]
        answer = (mean / SCALE + trend, bounds)
        self._last_step = (tuple(v.copy() if isinstance(v, np.ndarray) else v for v in key), answer)
        return answer

    def __getstate__(self) -> dict:
        # Workers send fitted models back to the stage: without the cached forecasts.
        return {**self.__dict__, "_last_step": None}

    def predict(self, y: np.ndarray, n: int, X: np.ndarray | None = None) -> np.ndarray:
        return self._forecasts(y, n, X)[0]

    def predict_interval(self, y: np.ndarray, n: int, X: np.ndarray | None = None) -> np.ndarray:
        return self._forecasts(y, n, X)[1]

    def learned(self) -> dict:
        return {"order_": list(self.order_), "level_": self.level_, "drift_": self.drift_}

    def _exog_state(self) -> dict:
        return {key: getattr(self, key) for key in ("exog_mean_", "exog_scale_", "exog_used_") if hasattr(self, key)}

    def save(self, directory) -> None:
        write_state(directory, {**self.learned(), **self._exog_state(), "params_": self.params_.tolist()})

    @classmethod
    def load(cls, directory, params: dict) -> Arima:
        state = read_state(directory)
        model = cls(**{**params, **{key: tuple(params.get(key, ())) for key in ("levels", "horizons", "covariates")}})
        for key in ("exog_mean_", "exog_scale_", "exog_used_"):
            if key in state:
                setattr(model, key, state[key])
        model.order_ = tuple(state["order_"])
        model.level_, model.drift_ = float(state["level_"]), float(state["drift_"])
        model.params_ = np.asarray(state["params_"], dtype="float64")
        model._last_step = None
        return model

    def parameter_counts(self) -> dict[str, int]:
        """Estimated parameters by kind: AR and MA coefficients, the trend, the noise variance."""
        p, d, q = self.order_
        exog = int(sum(getattr(self, "exog_used_", [])))
        counts = {"ar": p, "ma": q, "exog": exog, "level": int(d == 0), "drift": int(d == 1), "sigma2": 1}
        return {name: count for name, count in counts.items() if count}
