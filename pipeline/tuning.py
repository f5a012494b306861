"""Nested hyperparameter search: a model that tunes itself on each train part it is fitted on.

    dvc exp run -S tune.trials=20 -S 'tune.models=[sklearn, lstm]'    # params: tune.*

`Tuned` wraps a family's model builder and keeps the model contract, so the one walk-forward
loop runs it unchanged, fold by fold and series by series on the parallel backend in effect.
Its `fit(y, X)` gets the outer fold's train part and nothing else: there it runs an Optuna study
(a seeded TPE sampler, trials one after another, in memory) whose trials are scored on an inner
walk-forward of `inner_windows` folds of `inner_test_size` days at the end of that train part,
each forecast by `walkforward.forecast_fold` as the outer loop does it: the pooled inner RMSE
at `horizon` over the naive random walk's on the same inner days. The best trial's values are
then fitted on the whole train part, and that model forecasts the outer test part. The outer
test part never reaches the study (the leakage canary in tests/test_tuning.py), and the
interval calibration of the loop sees the tuned model's forecasts of each fold, the
calibration fold's (tuned on its own train part) included.

Pure: no files, no MLflow. What was chosen and tried is on each fitted `Tuned` (`summary()`).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable

import numpy as np

from pipeline.cli import UserError
from pipeline.models.base import Model
from pipeline.models.naive import Naive
from pipeline.walkforward import MIN_CALIBRATION_TRAIN_DAYS, Fold, Series, forecast_fold


def suggest(trial, name: str, space: dict):
    """The trial's value of `name` from its space (`params.TuneParams`): a choice, or a number
    in [low, high], an integer if both ends are, on a log scale with `log: true`.

    Choices are handed to Optuna as their JSON text, since Optuna's categorical values must be
    scalars and a choice may be a list (`units: [32, 16]`)."""
    if "choices" in space:
        return json.loads(trial.suggest_categorical(name, [json.dumps(c) for c in space["choices"]]))
    low, high, log = space["low"], space["high"], space.get("log", False)
    if isinstance(low, int) and isinstance(high, int):
        return trial.suggest_int(name, low, high, log=log)
    return trial.suggest_float(name, float(low), float(high), log=log)


def check_space(build: Callable[[dict], Model], family: str, space: dict) -> None:
    """Build a model at each end of every range and with each choice of `space`, so that a value
    the family rejects (an estimator argument the estimator lacks) is a `UserError` naming its
    `tune.<family>.<key>` before any study starts, not a failure in a worker."""
    for key, entry in space.items():
        for value in entry["choices"] if "choices" in entry else (entry["low"], entry["high"]):
            try:
                build({key: value})
            except UserError as err:
                raise UserError(f"tune.{family}.{key}: {value!r} is not a valid value ({err})") from None


def inner_folds(n_days: int, windows: int, test_size: int) -> list[Fold]:
    """`windows` folds of `test_size` days ending on the last of `n_days` (positions of a train
    part), each training on everything before its test days (an expanding window)."""
    first_test = n_days - windows * test_size
    if first_test < MIN_CALIBRATION_TRAIN_DAYS:
        raise UserError(
            f"tune.inner_test_size: {windows} inner folds x {test_size} days leave {max(first_test, 0)} of a "
            f"train part of {n_days} days to train on (at least {MIN_CALIBRATION_TRAIN_DAYS})"
        )
    starts = [first_test + k * test_size for k in range(windows)]
    return [Fold("inner", k, 0, start - 1, start, start + test_size - 1) for k, start in enumerate(starts)]


def squared_errors(frame, horizon: int) -> np.ndarray:
    rows = frame[frame["h"] == horizon]
    return (rows["y"].to_numpy() - rows["y_hat"].to_numpy()) ** 2


class Tuned(Model):
    """The model `build(values)` makes with the values an Optuna study chose on the train part.

    `build(values)` returns an unfitted model of the family with `values` (a mapping of space
    keys to values; `{}`: the params file's own) in place of the params file's; `space` maps
    each key to its search space. `trials` per study, scored at `horizon` on `inner_windows`
    folds of `inner_test_size` days; `seed` seeds every study's sampler.
    """

    def __init__(
        self,
        build: Callable[[dict], Model],
        space: dict,
        trials: int = 20,
        inner_windows: int = 2,
        inner_test_size: int = 250,
        horizon: int = 1,
        seed: int = 0,
    ):
        self.build = build
        self.space = space
        self.trials = trials
        self.inner_windows = inner_windows
        self.inner_test_size = inner_test_size
        self.horizon = horizon
        self.seed = seed

    @functools.cached_property
    def default(self) -> Model:
        """The family's unfitted model at the params file's values: what the loop asks of a
        model before it is fitted (horizons, intervals, inputs) is its."""
        return self.build({})

    @property
    def horizons(self) -> tuple[int, ...]:
        return tuple(self.default.horizons)

    @property
    def own_intervals(self) -> bool:
        return self.default.own_intervals

    @property
    def levels(self) -> tuple[float, ...]:
        return tuple(self.default.levels)

    @property
    def inputs_from(self) -> str:
        return self.default.inputs_from

    def input_columns(self) -> list[str]:
        return self.default.input_columns()

    def prepare(self) -> None:
        import optuna  # noqa: F401

        self.default.prepare()

    def _inputs(self, model, X):
        """`X` for a candidate that reads the columns the loop passes; else `None`, from which a
        window model builds its windows from the prices (the same numbers, any `n_lags`)."""
        return X if X is not None and model.input_columns() == self.input_columns() else None

    def fit(self, y: np.ndarray, X: np.ndarray | None = None) -> Tuned:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # a line per trial otherwise
        start = time.perf_counter()
        y = np.asarray(y, dtype="float64")
        days = np.arange(len(y), dtype="int64").view("datetime64[ns]")  # positions stand in for dates
        folds = inner_folds(len(y), self.inner_windows, self.inner_test_size)
        naive = Naive(self.horizons)
        with_x, without_x = Series("inner", days, np.exp(y), X), Series("inner", days, np.exp(y))
        baseline = np.concatenate([squared_errors(forecast_fold(naive, without_x, f)[0], self.horizon) for f in folds])
        fits = 0

        def objective(trial) -> float:
            nonlocal fits
            values = {key: suggest(trial, key, space) for key, space in self.space.items()}
            errors = []
            for fold in folds:
                candidate = self.build(values)
                series = with_x if self._inputs(candidate, X) is not None else without_x
                errors.append(squared_errors(forecast_fold(candidate, series, fold)[0], self.horizon))
                fits += 1
            return float(np.sqrt(np.mean(np.concatenate(errors))) / np.sqrt(np.mean(baseline)))

        study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=self.seed))
        study.optimize(objective, n_trials=self.trials, n_jobs=1)
        done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if not done:
            raise UserError(f"tune.trials: none of {self.trials} trials on a train part of {len(y)} days finished")
        best = min(done, key=lambda t: (t.value, t.number))  # ties: the earliest trial
        self.chosen_ = {key: _decoded(best.params[key], space) for key, space in self.space.items()}
        chosen = self.build(self.chosen_)
        self.best_ = chosen.fit(y, self._inputs(chosen, X))
        self.trials_ = [
            {
                "number": t.number,
                "values": {key: _decoded(t.params[key], space) for key, space in self.space.items()},
                "score": t.value,
                "state": t.state.name.lower(),
            }
            for t in study.trials
        ]
        self.score_, self.fits_ = float(best.value), fits + 1
        self.seconds_ = time.perf_counter() - start
        return self

    def predict(self, y: np.ndarray, n: int, X: np.ndarray | None = None) -> np.ndarray:
        return self.best_.predict(y, n, self._inputs(self.best_, X))

    def predict_interval(self, y: np.ndarray, n: int, X: np.ndarray | None = None) -> np.ndarray | None:
        return self.best_.predict_interval(y, n, self._inputs(self.best_, X))

    def summary(self) -> dict:
        """What the study of the last fit chose and tried, without timings (the same bytes run
        after run): the chosen values, their inner score, the fits it took, every trial."""
        return {"chosen": self.chosen_, "score": self.score_, "fits": self.fits_, "trials": self.trials_}


def _decoded(value, space: dict):
    return json.loads(value) if "choices" in space else value
