"""Typed params: `params.yaml` loaded once into frozen pydantic models, one per section.

Unknown keys, wrong types and impossible values are rejected with a `UserError` naming the key
(`params.yaml: split.n_windows: must be >= 2, got 0`). No stage opens the YAML itself. Limits
that depend on the data (e.g. `split.test_size` against the series length) are checked by the
stage that knows the data, naming the same key.
"""

from __future__ import annotations

import datetime
import itertools
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline import paths
from pipeline.cli import UserError

SAMPLE_DATASETS = ("sp500", "nasdaq", "sp500_stocks", "bokeh_stocks")  # loaders: pipeline/samples.py
Estimator = Literal["ridge", "random_forest", "hist_gradient_boosting", "mlp"]
Cell = Literal["lstm", "gru", "simple_rnn"]
ESTIMATORS, CELLS = typing.get_args(Estimator), typing.get_args(Cell)  # the field types own the names


class _Invalid(ValueError):
    """A section's rule failed; `key` is the field it names (the loader adds file and section)."""

    def __init__(self, key: str, problem: str):
        super().__init__(f"{key}: {problem}")
        self.key, self.problem = key, problem


def _require(ok: bool, key: str, problem: str) -> None:
    if not ok:
        raise _Invalid(key, problem)


class _Section(BaseModel):
    """One params.yaml section: frozen, unknown keys refused; simple limits in `Field`, the rest in `_check`."""

    # strict: a YAML value is taken with the type it was written in ("5" is not an int, true is not
    # 1); the one conversion is int -> float, so `learning_rate: 1` works.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    @model_validator(mode="after")
    def _checked(self):
        self._check()
        return self

    def _check(self) -> None:
        """Rules beyond the types; each failure is `_require(..., key, problem)`."""


class DataParams(_Section):
    source: Literal["sample", "csv", "yfinance", "synthetic"] = "sample"
    datasets: list[str] = ["sp500"]  # sample: data sets installed packages ship (SAMPLE_DATASETS)
    path: str | None = None  # csv: the user's file
    tickers: list[str] = []  # yfinance: symbols to download
    start: str | None = None  # inclusive ISO date filter, any source
    end: str | None = None  # inclusive ISO date filter, any source
    n_series: int = Field(10, ge=1)  # synthetic: number of geometric random walks
    n_days: int = Field(2500, ge=2)  # synthetic: trading days per series
    seed: int = 0  # synthetic: the walks are a pure function of this seed

    def _check(self) -> None:
        _require(bool(self.datasets), "datasets", "must name at least one data set")
        for name in self.datasets:
            expected = ", ".join(SAMPLE_DATASETS)
            _require(name in SAMPLE_DATASETS, "datasets", f"unknown data set {name!r} (expected one of {expected})")
        _require(self.source != "csv" or bool(self.path), "path", "is required when data.source is csv")
        _require(self.source != "yfinance" or bool(self.tickers), "tickers", "is required when data.source is yfinance")
        dates = {key: getattr(self, key) for key in ("start", "end") if getattr(self, key) is not None}
        for key, value in dates.items():
            try:
                dates[key] = datetime.date.fromisoformat(value)
            except ValueError:
                raise _Invalid(key, f"not an ISO date (YYYY-MM-DD): {value!r}") from None
        if len(dates) == 2:
            _require(dates["start"] <= dates["end"], "end", f"{self.end} is before data.start {self.start}")


class FeaturesParams(_Section):
    n_lags: int = Field(60, ge=1)  # window length L: values t-L+1..t predict t+1
    target: Literal["log_return", "price"] = "log_return"  # what the window models learn
    # model inputs beside the price, each one more channel over the same lags (pipeline/covariates.py):
    # volume, range, gap, day_of_week, month, or another series id of the prices table (its log return)
    covariates: list[str] = []

    def _check(self) -> None:
        repeated = sorted({name for name in self.covariates if self.covariates.count(name) > 1})
        _require(not repeated, "covariates", f"lists {repeated[0] if repeated else ''} twice")
        _require(all(name.strip() for name in self.covariates), "covariates", "a name is empty")


class ForecastParams(_Section):
    # trading days ahead, from each cutoff; checked against split.test_size in `Params`
    horizons: list[int] = [1, 5, 20]
    levels: list[float] = [80, 95]  # prediction intervals, in percent: columns y_lo_<level>, y_hi_<level>

    def _check(self) -> None:
        h = self.horizons
        _require(bool(h), "horizons", "must list at least one horizon")
        _require(all(v >= 1 for v in h), "horizons", f"every horizon must be >= 1 trading day, got {h}")
        _require(all(a < b for a, b in itertools.pairwise(h)), "horizons", f"must be strictly increasing, got {h}")
        levels = self.levels
        _require(bool(levels), "levels", "must list at least one level")
        _require(
            all(0 < v < 100 for v in levels), "levels", f"every level must be between 0 and 100 (percent), got {levels}"
        )
        _require(
            all(a < b for a, b in itertools.pairwise(levels)), "levels", f"must be strictly increasing, got {levels}"
        )


class IntervalsParams(_Section):
    # conformal: quantiles of each model's errors on the fold before; aci: their level adapted online;
    # model: a model's own intervals where it has them (ARIMA's Gaussian), conformal for the others;
    # none: no intervals
    method: Literal["conformal", "aci", "model", "none"] = "aci"
    gamma: float = Field(0.01, gt=0, lt=1)  # aci: the step size of the level's update


class SplitParams(_Section):
    n_windows: int = Field(5, ge=2)  # walk-forward folds (TimeSeriesSplit n_splits, which needs >= 2)
    test_size: int = Field(250, ge=1)  # test days per fold, about one trading year
    gap: int = Field(0, ge=0)  # days left out between train and test
    max_train_size: int | None = Field(None, ge=2)  # null: expanding window


class ParallelParams(_Section):
    backend: Literal["loky", "dask"] = "loky"  # loky: processes on this machine; dask: a cluster
    n_jobs: int = 2  # worker processes for (series, fold) tasks; -1 for all cores
    # dask: e.g. tcp://scheduler-host:8786 (wins over env DASK_SCHEDULER_ADDRESS); with neither, a
    # local cluster of n_jobs worker processes is started for the stage and closed after it
    scheduler_address: str | None = None

    def _check(self) -> None:
        _require(self.n_jobs >= 1 or self.n_jobs == -1, "n_jobs", f"must be >= 1 or -1, got {self.n_jobs}")
        dask_only = self.backend == "dask" or self.scheduler_address is None
        _require(dask_only, "scheduler_address", "is used only with parallel.backend: dask")


class ArimaParams(_Section):
    order: Literal["auto"] | list[int] = "auto"  # [p, d, q], or auto: AIC grid per fold
    max_p: int = Field(2, ge=0)  # auto: p in 0..max_p
    max_q: int = Field(2, ge=0)  # auto: q in 0..max_q
    d: int = 1  # auto: differencing order (1: the model works on log returns)
    # true: regression with ARIMA errors on features.covariates, each lagged one day (its value at the cutoff)
    exog: bool = False

    def _check(self) -> None:
        if self.order != "auto":
            pdq = len(self.order) == 3 and all(v >= 0 for v in self.order)
            _require(pdq, "order", f"must be auto or [p, d, q] of three non-negative integers, got {self.order}")
            _require(self.order[1] <= 2, "order", f"d must be 0, 1 or 2, got {self.order[1]}")
        _require(0 <= self.d <= 2, "d", f"must be 0, 1 or 2, got {self.d}")


class SklearnParams(_Section):
    estimator: Estimator = "ridge"
    params: dict[str, Any] = {}  # keyword arguments of the estimator
    random_state: int = 0  # passed to estimators that take one
    strategy: Literal["direct", "recursive"] = "direct"  # one estimator per horizon, or the one-step one fed back

    def _check(self) -> None:
        problem = "set random_state through sklearn.random_state, not sklearn.params"
        _require("random_state" not in self.params, "params", problem)


class LstmParams(_Section):
    cells: list[Cell] = ["lstm"]  # each its own stage and table, named after the cell, on the same folds
    units: list[int] = [32]  # one entry per stacked layer
    dropout: float = 0.0
    epochs: int = Field(20, ge=1)  # upper bound; early stopping usually ends sooner
    batch_size: int = Field(128, ge=1)
    learning_rate: float = Field(0.001, gt=0)
    patience: int = Field(3, ge=0)  # epochs without val_loss improvement before stopping
    validation_fraction: float = 0.1  # last part of each train window used for early stopping
    seed: int = 0
    warm_start: bool = False  # start fold k from fold k-1's weights
    strategy: Literal["mimo", "recursive"] = "mimo"  # one output per horizon, or the one-step net fed back

    def _check(self) -> None:
        _require(bool(self.cells), "cells", f"must list at least one of {', '.join(CELLS)}")
        _require(len(set(self.cells)) == len(self.cells), "cells", f"lists a cell twice: {self.cells}")
        _require(len(self.units) >= 1, "units", "must list at least one layer size")
        _require(all(u >= 1 for u in self.units), "units", f"every layer needs >= 1 unit, got {self.units}")
        _require(0 <= self.dropout < 1, "dropout", f"must be in [0, 1), got {self.dropout}")
        fraction = self.validation_fraction
        _require(0 < fraction < 1, "validation_fraction", f"must be between 0 and 1, got {fraction}")


class RnnScratchParams(_Section):
    hidden: int = Field(16, ge=1)  # tanh units of the one recurrent layer
    epochs: int = Field(10, ge=1)  # upper bound; early stopping usually ends sooner
    batch_size: int = Field(128, ge=1)
    learning_rate: float = Field(0.01, gt=0)  # Adagrad's step
    clip: float = Field(5.0, gt=0)  # each gradient clipped elementwise to [-clip, clip]
    patience: int = Field(3, ge=0)  # epochs without val_loss improvement before stopping
    validation_fraction: float = 0.1  # last part of each train window used for early stopping
    seed: int = 0
    strategy: Literal["mimo", "recursive"] = "mimo"  # one output per horizon, or the one-step net fed back

    def _check(self) -> None:
        fraction = self.validation_fraction
        _require(0 < fraction < 1, "validation_fraction", f"must be between 0 and 1, got {fraction}")


# The families `tune.models` can name (each a model stage), and the keys of each family's search
# space beside its own section's: `n_lags` is `features.n_lags`, sklearn's keys are estimator
# keyword arguments (`sklearn.params`, checked by the stage that builds the estimator).
TUNABLE = ("arima", "sklearn", "lstm", "rnn_scratch")
_FAMILY_SECTIONS = {"arima": ArimaParams, "lstm": LstmParams, "rnn_scratch": RnnScratchParams}
Tunable = Literal["arima", "sklearn", "lstm", "rnn_scratch"]
SPACE_KEYS = {
    "arima": ("max_p", "max_q", "d"),  # the AIC grid's bounds, so arima.order must be auto
    "sklearn": None,  # any keyword argument of the estimator, and n_lags
    "lstm": ("units", "dropout", "epochs", "batch_size", "learning_rate", "patience", "strategy", "n_lags"),
    "rnn_scratch": ("hidden", "epochs", "batch_size", "learning_rate", "clip", "patience", "strategy", "n_lags"),
}


class TuneParams(_Section):
    """Nested hyperparameter search (`pipeline.tuning`): per series and fold, an Optuna study on
    that fold's train part alone. A search space maps a key to `{low: a, high: b}` (integers if
    both are, else numbers; `log: true` samples on a log scale, a > 0) or `{choices: [...]}` (any
    values, lists included: `units: {choices: [[16], [32, 16]]}`)."""

    trials: int = Field(0, ge=0)  # per study, the same for every tuned family; 0: tuning off
    models: list[Tunable] = ["sklearn", "lstm"]  # stages to tune (lstm: every cell in lstm.cells)
    inner_windows: int = Field(2, ge=1)  # inner walk-forward folds at the end of each outer train part
    inner_test_size: int = Field(250, ge=1)  # test days per inner fold
    horizon: int = Field(1, ge=1)  # the horizon the objective (inner RMSE / inner naive RMSE) scores
    seed: int = 0  # every study's TPESampler seed
    arima: dict[str, Any] = {"max_p": {"low": 0, "high": 3}, "max_q": {"low": 0, "high": 3}}
    sklearn: dict[str, Any] = {
        "alpha": {"low": 0.1, "high": 100000.0, "log": True},  # ridge's penalty, in place of its LOO grid
        "n_lags": {"choices": [10, 20, 40, 60]},
    }
    lstm: dict[str, Any] = {
        "units": {"choices": [[16], [32], [64], [32, 16]]},  # layers and units
        "dropout": {"low": 0.0, "high": 0.3},
        "learning_rate": {"low": 0.0003, "high": 0.01, "log": True},
        "n_lags": {"choices": [20, 40, 60]},
        "batch_size": {"choices": [64, 128, 256]},
    }
    rnn_scratch: dict[str, Any] = {
        "hidden": {"choices": [8, 16, 32]},
        "learning_rate": {"low": 0.001, "high": 0.1, "log": True},
    }

    def _check(self) -> None:
        _require(len(set(self.models)) == len(self.models), "models", f"lists a model twice: {self.models}")
        for family in TUNABLE:
            for key, space in getattr(self, family).items():
                _check_space(family, key, space)

    def space(self, family: str) -> dict[str, Any]:
        """The search space of `family` (a `TUNABLE` stage)."""
        return getattr(self, family)


def _check_space(family: str, key: str, space: Any) -> None:
    """One search-space entry `tune.<family>.<key>`: its form, and every value it can take is a
    valid value of the key (the range's ends, each choice)."""
    where = f"{family}.{key}"
    allowed = SPACE_KEYS[family]
    if allowed is not None:
        _require(key in allowed, where, f"not a tunable key of {family} (expected one of {', '.join(allowed)})")
    form = "expected {low: a, high: b} (log: true for a log scale) or {choices: [...]}"
    _require(isinstance(space, dict), where, f"{form}, got {space!r}")
    if "choices" in space:
        _require(set(space) == {"choices"}, where, f"{form}, got {space!r}")
        choices = space["choices"]
        _require(
            isinstance(choices, list) and bool(choices), where, f"choices must be a non-empty list, got {choices!r}"
        )
        _require(len({repr(c) for c in choices}) == len(choices), where, f"lists a choice twice: {choices}")
        values = choices
    else:
        _require({"low", "high"} <= set(space) <= {"low", "high", "log"}, where, f"{form}, got {space!r}")
        low, high, log = space["low"], space["high"], space.get("log", False)
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high))
        _require(numbers, where, f"low and high must be numbers, got {low!r} and {high!r}")
        _require(isinstance(log, bool), where, f"log must be true or false, got {log!r}")
        _require(low < high, where, f"low must be below high, got {low} and {high}")
        _require(not log or low > 0, where, f"a log scale needs low > 0, got {low}")
        values = [low, high]
    if family == "sklearn" and key != "n_lags":
        return  # estimator arguments: the stage checks them against the estimator
    section = FeaturesParams if key == "n_lags" else _FAMILY_SECTIONS[family]
    for value in values:
        try:
            section.model_validate({key: value})
        except ValidationError as err:
            problem = err.errors()[0]
            rule = problem.get("ctx", {}).get("error")
            reason = rule.problem if isinstance(rule, _Invalid) else problem["msg"]
            raise _Invalid(where, f"{value!r} is not a valid value: {reason}") from None


class DiagnosticsParams(_Section):
    seasonal_period: int = Field(252, ge=2)  # trading days in the decomposition's season (one year)


class EvaluateParams(_Section):
    zoom_days: int = Field(60, ge=2)  # the close-up plot of the last days, where lagging forecasts show
    seed: int = Field(0, ge=0)  # the SPA and MCS bootstraps (arch's stationary bootstrap)
    strategy: Literal["long_flat", "long_short"] = "long_flat"  # the position the h=1 forecast's direction takes
    cost_bps: float = Field(5.0, ge=0, lt=10_000)  # basis points of each unit of turnover (a position change)
    max_series_figures: int = Field(12, ge=0)  # series drawn one by one; the rest only in the summaries


class MlflowParams(_Section):
    experiment: str = "stockcast"  # the MLflow experiment of every run (the store: MLFLOW_TRACKING_URI)

    def _check(self) -> None:
        _require(bool(self.experiment.strip()), "experiment", "must not be empty")


class Params(BaseModel):
    """The whole file: one field per section, each defaulting to the section's defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data: DataParams = Field(default_factory=DataParams)
    features: FeaturesParams = Field(default_factory=FeaturesParams)
    forecast: ForecastParams = Field(default_factory=ForecastParams)
    intervals: IntervalsParams = Field(default_factory=IntervalsParams)
    split: SplitParams = Field(default_factory=SplitParams)
    parallel: ParallelParams = Field(default_factory=ParallelParams)
    arima: ArimaParams = Field(default_factory=ArimaParams)
    sklearn: SklearnParams = Field(default_factory=SklearnParams)
    lstm: LstmParams = Field(default_factory=LstmParams)
    rnn_scratch: RnnScratchParams = Field(default_factory=RnnScratchParams)
    tune: TuneParams = Field(default_factory=TuneParams)
    diagnostics: DiagnosticsParams = Field(default_factory=DiagnosticsParams)
    evaluate: EvaluateParams = Field(default_factory=EvaluateParams)
    mlflow: MlflowParams = Field(default_factory=MlflowParams)

    @field_validator("*", mode="before")
    @classmethod
    def _null_is_defaults(cls, body: Any) -> Any:
        return {} if body is None else body  # `lstm:` with nothing under it

    @model_validator(mode="after")
    def _across_sections(self):
        # A horizon as long as the test part would leave a fold no forecast to score.
        longest, test_size = self.forecast.horizons[-1], self.split.test_size
        if longest >= test_size:
            raise _Invalid("forecast.horizons", f"{longest} must be shorter than split.test_size ({test_size})")
        # A recursion feeds a one-step model its own forecasts; it would need the covariates'
        # values after the cutoff too, which a forecast does not have.
        covariates = self.features.covariates
        for section in ("sklearn", "lstm", "rnn_scratch"):
            if covariates and getattr(self, section).strategy == "recursive":
                raise _Invalid(
                    f"{section}.strategy",
                    f"recursive cannot read features.covariates {covariates} (it would need their values "
                    "after the cutoff); use the one-output-per-horizon strategy or no covariates",
                )
        if self.arima.exog and not covariates:
            raise _Invalid("arima.exog", "true needs at least one covariate in features.covariates")
        tune = self.tune
        if tune.horizon not in self.forecast.horizons:
            raise _Invalid("tune.horizon", f"{tune.horizon} is not one of forecast.horizons {self.forecast.horizons}")
        if tune.horizon >= tune.inner_test_size:
            raise _Invalid("tune.inner_test_size", f"{tune.inner_test_size} must be longer than tune.horizon")
        # The windows table holds features.n_lags lags of every covariate channel: a trial with
        # other lags would forecast from the prices alone, silently dropping the covariates.
        for family in tune.models if tune.trials and self.features.covariates else ():
            if "n_lags" in tune.space(family):
                raise _Invalid(
                    f"tune.{family}.n_lags", "cannot be tuned with features.covariates: remove it from the space"
                )
        if tune.trials and "arima" in tune.models and tune.arima and self.arima.order != "auto":
            raise _Invalid("tune.arima", "tunes the order search's bounds: needs arima.order: auto")
        return self


def load_params(path: Path | str = paths.PARAMS) -> Params:
    """Read and validate the params file; every problem is a `UserError` naming the key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    return parse_params(raw if raw is not None else {}, source=str(path))


def parse_params(raw: Any, source: str = "params") -> Params:
    """Build `Params` from an already-parsed mapping (the loader's pure core)."""
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        raise UserError(f"{source}: {_describe(err.errors()[0], raw)}") from None


def _describe(error: dict, raw: Any) -> str:
    """Pydantic's error as `key: problem`, the key read from its `loc` (section, field, ...)."""
    loc, kind = error["loc"], error["type"]
    if kind == "invalid_key":  # a key that is not a string, named as YAML writes it (pydantic's loc has 0 for false)
        loc = (*loc[:-1], yaml.safe_dump(error["input"]).splitlines()[0])
    if not loc:
        rule = error.get("ctx", {}).get("error")
        if isinstance(rule, _Invalid):  # a rule across sections names its own `section.key`
            return f"{rule.key}: {rule.problem}"
        return "expected a mapping of sections at the top level"
    section = loc[0]
    if len(loc) == 1:
        if kind in _UNKNOWN:
            return f"{section}: unknown section (expected one of {', '.join(Params.model_fields)})"
        rule = error.get("ctx", {}).get("error")
        if isinstance(rule, _Invalid):
            return f"{section}.{rule.key}: {rule.problem}"
        return f"{section}: expected a mapping of keys, got {type(raw[section]).__name__}"
    key, fields = loc[1], Params.model_fields[section].annotation.model_fields
    if kind in _UNKNOWN:
        return f"{section}.{key}: unknown key (expected one of {', '.join(fields)})"
    if kind in _BOUNDS:  # a `Field(ge=...)` limit
        sign, name = _BOUNDS[kind]
        return f"{section}.{key}: must be {sign} {error['ctx'][name]:g}, got {error['input']!r}"
    # Named by the field's whole type and value: `lstm.units: expected a list of integers, got ['a']`.
    return f"{section}.{key}: expected {_expected(fields[key].annotation)}, got {raw[section][key]!r}"


_UNKNOWN = ("extra_forbidden", "invalid_key")  # a name not among the fields, or not a string (`1:`, `null:`)
_BOUNDS = {"greater_than_equal": (">=", "ge"), "greater_than": (">", "gt"), "less_than": ("<", "lt")}
_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false", type(None): "null"}


def _expected(hint: Any) -> str:
    """A field type as a message reads it: `int | None` -> 'an integer or null'."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_expected(option) for option in args)
    if origin is Literal:
        return f"one of {', '.join(args)}" if len(args) > 1 else args[0]
    if origin is list and typing.get_origin(args[0]) is Literal:
        return f"a list of {', '.join(typing.get_args(args[0]))}"  # lstm.cells: a list of lstm, gru, simple_rnn
    if origin is list:
        return f"a list of {_NAMES[args[0]].split()[-1]}s"  # integers, strings
    if origin is dict:
        return "a mapping of names to values"
    return _NAMES[hint]
