"""The model stages: which models each builds, and the same bytes from serial and parallel runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline import io
from pipeline.cli import UserError
from pipeline.gradients import forecast_windows, normalised_profile
from pipeline.ingest import synthetic_prices
from pipeline.models.arima import Arima
from pipeline.models.naive import Naive
from pipeline.models.recurrent import Recurrent
from pipeline.models.scratch_rnn import ScratchRnn
from pipeline.parallel import parallel_backend
from pipeline.params import ParallelParams, SplitParams, parse_params
from pipeline.split import make_folds
from pipeline.train import build_models, describe, gradient_profiles
from pipeline.walkforward import series_from_prices, walk_forward

# Keras 3.15 copies its variables with np.array(variable), which numpy 2.4 flags; harmless.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

LAGS = 5


@pytest.fixture(scope="module")
def inputs():
    prices = synthetic_prices(n_series=1, n_days=300, seed=4)
    folds = make_folds(prices, SplitParams(n_windows=2, test_size=40))
    return prices, folds


# The net first: loky's workers outlive a test, and one that grows by Keras' few hundred MB
# after its first task is restarted as leaking memory (a warning and a second import).
@pytest.mark.parametrize(
    "model",
    [
        Recurrent(cell="lstm", units=(4,), epochs=2, batch_size=32, n_lags=LAGS, seed=5),
        Arima(order=[1, 1, 1]),
    ],
    ids=["lstm", "arima"],
)
def test_parallel_run_writes_the_serial_bytes(model, inputs, tmp_path):
    prices, folds = inputs
    tables = {}
    for n_jobs in (1, 2):
        with parallel_backend(ParallelParams(backend="loky", n_jobs=n_jobs)):
            table, fitted = walk_forward(model, prices, folds, n_jobs=n_jobs)
        io.write_table(table, tmp_path / f"{n_jobs}.parquet", metadata=describe("m", "test", fitted[-1][2]))
        tables[n_jobs] = table
    assert len(tables[1]) == 2 * 40 and not tables[1].isna().any().any()
    pd.testing.assert_frame_equal(tables[1], tables[2], check_exact=True)
    assert (tmp_path / "1.parquet").read_bytes() == (tmp_path / "2.parquet").read_bytes()


def test_each_stage_builds_its_models_from_params():
    params = parse_params(
        {
            "features": {"n_lags": 7, "target": "price"},
            "arima": {"order": [2, 1, 2]},
            "sklearn": {"estimator": "random_forest", "params": {"n_estimators": 10}, "random_state": 3},
            "lstm": {"cells": ["gru", "simple_rnn"], "units": [8, 4], "warm_start": True},
            "rnn_scratch": {"hidden": 5, "clip": 2.0, "strategy": "recursive"},
        }
    )
    assert list(build_models("naive", params)) == ["naive", "drift"]
    (arima,) = build_models("arima", params).values()
    assert arima.order == [2, 1, 2]
    (forest,) = build_models("sklearn", params).values()
    assert (forest.n_lags, forest.target) == (7, "price")
    assert (type(forest.estimator).__name__, forest.estimator.n_estimators, forest.estimator.random_state) == (
        "RandomForestRegressor",
        10,
        3,
    )
    nets = build_models("lstm", params)
    assert list(nets) == ["gru", "simple_rnn"]  # one model per cell, named after it
    assert [net.cell for net in nets.values()] == ["gru", "simple_rnn"]
    assert (nets["gru"].units, nets["gru"].warm_start, nets["gru"].n_lags, nets["gru"].target) == (
        (8, 4),
        True,
        7,
        "price",
    )
    (scratch,) = build_models("rnn_scratch", params).values()
    assert (scratch.hidden, scratch.clip, scratch.strategy, scratch.n_lags) == (5, 2.0, "recursive", 7)


def test_an_unknown_estimator_argument_names_its_key():
    params = parse_params({"sklearn": {"estimator": "ridge", "params": {"alphaa": 1.0}}})
    with pytest.raises(UserError, match=r"^sklearn\.params\.alphaa: not a parameter of Ridge"):
        build_models("sklearn", params)


def test_each_series_last_fold_gradient_profile_for_the_models_that_have_one(inputs):
    prices, folds = inputs
    _, fitted = walk_forward(ScratchRnn(hidden=3, epochs=2, n_lags=LAGS), prices, folds)
    (uid,) = prices["unique_id"].unique()
    last = fitted[-1][2]  # the last fold's model, whose test part is the series' last 40 days
    windows = forecast_windows(np.log(series_from_prices(prices)[uid].price), 40, LAGS, "log_return")
    expected = {uid: list(normalised_profile(last.lag_gradients(windows)))}
    assert gradient_profiles(fitted, prices, folds) == expected
    with parallel_backend(ParallelParams(backend="loky", n_jobs=2)):  # on the stage's workers: the same numbers
        assert gradient_profiles(fitted, prices, folds, n_jobs=2) == expected
    _, fitted = walk_forward(Naive(), prices, folds)
    assert gradient_profiles(fitted, prices, folds) is None
