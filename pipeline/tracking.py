"""Experiment tracking in MLflow: the only module that imports mlflow.

Each model stage logs one run per model it fits (the table it writes): its params, tags that
say what it is and what it read, the same metric keys per fold (`step` = fold) and overall, the
last fold's fitted model of each series, and the input table. The evaluate stage logs one
comparison run and registers each series' champion. Runs of one `dvc repro` share the tag
`pipeline_run`, so the UI filters one pipeline run with `tags.pipeline_run = '<id>'`.

Where runs go: `MLFLOW_TRACKING_URI` if set (e.g. a team server, `http://host:5000`), else
`sqlite:///<project root>/mlflow.db` with artifacts in `<project root>/mlruns`: no server
needed. `STOCKCAST_TRACKING=off` turns tracking off. Nothing MLflow returns (run ids, URIs,
times) is written to a DVC-tracked output: outputs are the same bytes with or without tracking.

mlflow is imported where it is used, not at the top: `import mlflow` takes seconds, and a stage
first checks that its tracking server answers, so that an unreachable one fails fast.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
from pandas.tseries.holiday import (
    AbstractHolidayCalendar, GoodFriday, Holiday, USLaborDay, USMartinLutherKingJr, USMemorialDay, USPresidentsDay,
    USThanksgivingDay, nearest_workday, sunday_to_monday,
)  # fmt: skip
from pandas.tseries.offsets import CustomBusinessDay

from pipeline import io, paths, scoring
from pipeline.cli import UserError
from pipeline.features import make_windows, transform
from pipeline.params import Params

PIPELINE_RUN_ENV = "STOCKCAST_PIPELINE_RUN"  # set it to group runs yourself
SWITCH_ENV = "STOCKCAST_TRACKING"  # "off" turns tracking off
REACH_TIMEOUT = 3.0  # seconds to wait for a tracking server's /health before giving up
# An MLflow client retries a failing request 7 times with backoff (minutes); a stage that lost
# its server should fail in seconds. The user's own settings win.
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}
# Params sections logged with each stage's runs: the inputs' own sections plus the stage's.
SECTIONS = {
    "naive": ("data", "split"),
    "arima": ("data", "split", "arima"),
    "sklearn": ("data", "features", "split", "sklearn"),
    "lstm": ("data", "features", "split", "lstm"),
    "evaluate": ("data", "features", "split", "arima", "sklearn", "lstm", "evaluate"),
}
CHAMPION = "champion"  # the registry alias the forecast command loads
EXAMPLE_DAYS = 300  # recent prices in a logged model's input example (more than any window needs)
# What a logged model needs to load, pinned to this environment's versions (listing them saves
# MLflow from loading each model in a subprocess to infer them).
REQUIREMENTS = ("mlflow", "numpy", "pandas", "scipy", "scikit-learn", "statsmodels", "cloudpickle")
FLAVOURS = {"statsmodels": (), "sklearn": (), "keras": ("keras", "jax", "jaxlib")}  # library -> what else it needs


def registered_name(series: str) -> str:
    """The registry name of a series' champion."""
    return f"stockcast-{series}"


# ---------------------------------------------------------------- where runs go


def project_root(cwd: Path | None = None, environ: dict | None = None) -> Path:
    """The project's root, as an absolute path.

    DVC sets `DVC_ROOT` for every stage command (the main repository's root, even when
    `dvc exp run --temp` runs the stage in a copy under `.dvc/tmp/exps`); without it, the
    nearest directory at or above `cwd` that holds `dvc.yaml` and is not inside `.dvc/`.
    """
    environ = os.environ if environ is None else environ
    if environ.get("DVC_ROOT"):
        return Path(environ["DVC_ROOT"]).resolve()
    cwd = (cwd or Path.cwd()).resolve()
    for directory in (cwd, *cwd.parents):
        if (directory / "dvc.yaml").is_file() and ".dvc" not in directory.parts:
            return directory
    raise UserError(f"dvc.yaml: not found in {cwd} or above (run from the project)")


def tracking_uri(root: Path, environ: dict | None = None) -> str:
    """`MLFLOW_TRACKING_URI` if set, else the SQLite store in the project root."""
    environ = os.environ if environ is None else environ
    return environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{root / 'mlflow.db'}"


def artifact_location(root: Path, uri: str) -> str | None:
    """Where a new experiment keeps artifacts: `<root>/mlruns` with a local store.

    MLflow's own default is `./mlruns` in the working directory, which under
    `dvc exp run --temp` is a copy that is deleted. A server chooses for itself (its
    `--default-artifact-root`), so this is `None` there.
    """
    return None if urlsplit(uri).scheme in ("http", "https") else (root / "mlruns").as_uri()


def check_reachable(uri: str, timeout: float = REACH_TIMEOUT) -> None:
    """Fail within `timeout` seconds if an http(s) tracking server does not answer.

    Any HTTP answer counts as reachable (a server behind a login answers 401); only a refused
    connection, a timeout or an unknown host is an error. Other URIs are local stores.
    """
    if urlsplit(uri).scheme not in ("http", "https"):
        return
    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout).close()
    except urllib.error.HTTPError:
        return
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        raise UserError(f"MLFLOW_TRACKING_URI: cannot reach the MLflow tracking server at {uri} ({reason})") from None


# ---------------------------------------------------------------- what a run is tagged with


def pipeline_run_id(environ: dict | None = None) -> str:
    """The id shared by every run of one pipeline invocation.

    In order: `STOCKCAST_PIPELINE_RUN` if set; under `dvc exp run`, the experiment's name
    (`DVC_EXP_NAME`, as `dvc exp show` lists it); under `dvc repro`, the start time and process
    id of that `dvc` process, the parent every stage of one repro shares; a stage run on its own
    gets its own start time and process id.
    """
    environ = os.environ if environ is None else environ
    if environ.get(PIPELINE_RUN_ENV):
        return environ[PIPELINE_RUN_ENV]
    if environ.get("DVC_EXP_NAME"):
        return environ["DVC_EXP_NAME"]
    started, pid = (_dvc_process() if "DVC_STAGE" in environ else None) or (time.time(), os.getpid())
    return f"{datetime.fromtimestamp(started, UTC):%Y%m%dT%H%M%SZ}-{pid}"


def _dvc_process() -> tuple[float, int] | None:
    """(start time, pid) of the `dvc` process running this stage, if it can be seen.

    DVC puts `DVC_STAGE` into each stage command's environment; the nearest ancestor without it
    is DVC itself (the shell between inherits it).
    """
    import psutil

    try:
        process = psutil.Process().parent()
        while process is not None and "DVC_STAGE" in process.environ():
            process = process.parent()
        return (process.create_time(), process.pid) if process is not None else None
    except psutil.Error:
        return None


def git_state(root: Path) -> dict[str, str]:
    """`git_commit` (HEAD) and `git_dirty` (uncommitted changes) of the project, or `unknown`.

    `dvc.lock` and `.gitignore` files are not counted: DVC rewrites them during a repro.
    """
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=10).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        changes = git("status", "--porcelain", "--", ".", ":(exclude)dvc.lock", ":(exclude,glob)**/.gitignore")
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": "unknown", "git_dirty": "unknown"}
    return {"git_commit": commit, "git_dirty": str(bool(changes.strip())).lower()}


def dvc_md5(path: Path | str) -> str:
    """A file's md5 as `dvc.lock` records it (DVC 3 hashes a file's bytes as they are)."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def flat_params(params: Params, sections: Iterable[str]) -> dict[str, str]:
    """`section.key` (and `section.key.sub` for mappings) -> value, as MLflow params.

    Strings stay as they are; everything else is written as JSON (`null`, `[32]`, `true`).
    """
    out = {}
    for section in sections:
        for key, value in dataclasses.asdict(getattr(params, section)).items():
            items = value.items() if isinstance(value, dict) else [(None, value)]
            for sub, v in items:
                name = f"{section}.{key}" if sub is None else f"{section}.{key}.{sub}"
                out[name] = v if isinstance(v, str) else json.dumps(v)
    return out


def family(model) -> str:
    """A model's class and constructor arguments, e.g. `Arima(order='auto', max_p=2, ...)`.

    Constructors store each argument as an attribute of the same name (the model contract);
    learned state ends in `_` and is left out.
    """
    args = ", ".join(f"{k}={' '.join(repr(v).split())}" for k, v in vars(model).items() if not k.endswith("_") and not k.startswith("_"))
    return f"{type(model).__name__}({args})"  # on one line: scikit-learn's reprs wrap


def learned(model) -> str:
    """A fitted model's small learned attributes (scalars, short tuples), e.g. `order_=(1, 1, 1)`."""
    simple = {k: v for k, v in vars(model).items() if k.endswith("_") and isinstance(v, (int, float, str, tuple)) and len(repr(v)) < 100}
    return ", ".join(f"{k}={v!r}" for k, v in simple.items())


# ---------------------------------------------------------------- what a run measures


def fitted_by_fold(fitted: Sequence, folds: dict[str, list[dict]]) -> list[tuple[str, int, object]]:
    """`(series, fold, fitted model)` for each model `walk_forward` returned.

    `walk_forward` returns one fitted model per fold in the order of `folds` (series in order,
    folds in order within each), so a series' last entry is its last fold's model.
    """
    keys = [(uid, int(entry["fold"])) for uid, entries in folds.items() for entry in entries]
    if len(keys) != len(fitted):
        raise ValueError(f"{len(fitted)} fitted models for {len(keys)} folds")
    return [(uid, fold, model) for (uid, fold), model in zip(keys, fitted, strict=True)]


def model_scores(name: str, table: pd.DataFrame, prices: pd.DataFrame, folds: dict[str, list[dict]]) -> tuple[dict, dict[int, dict]]:
    """A predictions table's scores as the evaluate stage computes them: overall and per fold.

    Every model gets the same keys (`pipeline.scoring.METRIC_KEYS`); an undefined score is
    NaN. The naive baseline's forecast is yesterday's price exactly (the random walk through the
    walk-forward loop's price mapping), so the vs-naive scores need no other table.
    """
    context = scoring.price_context(prices)
    rows = scoring.forecast_rows({name: table}, context, scoring.fold_scales(context, folds))
    rows["y_hat_naive"] = rows["y_prev"]

    def numbers(scores: dict) -> dict[str, float]:
        return {key: float("nan") if scores[key] is None else float(scores[key]) for key in scoring.METRIC_KEYS}

    per_fold = {int(fold): numbers(scoring.score(group)) for fold, group in rows.groupby("fold", sort=True)}
    return numbers(scoring.score(rows)), per_fold


def key_part(text: str) -> str:
    """`text` (e.g. a ticker like `^GSPC`) as a piece of an MLflow tag, metric or model name."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


# ---------------------------------------------------------------- the models a run holds


class NYSEHolidays(AbstractHolidayCalendar):
    """The New York Stock Exchange's regular full-day closures (not unscheduled ones, such as
    national days of mourning): every data set this project ships trades there."""

    rules = [
        Holiday("New Year's Day", month=1, day=1, observance=sunday_to_monday),  # a Saturday one is not made up
        USMartinLutherKingJr, USPresidentsDay, GoodFriday, USMemorialDay,
        Holiday("Juneteenth", month=6, day=19, start_date="2022-01-01", observance=nearest_workday),
        Holiday("Independence Day", month=7, day=4, observance=nearest_workday),
        USLaborDay, USThanksgivingDay,
        Holiday("Christmas Day", month=12, day=25, observance=nearest_workday),
    ]  # fmt: skip


@functools.cache
def _nyse_trading_day() -> CustomBusinessDay:
    return CustomBusinessDay(calendar=NYSEHolidays())  # lists every holiday 1970-2200: 0.1 s, once


def next_trading_day(day: pd.Timestamp) -> pd.Timestamp:
    """The first NYSE trading day after `day`: weekends and NYSE holidays skipped."""
    return pd.Timestamp(day) + _nyse_trading_day()


def next_day_forecast(model, prices: pd.DataFrame) -> pd.DataFrame:
    """A fitted contract model's forecast for the day after `prices` (one series' `ds`, `price`).

    One row: `ds` the next trading day (`next_trading_day`), `y_hat` the forecast price and,
    where the model gives one, its prediction interval `y_lo`, `y_hi`.
    """
    frame = prices.sort_values("ds")
    price = frame["price"].to_numpy("float64")
    y = np.log(price)
    # The contract forecasts the last value of its input from the values before it, so the
    # unknown next day is a placeholder that no forecast reads.
    extended = np.append(y, y[-1])

    def to_price(log_price) -> np.ndarray:  # relative to the last price, as the walk-forward loop maps forecasts
        return price[-1] * np.exp(np.asarray(log_price, dtype="float64").reshape(-1) - y[-1])

    out = {"ds": [next_trading_day(frame["ds"].iloc[-1])], "y_hat": to_price(model.predict(extended, 1))}
    if hasattr(model, "predict_interval"):
        lo, hi = to_price(model.predict_interval(extended, 1))
        out["y_lo"], out["y_hi"] = [lo], [hi]
    return pd.DataFrame(out)


@functools.cache
def _forecaster_class() -> type:
    """`Forecaster`: a contract model fitted on one series' last fold, as an MLflow pyfunc.

    Its `predict` takes recent prices (`ds`, `price`) and returns `next_day_forecast`'s row.
    It is what the registry serves and `pipeline.forecast` loads. Made on first use, since it
    subclasses MLflow's `PythonModel` (see the module docstring).
    """
    import mlflow.pyfunc

    class Forecaster(mlflow.pyfunc.PythonModel):
        def __init__(self, model):
            self.model = model

        def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
            return next_day_forecast(self.model, model_input)

    Forecaster.__qualname__ = "Forecaster"  # pickled by reference: `pipeline.tracking.Forecaster`
    return Forecaster


def __getattr__(name: str):
    # `pipeline.tracking.Forecaster`, where unpickling a logged model looks for it.
    if name == "Forecaster":
        return _forecaster_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def recent_prices(prices: pd.DataFrame, series: str) -> pd.DataFrame:
    """One series' `ds` and target `price`, oldest first: a `Forecaster`'s input."""
    rows = prices[prices["unique_id"] == series].sort_values("ds")
    return pd.DataFrame({"ds": rows["ds"].to_numpy("datetime64[ns]"), "price": rows[io.target_column(prices.columns)].to_numpy("float64")})


def native_model(model, series_prices: pd.DataFrame) -> tuple[str, object, object, np.ndarray] | None:
    """What a fitted model learned, in a form an MLflow flavour logs, or `None` (the baselines).

    Returns `(library, object, input example, the object's output for it)` for the first
    attribute holding learned state (`name_`, e.g. the recurrent net's Keras model `network_`)
    from a library MLflow has a flavour for. statsmodels results
    take a one-row frame of `start`, `end` positions (the example: the day after the train
    part); scikit-learn and Keras models take the lag windows the model builds from the prices.
    """
    for key, value in vars(model).items():
        library = type(value).__module__.partition(".")[0]
        if library not in FLAVOURS or not key.endswith("_"):
            continue  # an unfitted constructor argument, e.g. the regressor's `estimator`
        if library == "statsmodels":
            n = int(value.nobs)
            example = pd.DataFrame({"start": [n], "end": [n]})
            return library, value, example, np.asarray(value.predict(start=n, end=n))
        windows, _ = make_windows(transform(np.log(series_prices["price"].to_numpy()), model.target), model.n_lags)
        if library == "keras":
            # The network sees the windows as the model prepares them (standardised sequences).
            example = model._inputs(windows[-5:])
            return library, value, example, np.asarray(value.predict(example, verbose=0))
        example = windows[-5:]
        return library, value, example, np.asarray(value.predict(example))
    return None


def requirements(library: str | None) -> list[str]:
    """Pinned pip requirements (this environment's versions) of a model needing `library`'s flavour."""
    return [f"{name}=={metadata.version(name)}" for name in REQUIREMENTS + FLAVOURS.get(library, ())]


def _log_models(model, series_prices: pd.DataFrame, uid: str) -> None:
    """Log one series' last-fold model as a `Forecaster` and, where it has one, in its flavour.

    The `Forecaster`'s model URI is tagged `forecaster.<series>`: the evaluate stage registers it.
    """
    import mlflow.pyfunc
    from mlflow.models import infer_signature

    example = series_prices.tail(EXAMPLE_DAYS).reset_index(drop=True)
    signature = infer_signature(example, next_day_forecast(model, example))
    native = native_model(model, series_prices)  # after a prediction, which builds any cached network
    library = native[0] if native else None
    info = mlflow.pyfunc.log_model(
        name=f"forecaster-{key_part(uid)}", python_model=_forecaster_class()(model), input_example=example, signature=signature,
        pip_requirements=requirements(library),
    )  # fmt: skip
    mlflow.set_tag(f"forecaster.{key_part(uid)}", info.model_uri)
    if native is not None:
        _, learned_object, example, output = native
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            # statsmodels' example holds integer positions, which are never missing.
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")
            # Saved, then logged as run artifacts: `mlflow.keras.log_model` with an input example
            # fails in MLflow 3.17 (it writes the example before creating the model's directory),
            # while `save_model` into an existing empty directory works, for every flavour alike.
            path = Path(tmp) / f"{library}-{key_part(uid)}"
            path.mkdir()
            importlib.import_module(f"mlflow.{library}").save_model(
                learned_object, path=str(path), input_example=example, signature=infer_signature(example, output),
                pip_requirements=requirements(library),
            )  # fmt: skip
            mlflow.log_artifacts(str(path), artifact_path=path.name)


# ---------------------------------------------------------------- a stage's connection


@contextmanager
def _as_user_error(uri: str) -> Iterator[None]:
    """Turn an MLflow or connection failure into a `UserError` naming the store."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except (MlflowException, OSError) as err:
        message = (str(getattr(err, "message", err)).strip().splitlines() or [type(err).__name__])[0]
        raise UserError(f"MLflow ({uri}): {message}") from None


def _quiet_mlflow() -> None:
    """Keep MLflow's info chatter (table creation, migrations) out of the stage's output."""
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("mlflow.pyfunc").addFilter(_not_the_cloudpickle_warning)  # the same filter once, however often


def _not_the_cloudpickle_warning(record: logging.LogRecord) -> bool:
    # Logging a Python object as a pyfunc is deliberate (see `Forecaster`); MLflow warns each time.
    return "serialized using CloudPickle" not in record.getMessage()


def connect() -> tuple[Path, str]:
    """Point MLflow at the project's tracking store; return the project root and the URI.

    An unreachable server is a `UserError` naming the URI within seconds.
    """
    root = project_root()
    uri = tracking_uri(root)
    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    check_reachable(uri)
    import mlflow

    _quiet_mlflow()
    mlflow.set_tracking_uri(uri)
    return root, uri


@dataclasses.dataclass(frozen=True)
class Tracker:
    """One stage's connection to the tracking store (from `start`) and the tags its runs share."""

    uri: str
    experiment_id: str
    params: Params
    stage: str
    tags: dict[str, str]

    def log_model_run(self, name: str, table: pd.DataFrame, fitted: Sequence, prices: pd.DataFrame, folds: dict[str, list[dict]], started: float) -> None:
        """Log the run of one model (one predictions table), after the stage wrote the table.

        `fitted` is what `walk_forward` returned; `started` (seconds since the epoch) is when
        the walk-forward began, the run's start time. The run holds params of the sections the
        stage used; tags `model`, `family`, `learned.<series>`, `series`, the md5 of each input
        and of the table (`output_md5`) besides the shared ones; the evaluate stage's scores
        overall and per fold (`fold/<key>`, step = fold); training curves for models that keep
        a `history_` (`history/<series>/fold_<k>/<curve>`, step = epoch); and per series the
        last fold's model as a `Forecaster` and, where it has one, in its own flavour.
        """
        import mlflow
        from mlflow.entities import Param

        output = paths.predictions(name)
        by_fold = fitted_by_fold(fitted, folds)
        last = {uid: model for uid, _, model in by_fold}  # a series' later folds overwrite its earlier ones
        overall, per_fold = model_scores(name, table, prices, folds)
        inputs = {f"md5.{path.as_posix()}": dvc_md5(path) for path in (paths.PRICES, paths.FOLDS)}
        tags = {
            **self.tags, **inputs, "model": name, "family": family(by_fold[0][2]), "series": ",".join(folds),
            "output": output.as_posix(), "output_md5": dvc_md5(output),
            **{f"learned.{key_part(uid)}": learned(model) for uid, model in last.items() if learned(model)},
        }  # fmt: skip
        with _as_user_error(self.uri):
            run = mlflow.MlflowClient().create_run(self.experiment_id, start_time=int(started * 1000), tags=tags, run_name=name)
            with mlflow.start_run(run_id=run.info.run_id):
                with warnings.catch_warnings():  # a local path matches two of MLflow's source types, both right
                    warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted in multiple ways")
                    dataset = mlflow.data.from_pandas(prices, source=str(Path.cwd() / paths.PRICES), name="prices", digest=inputs[f"md5.{paths.PRICES.as_posix()}"])
                mlflow.log_input(dataset, context="training")
                # Models before metrics: MLflow copies every metric already in the run into each
                # model it logs, one query per metric key: series x series queries in all.
                for uid, model in last.items():
                    _log_models(model, recent_prices(prices, uid), uid)
                mlflow.MlflowClient().log_batch(
                    run.info.run_id, params=[Param(k, v) for k, v in flat_params(self.params, SECTIONS[self.stage]).items()],
                    metrics=_metrics(overall, per_fold, by_fold), synchronous=True,
                )  # fmt: skip

    def log_comparison(self, report: dict, artifacts: Sequence[Path]) -> None:
        """Log the evaluate stage's comparison run and register each series' champion.

        `report` is `reports/metrics.json`'s content: each model's overall scores become
        metrics `<model>.<key>`; `artifacts` (files or directories: the reports, the plots)
        are attached. Each series' champion (`scoring.champions`) is registered as
        `stockcast-<series>` with alias `champion`, from the run that wrote the champion's
        table as it is now (its `output_md5`); the comparison run links each model's run in a
        tag `run.<model>`.
        """
        import mlflow

        tables = {model: paths.predictions(model) for model in report["models"]}
        with _as_user_error(self.uri):
            runs = {model: self._run_that_wrote(model, path) for model, path in tables.items()}
            chosen = scoring.champions(report)
            tags = {
                **self.tags, "series": ",".join(report["series"]),
                **{f"md5.{path.as_posix()}": dvc_md5(path) for path in tables.values()},
                **{f"run.{model}": run.info.run_id for model, run in runs.items() if run is not None},
                **{f"champion.{key_part(uid)}": model for uid, model in chosen.items()},
            }  # fmt: skip
            metrics = {f"{model}.{key}": _number(value) for model, scores in report["models"].items() for key, value in scores.items()}
            with mlflow.start_run(experiment_id=self.experiment_id, run_name="comparison", tags=tags):
                mlflow.log_params(flat_params(self.params, SECTIONS[self.stage]))
                mlflow.log_metrics(metrics)
                for path in artifacts:
                    if Path(path).is_dir():
                        mlflow.log_artifacts(str(path), artifact_path=Path(path).name)
                    else:
                        mlflow.log_artifact(str(path))
            print(f"tracking: {len(report['models'])} models compared in {self.uri}; this pipeline run's runs: tags.pipeline_run = '{self.tags['pipeline_run']}'")
            for uid, model in chosen.items():
                self._register(uid, model, runs[model], report["series"][uid][model])

    def _run_that_wrote(self, model: str, table: Path):
        """The latest run of `model` whose table had the bytes `table` has now, or `None`."""
        import mlflow

        found = mlflow.search_runs(
            [self.experiment_id], filter_string=f"tags.model = '{model}' and tags.output_md5 = '{dvc_md5(table)}'",
            order_by=["attributes.start_time DESC"], max_results=1, output_format="list",
        )  # fmt: skip
        return found[0] if found else None

    def _register(self, uid: str, model: str, run, scores: dict) -> None:
        """Point `stockcast-<uid>@champion` at `run`'s `Forecaster` for `uid` (a new version
        only when the champion changed)."""
        name = registered_name(uid)
        uri = run.data.tags.get(f"forecaster.{key_part(uid)}") if run is not None else None
        if uri is None:
            print(
                f"tracking: {uid}: champion {model} not registered: no run in {self.uri} wrote {paths.predictions(model)} "
                "as it is now (rerun its stage with `dvc repro --force <stage>` and this tracking URI)",
                file=sys.stderr,
            )  # fmt: skip
            return
        import mlflow

        client = mlflow.MlflowClient()
        current = _champion_version(client, name)
        if current is not None and current.source == uri:
            version = current
        else:
            tags = {"model": model, "series": uid, "pipeline_run": self.tags["pipeline_run"], "rmse": str(scores["rmse"])}
            version = mlflow.register_model(uri, name, tags=tags)
            client.set_registered_model_alias(name, CHAMPION, version.version)
        print(f"tracking: {uid}: champion {model} (RMSE {scores['rmse']:.4g}) is models:/{name}@{CHAMPION}, version {version.version}")


def start(params: Params, stage: str) -> Tracker | None:
    """Connect before the stage does any work (no training is spent on a run that could not be
    recorded) and open the experiment `mlflow.experiment`; `None` if tracking is off."""
    if os.environ.get(SWITCH_ENV, "").strip().lower() in ("off", "0", "false", "no"):
        return None
    root, uri = connect()
    import mlflow

    name = params.mlflow.experiment
    with _as_user_error(uri):
        experiment = mlflow.get_experiment_by_name(name)
        if experiment is None:
            experiment_id = mlflow.create_experiment(name, artifact_location=artifact_location(root, uri))
        elif experiment.lifecycle_stage == "deleted":
            raise UserError(f"mlflow.experiment: {name!r} is deleted in {uri} (restore it in the MLflow UI or choose another name)")
        else:
            experiment_id = experiment.experiment_id
    tags = {"stage": stage, "pipeline_run": pipeline_run_id(), **git_state(root)}
    return Tracker(uri, experiment_id, params, stage, tags)


def _metrics(overall: dict, per_fold: dict[int, dict], by_fold: list) -> list:
    """The model run's metrics: overall, `fold/<key>` per fold and each fold's training curves."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    out = [Metric(key, value, now, 0) for key, value in overall.items()]
    out += [Metric(f"fold/{key}", value, now, fold) for fold, scores in per_fold.items() for key, value in scores.items()]
    for uid, fold, model in by_fold:
        for curve, values in getattr(model, "history_", {}).items():
            out += [Metric(f"history/{key_part(uid)}/fold_{fold}/{curve}", float(v), now, epoch) for epoch, v in enumerate(values)]
    return out


def _number(value) -> float:
    return float("nan") if value is None else float(value)


def _champion_version(client, name: str):
    """The model version alias `champion` of `name` points at, or `None`."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException as err:
        if err.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


# ---------------------------------------------------------------- the forecast command's side


def load_champion(series: str):
    """The champion `Forecaster` of `series` from the registry, and its version's tags.

    No champion yet is a `UserError` that says how to get one.
    """
    _, uri = connect()
    name = registered_name(series)
    store = urlsplit(uri)
    if store.scheme == "sqlite" and not Path(store.path[1:]).exists():  # rather than create an empty store
        raise UserError(f"models:/{name}@{CHAMPION}: no champion yet: {uri} does not exist (run `dvc repro` to train, evaluate and register one)")
    import mlflow.pyfunc

    with _as_user_error(uri):
        version = _champion_version(mlflow.MlflowClient(), name)
        if version is None:
            raise UserError(f"models:/{name}@{CHAMPION}: no champion in {uri} yet (run `dvc repro` to train, evaluate and register one)")
        return mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION}"), {**version.tags, "version": version.version}
