"""Stages `naive`, `arima`, `sklearn`, `lstm`, `rnn_scratch`: walk-forward forecasts of one model family.

    python -m pipeline.train naive        # -> data/predictions/{naive,drift}.parquet, models/{naive,drift}/
    python -m pipeline.train arima        # params: arima.*            -> .../arima.parquet, models/arima/
    python -m pipeline.train sklearn      # params: sklearn.*, features.*  (reads data/windows.parquet)
    python -m pipeline.train lstm         # params: lstm.*, features.*: one table per cell in lstm.cells
    python -m pipeline.train lstm gru     # the one model `gru` of the stage (dvc.yaml runs a cell a stage)
    python -m pipeline.train rnn_scratch  # params: rnn_scratch.*, features.*: the NumPy vanilla RNN

Every family runs through the same loop (`pipeline.walkforward`) on the same folds and writes
the same table shape; the table's file stem is the model's name on the leaderboard. Each
series' last-fold model is saved under `models/<name>/` (`pipeline.models.store`), what the
forecast command and the tracking stage read. A model with gradients by lag (the recurrent nets,
ridge) has each series' last-fold profile in its table's metadata (`pipeline.gradients`).

With `tune.trials` above 0, the stages in `tune.models` tune their models per series and fold
inside each train part (`pipeline.tuning`) and write what was chosen and tried to
`reports/tuning/<name>.json` (timings beside it, in `<name>.seconds.json`); every model stage
writes an untuned report otherwise.
"""

from __future__ import annotations

import copy
import functools
import sys
import time

import joblib
import numpy as np

from pipeline import gradients, io, paths, tuning_report
from pipeline.cli import UserError, run
from pipeline.models import store
from pipeline.models.windowed import Windowed
from pipeline.parallel import parallel_backend, warm_up
from pipeline.params import TUNABLE, Params, load_params, parse_params
from pipeline.tuning import Tuned, check_space
from pipeline.walkforward import (
    Intervals,
    folds_from_json,
    next_half_widths,
    series_from_prices,
    walk_forward,
    with_inputs,
)

# stage -> the params sections its models depend on (beside the prices and folds): recorded
# with each model, and what dvc.yaml lists for the stage.
# (A tuned model's also include `tune`: `sections`.)
SECTIONS = {
    "naive": ("data", "forecast", "intervals", "split"),
    "arima": ("data", "forecast", "intervals", "split", "arima"),
    "sklearn": ("data", "features", "forecast", "intervals", "split", "sklearn"),
    "lstm": ("data", "features", "forecast", "intervals", "split", "lstm"),
    "rnn_scratch": ("data", "features", "forecast", "intervals", "split", "rnn_scratch"),
}


def tuned(stage: str, params: Params) -> bool:
    """Whether `stage` tunes its models (`tune.trials` above 0 and the stage in `tune.models`)."""
    return params.tune.trials > 0 and stage in params.tune.models


def sections(stage: str, params: Params) -> list[str]:
    """The params sections `stage`'s models depend on with these params."""
    return [*SECTIONS[stage], *(["tune"] if tuned(stage, params) else [])]


def with_values(stage: str, params: Params, values: dict) -> Params:
    """`params` with a trial's `values` (keys of `tune.<stage>`) in their sections: `n_lags` in
    `features`, sklearn's in `sklearn.params`, the others in the stage's own."""
    raw = copy.deepcopy(params.model_dump())
    for key, value in values.items():
        if key == "n_lags":
            raw["features"]["n_lags"] = value
        elif stage == "sklearn":
            raw["sklearn"]["params"][key] = value
        else:
            raw[stage][key] = value
    return parse_params(raw, source="tune")


def candidate(stage: str, name: str, params: Params, values: dict):
    """The unfitted model `name` of `stage` with a trial's `values` in place of the params file's."""
    return build_models(stage, with_values(stage, params, values))[name]


def tuned_models(stage: str, params: Params, models: dict) -> dict:
    """`models`, each wrapped in `tuning.Tuned` when the stage is tuned; unchanged otherwise."""
    if not tuned(stage, params):
        return models
    tune, space = params.tune, params.tune.space(stage)
    out = {}
    for name in models:
        build = functools.partial(candidate, stage, name, params)
        check_space(build, stage, space)
        out[name] = Tuned(build, space, tune.trials, tune.inner_windows, tune.inner_test_size, tune.horizon, tune.seed)
    return out


def build_models(stage: str, params: Params) -> dict:
    """The unfitted model(s) a stage runs, keyed by the name their table carries."""
    horizons = tuple(params.forecast.horizons)
    if stage == "naive":
        from pipeline.models.naive import Drift, Naive

        return {"naive": Naive(horizons), "drift": Drift(horizons)}
    if stage == "arima":
        from pipeline.models.arima import Arima

        p = params.arima
        return {
            "arima": Arima(
                order=p.order,
                max_p=p.max_p,
                max_q=p.max_q,
                d=p.d,
                levels=tuple(params.forecast.levels),
                horizons=horizons,
                covariates=tuple(params.features.covariates) if p.exog else (),
            )
        }
    if stage == "sklearn":
        from pipeline.models.regressor import Regressor, make_estimator

        p = params.sklearn
        estimator = make_estimator(p.estimator, p.params, p.random_state)
        return {"sklearn": Regressor(estimator, strategy=p.strategy, **window_params(params))}
    if stage == "rnn_scratch":
        from pipeline.models.scratch_rnn import ScratchRnn

        # The section's keys are the constructor's keyword arguments, one for one.
        return {"rnn_scratch": ScratchRnn(**params.rnn_scratch.model_dump(), **window_params(params))}
    from pipeline.models.recurrent import Recurrent

    p = params.lstm
    # Every lstm key but `cells` is a constructor argument; one model per cell, named after it:
    # the tables lstm, gru and simple_rnn side by side.
    shared = {**p.model_dump(exclude={"cells"}), "units": tuple(p.units)}
    return {cell: Recurrent(cell=cell, **shared, **window_params(params)) for cell in p.cells}


def window_params(params: Params) -> dict:
    """What every window model takes from `features` and `forecast`."""
    f = params.features
    return {
        "n_lags": f.n_lags,
        "target": f.target,
        "horizons": tuple(params.forecast.horizons),
        "covariates": tuple(f.covariates),
    }


def prepare(stage: str, params: Params) -> None:
    """What a worker does before its first task: import the stage's model libraries (and Optuna's)."""
    for model in tuned_models(stage, params, build_models(stage, params)).values():
        model.prepare()


def interval_spec(params: Params) -> Intervals | None:
    """How the loop makes prediction intervals (`intervals.*`, `forecast.levels`); `None` for none."""
    if params.intervals.method == "none":
        return None
    return Intervals(params.intervals.method, tuple(params.forecast.levels), params.intervals.gamma)


def interval_metadata(model, spec: Intervals | None) -> dict | None:
    """What a table's metadata and a manifest say of its intervals: method, levels, gamma."""
    if spec is None:
        return None
    method = spec.label(model)
    return {"method": method, "levels": list(spec.levels), "gamma": spec.gamma if method == "aci" else None}


def describe(name: str, stage: str, fitted, intervals: dict | None = None, gradient_by_lag: dict | None = None) -> dict:
    """What the leaderboard says of a model beside its scores, stored in its table's metadata:
    the covariates it read, the trainable parameters of the last fold's model, by weight block
    and in total, how its intervals were made, and per series its last fold's gradient profile
    by lag (or null)."""
    counts = fitted.parameter_counts()
    return {
        "model": name,
        "stage": stage,
        "covariates": list(fitted.covariates),
        "n_params": int(sum(counts.values())),
        "parameter_counts": counts,
        "intervals": intervals,
        "gradient_by_lag": gradient_by_lag,
    }


def series_profile(model, y, n: int, X=None) -> list[float] | None:
    """The normalised gradient profile by lag of a fitted window model over the windows of the
    last `n` cutoffs of log prices `y` (the rows of its inputs `X`, with covariates;
    `pipeline.gradients`); `None` without `lag_gradients`."""
    windows = gradients.forecast_windows(y, n, model.n_lags, model.target) if X is None else X[len(y) - n : len(y)]
    lag_gradients = model.lag_gradients(windows)
    return None if lag_gradients is None else [float(v) for v in gradients.normalised_profile(lag_gradients)]


def gradient_profiles(
    fitted: list[tuple[str, int, object]], prices, folds: dict, n_jobs: int = 1, inputs=None
) -> dict[str, list[float]] | None:
    """Per series, `series_profile` of its last fold's model over that fold's test windows;
    `None` for a model without gradients by lag. `inputs` is what `walk_forward` read (the
    features table and its columns), or `None`. Computed on the stage's workers (the joblib
    backend in effect), where the model's libraries are already imported: Keras and JAX would
    add 2 s to this process."""
    series = series_from_prices(prices)
    if inputs is not None:
        series = with_inputs(series, *inputs)
    by_key = {(f.unique_id, f.fold): f for f in folds_from_json(folds, series)}
    last = {uid: (model, by_key[uid, fold]) for uid, fold, model in fitted}  # folds come in order
    if not all(isinstance(model, Windowed) for model, _ in last.values()):
        return None
    profiles = joblib.Parallel(n_jobs=n_jobs)(
        joblib.delayed(series_profile)(
            model,
            np.log(series[uid].price[: fold.test_end + 1]),
            fold.test_end - fold.test_start + 1,
            None if series[uid].inputs is None or not model.covariates else series[uid].inputs[: fold.test_end + 1],
        )
        for uid, (model, fold) in last.items()
    )
    return None if None in profiles else dict(zip(last, profiles, strict=True))


def saved_models(
    name: str, stage: str, fitted: list[tuple[str, int, object]], intervals: dict | None = None, used=None
) -> tuple[dict, dict]:
    """(manifest, {series: (fold, model)}) of `models/<name>/` from `walk_forward`'s fitted
    models; `used`: the params sections they depend on (the stage's `SECTIONS` by default)."""
    last, curves = {}, {}
    for uid, fold, model in fitted:
        last[uid] = (fold, model)  # folds come in order: a series' last fold wins
        curves.setdefault(uid, {})[fold] = model.history()
    return store.manifest(name, stage, list(used or SECTIONS[stage]), last, curves, intervals), last


def main() -> None:
    if len(sys.argv) not in (2, 3) or sys.argv[1] not in SECTIONS:
        raise UserError(f"usage: python -m pipeline.train {{{'|'.join(SECTIONS)}}} [model]")
    stage = sys.argv[1]
    params = load_params()
    names = list(build_models(stage, params))
    if len(sys.argv) == 3 and sys.argv[2] not in names:
        raise UserError(f"pipeline.train {stage}: no model {sys.argv[2]!r} (this stage runs {', '.join(names)})")
    with parallel_backend(params.parallel):  # one pool or cluster for all of the stage's models
        warming = warm_up(functools.partial(prepare, stage, params), params.parallel.n_jobs)
        prices = io.read_table(paths.PRICES, ["unique_id", "ds"])
        folds = io.read_json(paths.FOLDS)
        models = build_models(stage, params)
        if len(sys.argv) == 3:
            models = {sys.argv[2]: models[sys.argv[2]]}
        models = tuned_models(stage, params, models)
        for _ in warming:
            pass
        spec = interval_spec(params)
        for name, model in models.items():
            start = time.perf_counter()
            columns = model.input_columns()
            table_path = paths.COVARIATES if model.inputs_from == "covariates" else paths.WINDOWS
            inputs = (io.read_table(table_path, ["unique_id", "ds", *columns]), columns) if columns else None
            table, fitted = walk_forward(
                model, prices, folds, params.parallel.n_jobs, label=name, inputs=inputs, intervals=spec
            )
            if isinstance(model, Tuned):
                report = tuning_report.report(name, params.tune, model.space, fitted)
                clock = tuning_report.seconds(name, fitted, time.perf_counter() - start)
                fitted = [(uid, fold, fit.best_) for uid, fold, fit in fitted]  # the chosen models
            else:
                report = clock = tuning_report.untuned(name)
            intervals = interval_metadata(model, spec)
            calibration = dict(intervals or {})
            if spec is not None and not spec.own(model):  # a forecast from the last day needs its half-widths
                calibration["half_widths"] = next_half_widths(table, spec)
            manifest, last = saved_models(name, stage, fitted, calibration or None, sections(stage, params))
            profiles = gradient_profiles(fitted, prices, folds, params.parallel.n_jobs, inputs)
            description = describe(name, stage, fitted[-1][2], intervals, profiles)
            io.write_table(table, paths.predictions(name), metadata=description)
            store.write(paths.model_directory(name), manifest, last)
            if stage in TUNABLE:
                io.write_json(report, paths.tuning(name))
                io.write_json(clock, paths.tuning_seconds(name))
            print(f"{stage}: {len(table)} forecasts -> {paths.predictions(name)}, {paths.model_directory(name)}/")


if __name__ == "__main__":
    run(main)
