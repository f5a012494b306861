"""The typed params loader: defaults, types, and one clear message per bad key."""

import pytest

from pipeline.cli import UserError
from pipeline.params import Params, load_params, parse_params


def test_committed_params_file_loads_and_matches_defaults_where_documented():
    params = load_params("params.yaml")
    assert params.data.source == "sample" and params.data.datasets == ["sp500"]
    assert params.features.n_lags == 60 and params.features.target == "log_return"
    assert (params.split.n_windows, params.split.test_size, params.split.gap, params.split.max_train_size) == (5, 250, 0, None)


def test_empty_mapping_gives_defaults():
    assert parse_params({}) == Params()


def test_params_are_frozen():
    params = parse_params({})
    with pytest.raises(AttributeError):
        params.features.n_lags = 3


def test_int_is_accepted_where_a_float_is_expected():
    assert parse_params({"lstm": {"learning_rate": 1}}).lstm.learning_rate == 1.0


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"featurez": {}}, "featurez: unknown section"),
        ({"features": {"nlags": 3}}, "features.nlags: unknown key"),
        ({"features": {"n_lags": "60"}}, "features.n_lags: expected an integer"),
        ({"features": {"n_lags": True}}, "features.n_lags: expected an integer"),
        ({"features": {"n_lags": 0}}, "features.n_lags: must be >= 1, got 0"),
        ({"features": {"target": "returns"}}, "features.target: expected one of log_return, price"),
        ({"split": {"n_windows": -1}}, "split.n_windows: must be >= 2, got -1"),
        ({"split": {"n_windows": 1}}, "split.n_windows: must be >= 2, got 1"),
        ({"split": {"test_size": 0}}, "split.test_size: must be >= 1"),
        ({"split": {"max_train_size": "all"}}, "split.max_train_size: expected an integer or null"),
        ({"sklearn": {"estimator": "xgboost"}}, "sklearn.estimator: expected one of ridge"),
        ({"sklearn": {"params": [1]}}, "sklearn.params: expected a mapping"),
        ({"lstm": {"cell": "transformer"}}, "lstm.cell: expected one of lstm, gru, simple_rnn"),
        ({"lstm": {"units": []}}, "lstm.units: must list at least one layer size"),
        ({"lstm": {"units": [8, 0]}}, "lstm.units: every layer needs >= 1 unit"),
        ({"lstm": {"dropout": 1.5}}, "lstm.dropout: must be in [0, 1)"),
        ({"arima": {"order": [1, 1]}}, "arima.order: must be auto or [p, d, q]"),
        ({"arima": {"order": "best"}}, "arima.order: expected auto or a list of an integer"),
        ({"arima": {"order": [1, 3, 1]}}, "arima.order: d must be 0, 1 or 2"),
        ({"data": {"source": "csv"}}, "data.path: is required when data.source is csv"),
        ({"data": {"datasets": ["dax"]}}, "data.datasets: unknown data set 'dax'"),
        ({"data": {"start": "2020-13-01"}}, "data.start: not an ISO date"),
        ({"data": {"start": "2020-01-02", "end": "2019-01-01"}}, "data.end: 2019-01-01 is before data.start"),
        ({"parallel": {"n_jobs": 0}}, "parallel.n_jobs: must be >= 1 or -1"),
        ({"features": [1, 2]}, "features: expected a mapping of keys"),
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
