"""Nested tuning: the search spaces' params errors, the outer-test canary, the same choices and
bytes from the same params, and a tiny tuned pipeline end to end (reports, leaderboard, MLflow)."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import copy_repo, git_init, run_in

from pipeline.cli import UserError
from pipeline.ingest import synthetic_prices
from pipeline.models.regressor import make_estimator
from pipeline.params import SplitParams, parse_params
from pipeline.split import make_folds
from pipeline.train import build_models, interval_spec, tuned_models
from pipeline.tuning import Tuned, inner_folds
from pipeline.walkforward import walk_forward

TUNE = {"trials": 3, "inner_windows": 2, "inner_test_size": 20}
SMALL = {
    "features": {"n_lags": 5},
    "forecast": {"horizons": [1, 5]},
    "split": {"n_windows": 2, "test_size": 30},
    "lstm": {"units": [2], "epochs": 2},
    "tune": {
        **TUNE,
        "sklearn": {"alpha": {"low": 0.01, "high": 1000.0, "log": True}, "n_lags": {"choices": [2, 5, 8]}},
        "lstm": {"units": {"choices": [[2], [3]]}, "n_lags": {"choices": [3, 5]}},
    },
}


def _tuned(stage, overrides=None):
    params = parse_params({**SMALL, **(overrides or {})})
    (model,) = tuned_models(stage, params, build_models(stage, params)).values()
    return model, params


def _run(stage, prices, overrides=None):
    model, params = _tuned(stage, overrides)
    folds = make_folds(prices, SplitParams(n_windows=2, test_size=30))
    table, fitted = walk_forward(model, prices, folds, intervals=interval_spec(params))
    return table, {(uid, fold): fit.summary() for uid, fold, fit in fitted}


@pytest.fixture(scope="module")
def prices():
    return synthetic_prices(n_series=1, n_days=300, seed=7)


@pytest.mark.parametrize(
    ("tune", "message"),
    [
        ({"lstm": {"dropout": {"low": 0.0, "high": 1.5}}}, "tune.lstm.dropout: 1.5 is not a valid value: must be in"),
        ({"lstm": {"dropout": {"low": 0.3, "high": 0.1}}}, "tune.lstm.dropout: low must be below high"),
        ({"lstm": {"learning_rate": {"low": 0.0, "high": 0.1, "log": True}}}, "tune.lstm.learning_rate: a log scale"),
        ({"lstm": {"cells": {"choices": ["gru"]}}}, "tune.lstm.cells: not a tunable key of lstm"),
        ({"lstm": {"units": {"choices": [[0]]}}}, "tune.lstm.units: [0] is not a valid value"),
        ({"lstm": {"units": {"choices": []}}}, "tune.lstm.units: choices must be a non-empty list"),
        ({"lstm": {"epochs": {"low": 1.5, "high": 3}}}, "tune.lstm.epochs: 1.5 is not a valid value"),
        ({"lstm": {"dropout": {"lo": 0, "high": 0.2}}}, "tune.lstm.dropout: expected {low: a, high: b}"),
        ({"lstm": {"dropout": 0.1}}, "tune.lstm.dropout: expected {low: a, high: b}"),
        ({"sklearn": {"n_lags": {"choices": [0, 5]}}}, "tune.sklearn.n_lags: 0 is not a valid value"),
        ({"arima": {"order": {"choices": [[1, 1, 1]]}}}, "tune.arima.order: not a tunable key of arima"),
        ({"horizon": 2}, "tune.horizon: 2 is not one of forecast.horizons"),
        ({"models": ["naive"]}, "tune.models: expected a list of arima, sklearn, lstm, rnn_scratch"),
        ({"trials": -1}, "tune.trials: must be >= 0"),
    ],
)
def test_bad_spaces_are_one_line_errors_naming_the_key(tune, message):
    with pytest.raises(UserError) as err:
        parse_params({"tune": tune})
    assert str(err.value).startswith(f"params: {message}"), str(err.value)
    assert "\n" not in str(err.value)


def test_lags_are_not_tuned_beside_covariates():
    # The windows table holds features.n_lags lags of each channel: other lags would drop them.
    tune = {"trials": 2, "models": ["lstm"]}
    with pytest.raises(UserError, match=r"^params: tune\.lstm\.n_lags: cannot be tuned with features\.covariates"):
        parse_params({"tune": tune, "features": {"covariates": ["volume"]}})
    assert parse_params(
        {"tune": {**tune, "lstm": {"dropout": {"low": 0.0, "high": 0.2}}}, "features": {"covariates": ["volume"]}}
    )


def test_an_estimator_argument_the_estimator_lacks_names_its_tune_key():
    with pytest.raises(UserError, match=r"^tune\.sklearn\.max_depth: 2 is not a valid value \(sklearn\.params\."):
        _tuned("sklearn", {"tune": {**TUNE, "sklearn": {"max_depth": {"low": 2, "high": 4}}}})


def test_ridge_alpha_is_one_penalty_in_place_of_the_grid():
    assert make_estimator("ridge", {"alpha": 2.0}, 0).alphas == [2.0]
    with pytest.raises(UserError, match=r"^sklearn\.params\.alpha: give ridge one of alpha"):
        make_estimator("ridge", {"alpha": 2.0, "alphas": [1.0]}, 0)


def test_off_by_default_and_for_stages_not_listed():
    params = parse_params({})
    assert params.tune.trials == 0
    for stage in ("arima", "sklearn", "lstm", "rnn_scratch"):
        models = build_models(stage, params)
        assert tuned_models(stage, params, models) is models
    listed = parse_params({"tune": {"trials": 2, "models": ["sklearn"]}})
    assert not isinstance(tuned_models("lstm", listed, build_models("lstm", listed))["lstm"], Tuned)


def test_inner_folds_tile_the_end_of_the_train_part():
    folds = inner_folds(100, 2, 20)
    assert [(f.history_start, f.train_end, f.test_start, f.test_end) for f in folds] == [
        (0, 59, 60, 79),
        (0, 79, 80, 99),
    ]
    with pytest.raises(UserError, match=r"^tune\.inner_test_size: 2 inner folds x 45 days leave 10 of a train part"):
        inner_folds(100, 2, 45)


def test_the_outer_test_part_never_reaches_a_study_and_the_train_part_does(prices):
    """The canary: every value after the first fold's train part changed (both folds' test days)
    leaves every chosen value and trial score of the first fold unchanged, and the last fold's
    too where its own train part is unchanged; changing values inside the train parts changes
    what the studies chose, so the check can fail."""
    table, chosen = _run("sklearn", prices)
    first_test = table[table.fold == 0].ds.min()
    changed = prices.copy()
    after = changed.ds >= first_test
    changed.loc[after, "close"] *= np.exp(np.random.default_rng(0).normal(0, 0.05, after.sum()))
    _, chosen_changed = _run("sklearn", changed)
    (uid,) = prices.unique_id.unique()
    assert chosen_changed[uid, 0] == chosen[uid, 0]
    assert chosen_changed[uid, 1] != chosen[uid, 1]  # its train part holds fold 0's test days
    inside = prices.copy()
    train = inside.ds < first_test
    inside.loc[train, "close"] *= np.exp(np.random.default_rng(1).normal(0, 0.05, train.sum()))
    _, chosen_inside = _run("sklearn", inside)
    assert chosen_inside[uid, 0]["chosen"] != chosen[uid, 0]["chosen"]


def test_the_same_params_choose_the_same_trials_and_write_the_same_bytes(prices, tmp_path):
    runs = [_run("lstm", prices) for _ in range(2)]
    assert runs[0][1] == runs[1][1]
    for k, (table, _) in enumerate(runs):
        table.to_parquet(tmp_path / f"{k}.parquet")
    assert (tmp_path / "0.parquet").read_bytes() == (tmp_path / "1.parquet").read_bytes()
    summary = next(iter(runs[0][1].values()))
    assert len(summary["trials"]) == 3 and summary["fits"] == 3 * 2 + 1
    assert summary["chosen"] == min(summary["trials"], key=lambda t: t["score"])["values"]
    assert set(summary["chosen"]) == {"units", "n_lags"}


TINY = {
    "data": {"start": "2017-01-01"},
    "features": {"n_lags": 5},
    "forecast": {"horizons": [1, 5]},
    "split": {"n_windows": 2, "test_size": 20},
    "parallel": {"n_jobs": 2},
    "lstm": {"units": [2], "epochs": 2},
    "rnn_scratch": {"hidden": 2, "epochs": 2},
    "diagnostics": {"seasonal_period": 20},
    "tune": {
        "trials": 2,
        "inner_windows": 1,
        "inner_test_size": 20,
        "lstm": {"units": {"choices": [[2], [3]]}, "learning_rate": {"low": 0.001, "high": 0.01, "log": True}},
        "sklearn": {"alpha": {"low": 0.1, "high": 1000.0, "log": True}},
    },
}


def test_a_tiny_tuned_pipeline_end_to_end(tmp_path):
    """`dvc repro` with 2 trials tunes sklearn and lstm on two worker processes: their reports, the
    leaderboard's tuning section, the trials and chosen values in MLflow. (The same bytes twice:
    `test_the_same_params_choose_the_same_trials_and_write_the_same_bytes`.)"""
    repo = copy_repo(tmp_path / "repo")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for section, values in TINY.items():
        params[section].update(values)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git_init(repo)
    result = run_in(repo, "dvc", "repro", timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    reports = {m: json.loads((repo / f"reports/tuning/{m}.json").read_text()) for m in ("sklearn", "lstm", "arima")}
    assert reports["arima"] == {"model": "arima", "tuned": False}
    for name in ("sklearn", "lstm"):
        folds = reports[name]["series"]["SP500"]
        assert list(folds) == ["0", "1"] and all(len(f["trials"]) == 2 and f["fits"] == 3 for f in folds.values())
        seconds = json.loads((repo / f"reports/tuning/{name}.seconds.json").read_text())
        assert seconds["stage_seconds"] > 0
    manifest = json.loads((repo / "models/lstm/model.json").read_text())
    assert "tune" in manifest["params_sections"]
    chosen = reports["lstm"]["series"]["SP500"]["1"]["chosen"]
    assert manifest["series"]["SP500"].get("params", manifest["params"])["units"] == chosen["units"]
    board = (repo / "reports/leaderboard.md").read_text()
    assert "## Tuning" in board and "**lstm** was tuned" in board and "**sklearn** was tuned" in board

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{repo}/mlflow.db")
    experiment = client.get_experiment_by_name("stockcast")
    (run,) = client.search_runs([experiment.experiment_id], "tags.model = 'lstm'")
    assert run.data.params["tuned.SP500.fold_1.units"] == "[" + ", ".join(map(str, chosen["units"])) + "]"
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"tuning_trials.json", "tuning.json"}

    table = pd.read_parquet(repo / "data/predictions/lstm.parquet")
    assert not table.isna().any().any()


def test_a_tuned_window_model_reads_its_covariate_channels(prices):
    """With features.covariates a tuned model gets the windows table's channels (n_lags fixed):
    each chosen model reads them, and they change its forecasts."""
    from pipeline.covariates import covariate_table
    from pipeline.features import windows_table

    space = {**TUNE, "models": ["sklearn"], "sklearn": {"alpha": {"low": 0.01, "high": 1000.0, "log": True}}}
    folds = make_folds(prices, SplitParams(n_windows=2, test_size=30))
    tables = {}
    for covariates in ([], ["day_of_week"]):
        params = parse_params({**SMALL, "tune": space, "features": {"n_lags": 5, "covariates": covariates}})
        (model,) = tuned_models("sklearn", params, build_models("sklearn", params)).values()
        columns = model.input_columns()
        windows = windows_table(prices, 5, "log_return", covariate_table(prices, covariates), covariates)
        tables[tuple(covariates)], fitted = walk_forward(model, prices, folds, inputs=(windows, columns))
        assert all(fit.best_.input_columns() == columns for _, _, fit in fitted)
    assert "day_of_week_sin_lag_1" in columns
    assert not np.allclose(tables[()]["y_hat"], tables[("day_of_week",)]["y_hat"])
