"""The typed params loader: defaults, types, and one clear message per bad key."""

import pytest
from pydantic import ValidationError

from pipeline.cli import UserError
from pipeline.params import LstmParams, Params, SplitParams, load_params, parse_params


def test_committed_params_file_loads_and_matches_defaults_where_documented():
    params = load_params("params.yaml")
    assert params.data.source == "sample" and params.data.datasets == ["sp500"]
    assert params.features.n_lags == 60 and params.features.target == "log_return"
    split = params.split
    assert (split.n_windows, split.test_size, split.gap, split.max_train_size) == (5, 250, 0, None)


def test_empty_mapping_gives_defaults():
    assert parse_params({}) == Params()


def test_null_section_gives_defaults():
    assert parse_params({"lstm": None, "split": None}) == Params()


def test_params_are_frozen():
    params = parse_params({})
    with pytest.raises(ValidationError, match="frozen"):
        params.features.n_lags = 3
    with pytest.raises(ValidationError, match="frozen"):
        params.lstm = LstmParams()
    assert params.features.n_lags == 60


def test_int_is_converted_where_a_float_is_expected():
    learning_rate = parse_params({"lstm": {"learning_rate": 1}}).lstm.learning_rate
    assert learning_rate == 1.0 and type(learning_rate) is float


def test_sections_dump_to_json_ready_dicts():
    params = parse_params({"split": {"max_train_size": 30}, "lstm": {"units": [8, 4]}})
    assert params.split.model_dump(mode="json") == {"n_windows": 5, "test_size": 250, "gap": 0, "max_train_size": 30}
    assert params.lstm.model_dump(mode="json")["units"] == [8, 4]


def test_sections_built_in_code_are_validated_too():
    assert SplitParams(n_windows=3, test_size=7).n_windows == 3
    with pytest.raises(ValidationError, match="n_windows\n  Input should be greater than or equal to 2"):
        SplitParams(n_windows=1)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"featurez": {}}, "featurez: unknown section"),
        ({"features": {"nlags": 3}}, "features.nlags: unknown key"),
        ({"features": {"n_lags": "60"}}, "features.n_lags: expected an integer"),
        ({"features": {"n_lags": True}}, "features.n_lags: expected an integer, got True"),
        ({"features": {"n_lags": 2.5}}, "features.n_lags: expected an integer, got 2.5"),
        ({"features": {"n_lags": 2.0}}, "features.n_lags: expected an integer, got 2.0"),
        ({"lstm": {"dropout": False}}, "lstm.dropout: expected a number, got False"),
        ({"lstm": {"learning_rate": "0.01"}}, "lstm.learning_rate: expected a number, got '0.01'"),
        ({"lstm": {"warm_start": 1}}, "lstm.warm_start: expected true or false, got 1"),
        ({"lstm": {"units": ["a"]}}, "lstm.units: expected a list of integers, got ['a']"),
        ({"lstm": {"units": 32}}, "lstm.units: expected a list of integers, got 32"),
        ({"lstm": {"foo": 1}}, "lstm.foo: unknown key (expected one of cells, units, dropout,"),
        ({"mlflow": {"experiment": 5}}, "mlflow.experiment: expected a string, got 5"),
        ({"data": {"datasets": "sp500"}}, "data.datasets: expected a list of strings, got 'sp500'"),
        ({"features": {"n_lags": 0}}, "features.n_lags: must be >= 1, got 0"),
        ({"features": {"target": "returns"}}, "features.target: expected one of log_return, price"),
        ({"features": {"covariates": "volume"}}, "features.covariates: expected a list of strings, got 'volume'"),
        ({"features": {"covariates": ["volume", "volume"]}}, "features.covariates: lists volume twice"),
        (
            {"features": {"covariates": ["volume"]}, "sklearn": {"strategy": "recursive"}},
            "sklearn.strategy: recursive cannot read features.covariates ['volume']",
        ),
        (
            {"features": {"covariates": ["month"]}, "rnn_scratch": {"strategy": "recursive"}},
            "rnn_scratch.strategy: recursive cannot read features.covariates ['month']",
        ),
        ({"arima": {"exog": True}}, "arima.exog: true needs at least one covariate in features.covariates"),
        ({"arima": {"exog": 1}}, "arima.exog: expected true or false, got 1"),
        ({"split": {"n_windows": -1}}, "split.n_windows: must be >= 2, got -1"),
        ({"split": {"n_windows": 1}}, "split.n_windows: must be >= 2, got 1"),
        ({"split": {"test_size": 0}}, "split.test_size: must be >= 1"),
        ({"split": {"max_train_size": 1}}, "split.max_train_size: must be >= 2, got 1"),
        ({"lstm": {"learning_rate": 0}}, "lstm.learning_rate: must be > 0, got 0"),
        ({"lstm": {"epochs": 0}}, "lstm.epochs: must be >= 1, got 0"),
        ({"evaluate": {"zoom_days": 1}}, "evaluate.zoom_days: must be >= 2, got 1"),
        ({"evaluate": {"seed": -1}}, "evaluate.seed: must be >= 0, got -1"),
        ({"evaluate": {"seed": 1.5}}, "evaluate.seed: expected an integer, got 1.5"),
        ({"evaluate": {"strategy": "short"}}, "evaluate.strategy: expected one of long_flat, long_short, got 'short'"),
        ({"evaluate": {"cost_bps": -5}}, "evaluate.cost_bps: must be >= 0, got -5"),
        ({"evaluate": {"cost_bps": "5"}}, "evaluate.cost_bps: expected a number, got '5'"),
        ({"evaluate": {"max_series_figures": -1}}, "evaluate.max_series_figures: must be >= 0, got -1"),
        ({"evaluate": {"max_series_figures": True}}, "evaluate.max_series_figures: expected an integer, got True"),
        ({"mlflow": {"experiment": " "}}, "mlflow.experiment: must not be empty"),
        ({"parallel": {"scheduler_address": "tcp://h:8786"}}, "parallel.scheduler_address: is used only with"),
        ({"split": {"max_train_size": "all"}}, "split.max_train_size: expected an integer or null"),
        ({"split": {"n_windows": 0}}, "split.n_windows: must be >= 2, got 0"),
        ({"foo": {}}, "foo: unknown section (expected one of data, features, forecast, intervals, split,"),
        ({"sklearn": {"estimator": "xgboost"}}, "sklearn.estimator: expected one of ridge"),
        ({"sklearn": {"params": [1]}}, "sklearn.params: expected a mapping"),
        ({"sklearn": {"params": {1: 2}}}, "sklearn.params: expected a mapping of names to values"),
        ({"sklearn": {"params": {"random_state": 1}}}, "sklearn.params: set random_state through sklearn.random_state"),
        ({"lstm": {"cells": ["transformer"]}}, "lstm.cells: expected a list of lstm, gru, simple_rnn"),
        ({"lstm": {"cells": "gru"}}, "lstm.cells: expected a list of lstm, gru, simple_rnn, got 'gru'"),
        ({"lstm": {"cells": []}}, "lstm.cells: must list at least one of lstm, gru, simple_rnn"),
        ({"lstm": {"cells": ["gru", "gru"]}}, "lstm.cells: lists a cell twice"),
        ({"rnn_scratch": {"epochs": 0}}, "rnn_scratch.epochs: must be >= 1, got 0"),
        ({"rnn_scratch": {"hidden": 0}}, "rnn_scratch.hidden: must be >= 1, got 0"),
        ({"rnn_scratch": {"clip": 0}}, "rnn_scratch.clip: must be > 0, got 0"),
        ({"rnn_scratch": {"learning_rate": -1}}, "rnn_scratch.learning_rate: must be > 0, got -1"),
        ({"rnn_scratch": {"validation_fraction": 1.0}}, "rnn_scratch.validation_fraction: must be between 0 and 1"),
        ({"rnn_scratch": {"strategy": "direct"}}, "rnn_scratch.strategy: expected one of mimo, recursive"),
        ({"rnn_scratch": {"cell": "lstm"}}, "rnn_scratch.cell: unknown key (expected one of hidden, epochs,"),
        ({"lstm": {"units": []}}, "lstm.units: must list at least one layer size"),
        ({"lstm": {"units": [8, 0]}}, "lstm.units: every layer needs >= 1 unit"),
        ({"lstm": {"dropout": 1.5}}, "lstm.dropout: must be in [0, 1)"),
        ({"arima": {"order": [1, 1]}}, "arima.order: must be auto or [p, d, q]"),
        ({"arima": {"order": "best"}}, "arima.order: expected auto or a list of integers, got 'best'"),
        ({"arima": {"order": [1, "a", 1]}}, "arima.order: expected auto or a list of integers, got [1, 'a', 1]"),
        ({"arima": {"order": [1, 3, 1]}}, "arima.order: d must be 0, 1 or 2"),
        ({"forecast": {"horizons": [0, 5]}}, "forecast.horizons: every horizon must be >= 1 trading day"),
        ({"forecast": {"horizons": [-1]}}, "forecast.horizons: every horizon must be >= 1 trading day"),
        ({"forecast": {"horizons": [5, 5]}}, "forecast.horizons: must be strictly increasing, got [5, 5]"),
        ({"forecast": {"horizons": [20, 1]}}, "forecast.horizons: must be strictly increasing"),
        ({"forecast": {"horizons": []}}, "forecast.horizons: must list at least one horizon"),
        ({"forecast": {"horizons": 5}}, "forecast.horizons: expected a list of integers, got 5"),
        ({"forecast": {"horizons": [1, 250]}}, "forecast.horizons: 250 must be shorter than split.test_size (250)"),
        (
            {"forecast": {"horizons": [1, 5]}, "split": {"test_size": 5}},
            "forecast.horizons: 5 must be shorter than split.test_size (5)",
        ),
        ({"forecast": {"levels": [95, 80]}}, "forecast.levels: must be strictly increasing, got [95.0, 80.0]"),
        ({"forecast": {"levels": [80, 100]}}, "forecast.levels: every level must be between 0 and 100 (percent)"),
        ({"forecast": {"levels": []}}, "forecast.levels: must list at least one level"),
        ({"forecast": {"levels": "80"}}, "forecast.levels: expected a list of numbers, got '80'"),
        ({"intervals": {"method": "bootstrap"}}, "intervals.method: expected one of conformal, aci, model, none"),
        ({"intervals": {"gamma": 0}}, "intervals.gamma: must be > 0, got 0"),
        ({"intervals": {"gamma": 1.5}}, "intervals.gamma: must be < 1, got 1.5"),
        ({"arima": {"coverage": 0.9}}, "arima.coverage: unknown key (expected one of order, max_p, max_q, d, exog)"),
        ({"sklearn": {"strategy": "mimo"}}, "sklearn.strategy: expected one of direct, recursive, got 'mimo'"),
        ({"lstm": {"strategy": "direct"}}, "lstm.strategy: expected one of mimo, recursive, got 'direct'"),
        ({"data": {"source": "csv"}}, "data.path: is required when data.source is csv"),
        ({"data": {"datasets": ["dax"]}}, "data.datasets: unknown data set 'dax'"),
        ({"data": {"start": "2020-13-01"}}, "data.start: not an ISO date"),
        ({"data": {"start": "2020-01-02", "end": "2019-01-01"}}, "data.end: 2019-01-01 is before data.start"),
        ({"parallel": {"n_jobs": 0}}, "parallel.n_jobs: must be >= 1 or -1"),
        ({"features": [1, 2]}, "features: expected a mapping of keys, got list"),
        ([1, 2], "expected a mapping of sections at the top level"),
    ],
)
def test_bad_params_name_the_key(raw, message):
    with pytest.raises(UserError) as err:
        parse_params(raw, source="params.yaml")
    assert str(err.value).startswith("params.yaml: ")
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(UserError, match="file not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("features: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_params(bad)
    listed = tmp_path / "list.yaml"
    listed.write_text("- features\n")
    with pytest.raises(UserError, match="list.yaml: expected a mapping of sections"):
        load_params(listed)
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing set\nlstm:\n")
    assert load_params(empty) == Params()
