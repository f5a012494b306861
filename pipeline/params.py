"""Typed params: `params.yaml` loaded once into frozen dataclasses, one per section.

Unknown keys, wrong types and impossible values are rejected with a `UserError` naming the key
(`params.yaml: split.n_windows: must be >= 1, got 0`). No stage opens the YAML itself. Limits
that depend on the data (e.g. `split.test_size` against the series length) are checked by the
stage that knows the data, naming the same key.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from pipeline import paths
from pipeline.cli import UserError

SAMPLE_DATASETS = ("sp500", "nasdaq")
ESTIMATORS = ("ridge", "random_forest", "hist_gradient_boosting", "mlp")
CELLS = ("lstm", "gru", "simple_rnn")


class _Invalid(Exception):
    """Raised inside a section's validation; the loader adds the file and the section."""

    def __init__(self, key: str, problem: str):
        super().__init__(key, problem)
        self.key, self.problem = key, problem


def _require(ok: bool, key: str, problem: str) -> None:
    if not ok:
        raise _Invalid(key, problem)


@dataclass(frozen=True)
class DataParams:
    source: Literal["sample", "csv", "yfinance", "synthetic"] = "sample"
    datasets: list[str] = field(default_factory=lambda: ["sp500"])  # sample: arch's data sets
    path: str | None = None  # csv: the user's file
    tickers: list[str] = field(default_factory=list)  # yfinance: symbols to download
    start: str | None = None  # inclusive ISO date filter, any source
    end: str | None = None  # inclusive ISO date filter, any source
    n_series: int = 10  # synthetic: number of geometric random walks
    n_days: int = 2500  # synthetic: trading days per series
    seed: int = 0  # synthetic: the walks are a pure function of this seed

    def __post_init__(self) -> None:
        _require(bool(self.datasets), "datasets", "must name at least one data set")
        for name in self.datasets:
            _require(name in SAMPLE_DATASETS, "datasets", f"unknown data set {name!r} (expected one of {', '.join(SAMPLE_DATASETS)})")
        _require(self.source != "csv" or bool(self.path), "path", "is required when data.source is csv")
        _require(self.source != "yfinance" or bool(self.tickers), "tickers", "is required when data.source is yfinance")
        _require(self.n_series >= 1, "n_series", f"must be >= 1, got {self.n_series}")
        _require(self.n_days >= 2, "n_days", f"must be >= 2, got {self.n_days}")
        for key in ("start", "end"):
            value = getattr(self, key)
            if value is not None:
                try:
                    _iso_date(value)
                except ValueError:
                    raise _Invalid(key, f"not an ISO date (YYYY-MM-DD): {value!r}") from None
        if self.start and self.end:
            _require(_iso_date(self.start) <= _iso_date(self.end), "end", f"{self.end} is before data.start {self.start}")


def _iso_date(text: str):
    import datetime

    return datetime.date.fromisoformat(str(text))


@dataclass(frozen=True)
class FeaturesParams:
    n_lags: int = 60  # window length L: values t-L+1..t predict t+1
    target: Literal["log_return", "price"] = "log_return"  # what the window models learn

    def __post_init__(self) -> None:
        _require(self.n_lags >= 1, "n_lags", f"must be >= 1, got {self.n_lags}")


@dataclass(frozen=True)
class SplitParams:
    n_windows: int = 5  # walk-forward folds (TimeSeriesSplit n_splits)
    test_size: int = 250  # test days per fold, about one trading year
    gap: int = 0  # days left out between train and test
    max_train_size: int | None = None  # null: expanding window

    def __post_init__(self) -> None:
        # TimeSeriesSplit needs n_splits >= 2.
        _require(self.n_windows >= 2, "n_windows", f"must be >= 2, got {self.n_windows}")
        _require(self.test_size >= 1, "test_size", f"must be >= 1, got {self.test_size}")
        _require(self.gap >= 0, "gap", f"must be >= 0, got {self.gap}")
        _require(self.max_train_size is None or self.max_train_size >= 2, "max_train_size", f"must be null or >= 2, got {self.max_train_size}")


@dataclass(frozen=True)
class ParallelParams:
    backend: Literal["loky", "dask"] = "loky"  # loky: processes on this machine; dask: a cluster
    n_jobs: int = 2  # worker processes for (series, fold) tasks; -1 for all cores
    # dask: e.g. tcp://scheduler-host:8786 (wins over env DASK_SCHEDULER_ADDRESS); with neither, a
    # local cluster of n_jobs worker processes is started for the stage and closed after it
    scheduler_address: str | None = None

    def __post_init__(self) -> None:
        _require(self.n_jobs >= 1 or self.n_jobs == -1, "n_jobs", f"must be >= 1 or -1, got {self.n_jobs}")
        _require(self.backend == "dask" or self.scheduler_address is None, "scheduler_address", "is used only with parallel.backend: dask")


@dataclass(frozen=True)
class ArimaParams:
    order: Literal["auto"] | list[int] = "auto"  # [p, d, q], or auto: AIC grid per fold
    max_p: int = 2  # auto: p in 0..max_p
    max_q: int = 2  # auto: q in 0..max_q
    d: int = 1  # auto: differencing order (1: the model works on log returns)
    coverage: float = 0.9  # prediction interval written as y_lo/y_hi

    def __post_init__(self) -> None:
        if self.order != "auto":
            _require(len(self.order) == 3 and all(v >= 0 for v in self.order), "order", f"must be auto or [p, d, q] of three non-negative integers, got {self.order}")
            _require(self.order[1] <= 2, "order", f"d must be 0, 1 or 2, got {self.order[1]}")
        _require(self.max_p >= 0, "max_p", f"must be >= 0, got {self.max_p}")
        _require(self.max_q >= 0, "max_q", f"must be >= 0, got {self.max_q}")
        _require(0 <= self.d <= 2, "d", f"must be 0, 1 or 2, got {self.d}")
        _require(0 < self.coverage < 1, "coverage", f"must be between 0 and 1, got {self.coverage}")


@dataclass(frozen=True)
class SklearnParams:
    estimator: Literal["ridge", "random_forest", "hist_gradient_boosting", "mlp"] = "ridge"
    params: dict[str, Any] = field(default_factory=dict)  # keyword arguments of the estimator
    random_state: int = 0  # passed to estimators that take one

    def __post_init__(self) -> None:
        _require("random_state" not in self.params, "params", "set random_state through sklearn.random_state, not sklearn.params")


@dataclass(frozen=True)
class LstmParams:
    cell: Literal["lstm", "gru", "simple_rnn"] = "lstm"
    units: list[int] = field(default_factory=lambda: [32])  # one entry per stacked layer
    dropout: float = 0.0
    epochs: int = 20  # upper bound; early stopping usually ends sooner
    batch_size: int = 128
    learning_rate: float = 0.001
    patience: int = 3  # epochs without val_loss improvement before stopping
    validation_fraction: float = 0.1  # last part of each train window used for early stopping
    seed: int = 0
    warm_start: bool = False  # start fold k from fold k-1's weights

    def __post_init__(self) -> None:
        _require(len(self.units) >= 1, "units", "must list at least one layer size")
        _require(all(u >= 1 for u in self.units), "units", f"every layer needs >= 1 unit, got {self.units}")
        _require(0 <= self.dropout < 1, "dropout", f"must be in [0, 1), got {self.dropout}")
        _require(self.epochs >= 1, "epochs", f"must be >= 1, got {self.epochs}")
        _require(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
        _require(self.learning_rate > 0, "learning_rate", f"must be > 0, got {self.learning_rate}")
        _require(self.patience >= 0, "patience", f"must be >= 0, got {self.patience}")
        _require(0 < self.validation_fraction < 1, "validation_fraction", f"must be between 0 and 1, got {self.validation_fraction}")


@dataclass(frozen=True)
class EvaluateParams:
    zoom_days: int = 60  # the close-up plot of the last days, where lagging forecasts show
    seasonal_period: int = 252  # trading days in the decomposition's season (one year)

    def __post_init__(self) -> None:
        _require(self.zoom_days >= 2, "zoom_days", f"must be >= 2, got {self.zoom_days}")
        _require(self.seasonal_period >= 2, "seasonal_period", f"must be >= 2, got {self.seasonal_period}")


@dataclass(frozen=True)
class MlflowParams:
    experiment: str = "stockcast"  # the MLflow experiment of every run (the store: MLFLOW_TRACKING_URI)

    def __post_init__(self) -> None:
        _require(bool(self.experiment.strip()), "experiment", "must not be empty")


@dataclass(frozen=True)
class Params:
    data: DataParams = field(default_factory=DataParams)
    features: FeaturesParams = field(default_factory=FeaturesParams)
    split: SplitParams = field(default_factory=SplitParams)
    parallel: ParallelParams = field(default_factory=ParallelParams)
    arima: ArimaParams = field(default_factory=ArimaParams)
    sklearn: SklearnParams = field(default_factory=SklearnParams)
    lstm: LstmParams = field(default_factory=LstmParams)
    evaluate: EvaluateParams = field(default_factory=EvaluateParams)
    mlflow: MlflowParams = field(default_factory=MlflowParams)


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
    if not isinstance(raw, dict):
        raise UserError(f"{source}: expected a mapping of sections at the top level")
    sections = {}
    hints = typing.get_type_hints(Params)
    unknown = sorted(set(raw) - set(hints))
    if unknown:
        raise UserError(f"{source}: {unknown[0]}: unknown section (expected one of {', '.join(hints)})")
    for name, cls in hints.items():
        body = raw.get(name) or {}
        if not isinstance(body, dict):
            raise UserError(f"{source}: {name}: expected a mapping of keys, got {type(body).__name__}")
        sections[name] = _build_section(cls, body, name, source)
    return Params(**sections)


def _build_section(cls: type, body: dict, section: str, source: str):
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(body) - set(hints))
    if unknown:
        raise UserError(f"{source}: {section}.{unknown[0]}: unknown key (expected one of {', '.join(hints)})")
    kwargs = {}
    for name, hint in hints.items():
        if name in body:
            key = f"{section}.{name}"
            try:
                kwargs[name] = _coerce(body[name], hint)
            except TypeError as err:
                raise UserError(f"{source}: {key}: {err}, got {body[name]!r}") from None
    try:
        return cls(**kwargs)
    except _Invalid as err:
        raise UserError(f"{source}: {section}.{err.key}: {err.problem}") from None


def _coerce(value: Any, hint: Any) -> Any:
    """Check `value` against a type hint, converting only int -> float; raise TypeError otherwise."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for option in args:
            try:
                return _coerce(value, option)
            except TypeError:
                continue
        raise TypeError(f"expected {_describe(hint)}")
    if hint is type(None):
        if value is None:
            return None
        raise TypeError("expected null")
    if origin is Literal:
        if value in args and isinstance(value, str):
            return value
        raise TypeError(f"expected one of {', '.join(map(str, args))}")
    if origin is list:
        if not isinstance(value, list):
            raise TypeError(f"expected {_describe(hint)}")
        return [_coerce(item, args[0]) for item in value]
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise TypeError("expected a mapping of names to values")
        return dict(value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise TypeError("expected true or false")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise TypeError("expected an integer")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise TypeError("expected a number")
    if hint is str:
        if isinstance(value, str):
            return value
        raise TypeError("expected a string")
    if hint is Any:
        return value
    raise TypeError(f"unsupported type {hint}")  # a programming error in this module


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if hint is type(None):
        return "null"
    if origin is Literal:
        return " or ".join(map(str, args))
    if origin is list:
        return f"a list of {_describe(args[0])}"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(hint, str(hint))
