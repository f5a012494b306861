"""Every model through the same checks, one row per model (the conformance table).

Each model is fitted on the first part of an AR(2) log-return process and forecasts the rest one
step ahead. Checked for every row: `fit` returns self; the loop's table has the contract's
columns, one finite row per test day; a second fit with the same seed gives the same bytes; the
leakage canary; and every learning model beats the random walk on a series that has structure.
"""

from __future__ import annotations

import json
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from pipeline.cli import UserError
from pipeline.features import windows_table
from pipeline.models.arima import Arima
from pipeline.models.naive import Drift, Naive
from pipeline.models.recurrent import Recurrent
from pipeline.models.regressor import ESTIMATORS, RIDGE_ALPHAS, Regressor, make_estimator
from pipeline.walkforward import PREDICTION_COLUMNS, Fold, Series, forecast_fold

# Keras 3.15 copies its variables with np.array(variable), which numpy 2.4 flags; harmless.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

N_TRAIN, N_TEST = 700, 200
LAGS = 5
TINY_NET = {"units": (4,), "epochs": 4, "batch_size": 32, "learning_rate": 0.01, "patience": 2, "n_lags": LAGS}

# name -> (factory of the unfitted model, whether it learns: learning models must beat naive)
MODELS = {
    "naive": (Naive, False),
    "drift": (Drift, False),
    "arima_fixed": (lambda: Arima(order=[2, 1, 0]), True),
    "arima_auto": (lambda: Arima(order="auto", max_p=2, max_q=1), True),
    "ridge": (lambda: Regressor(make_estimator("ridge", {}, 0), n_lags=LAGS), True),
    "ridge_price": (lambda: Regressor(make_estimator("ridge", {}, 0), n_lags=LAGS, target="price"), False),
    "random_forest": (
        lambda: Regressor(
            make_estimator("random_forest", {"n_estimators": 20, "min_samples_leaf": 20}, 0), n_lags=LAGS
        ),
        True,
    ),
    "hist_gradient_boosting": (
        lambda: Regressor(make_estimator("hist_gradient_boosting", {"max_iter": 30}, 0), n_lags=LAGS),
        True,
    ),
    "mlp": (lambda: Regressor(make_estimator("mlp", {"hidden_layer_sizes": [8]}, 0), n_lags=LAGS), True),
    "lstm": (lambda: Recurrent(cell="lstm", **TINY_NET), True),
    "gru": (lambda: Recurrent(cell="gru", **TINY_NET), True),
    "simple_rnn": (lambda: Recurrent(cell="simple_rnn", **TINY_NET), True),
}


def ar2_log_prices(n: int, seed: int, phi1: float = 0.5, phi2: float = -0.3, sigma: float = 0.01) -> np.ndarray:
    """Log prices whose daily log returns follow r_t = phi1 r_t-1 + phi2 r_t-2 + e_t."""
    noise = np.random.default_rng(seed).normal(0, sigma, n + 100)
    r = np.zeros(n + 100)
    for t in range(2, n + 100):
        r[t] = phi1 * r[t - 1] + phi2 * r[t - 2] + noise[t]
    return np.log(100.0) + np.cumsum(r[100:])  # the first 100 days let the process settle


Y = ar2_log_prices(N_TRAIN + N_TEST, seed=7)
SERIES = Series("AR2", np.arange(len(Y)).astype("datetime64[D]").astype("datetime64[ns]"), np.exp(Y))
FOLD = Fold("AR2", fold=0, history_start=0, train_end=N_TRAIN - 1, test_start=N_TRAIN, test_end=len(Y) - 1)
DAYS = np.arange(N_TRAIN, len(Y))  # the day each forecast is for


@dataclass
class Case:
    name: str
    learns: bool
    model: object  # fitted on the train part by `fit`
    returned: object  # what `fit` returned
    forecasts: np.ndarray  # model.predict(Y, N_TEST)
    table: object  # the loop's rows for the fold, from a second, separately fitted copy
    refitted: object  # that second copy


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One BLAS/OpenMP thread, as in the loop's workers (and no oversubscribed 2-core runner)."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module", params=list(MODELS))
def case(request, one_thread) -> Case:
    make, learns = MODELS[request.param]
    model = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the tiny MLP stops at max_iter
        returned = model.fit(Y[:N_TRAIN])
        table, refitted = forecast_fold(make(), SERIES, FOLD)
    return Case(request.param, learns, model, returned, model.predict(Y, N_TEST), table, refitted)


def test_fit_returns_self(case):
    assert case.returned is case.model


def test_table_has_one_finite_row_per_test_day(case):
    assert case.forecasts.shape == (N_TEST,) and case.forecasts.dtype == np.float64
    has_interval = case.model.predict_interval(Y, N_TEST) is not None
    expected = PREDICTION_COLUMNS if has_interval else PREDICTION_COLUMNS[:-2]
    assert case.table.columns.tolist() == expected
    assert len(case.table) == N_TEST and not case.table.isna().any().any()
    assert np.array_equal(case.table["y"].to_numpy(), np.exp(Y[N_TRAIN:]))
    if "y_lo" in case.table:
        assert (case.table.y_lo < case.table.y_hat).all() and (case.table.y_hat < case.table.y_hi).all()


def test_same_seed_same_output(case):
    assert np.array_equal(case.refitted.predict(Y, N_TEST), case.forecasts)


@pytest.mark.parametrize("t", [N_TRAIN, N_TRAIN + 57, len(Y) - 1])
def test_leakage_canary(case, t):
    """Changing any value at or after day t changes no forecast for a day at or before t."""
    changed = Y.copy()
    changed[t:] += np.random.default_rng(t).normal(0, 0.05, len(Y) - t)
    outputs = [lambda y: case.model.predict(y, N_TEST)]
    if case.model.predict_interval(Y, N_TEST) is not None:
        outputs.append(lambda y: case.model.predict_interval(y, N_TEST))
    for output in outputs:
        before, after = output(Y), output(changed)
        assert np.array_equal(after[t >= DAYS], before[t >= DAYS])
        if t < len(Y) - 1:  # the canary can fail: later forecasts do see the change
            assert not np.array_equal(after[t + 1 == DAYS], before[t + 1 == DAYS])


def test_learning_models_beat_the_random_walk_on_ar2_returns(case):
    if not case.learns:
        pytest.skip("a baseline, or a target that hides the structure (prices)")
    actual = np.exp(Y[N_TRAIN:])
    rmse = np.sqrt(np.mean((np.exp(case.forecasts) - actual) ** 2))
    naive = np.sqrt(np.mean((np.exp(Y[N_TRAIN - 1 : -1]) - actual) ** 2))
    assert rmse < 0.97 * naive  # the best possible is about 0.88 x naive for these coefficients


def test_fitted_model_pickles_and_predicts_the_same(case):
    """The loop returns fitted models from its worker processes."""
    assert np.array_equal(pickle.loads(pickle.dumps(case.model)).predict(Y, N_TEST), case.forecasts)


def test_saved_model_loads_and_predicts_the_same_and_saves_the_same_bytes(case, tmp_path):
    """`models/<name>/` holds what a forecast needs: a save, a load, the same forecasts; two
    saves, the same bytes; nothing in it that unpickles."""
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    case.model.save(first)
    case.model.save(second)
    files = sorted(p.relative_to(first) for p in first.rglob("*"))
    assert files and files == sorted(p.relative_to(second) for p in second.rglob("*"))
    assert all((first / f).read_bytes() == (second / f).read_bytes() for f in files)
    assert not any(f.suffix in (".pkl", ".pickle", ".joblib") for f in files)
    loaded = type(case.model).load(first, json.loads(json.dumps(case.model.config())))
    assert np.array_equal(loaded.predict(Y, N_TEST), case.forecasts)
    interval = case.model.predict_interval(Y, N_TEST)
    if interval is not None:
        assert np.array_equal(loaded.predict_interval(Y, N_TEST), interval)


def test_window_models_forecast_the_same_from_the_features_table(case):
    """The stage feeds window models the rows of `data/windows.parquet` as `X`; a forecast from
    the latest prices builds them from `y`: both give the same numbers."""
    columns = case.model.input_columns()
    if not columns:
        pytest.skip("a model of the prices alone")
    import pandas as pd

    prices = pd.DataFrame({"unique_id": "AR2", "ds": SERIES.ds, "close": SERIES.price})
    table = windows_table(prices, case.model.n_lags, case.model.target)
    X = np.full((len(Y), len(columns)), np.nan)
    X[len(Y) - len(table) :] = table[columns].to_numpy()
    assert np.array_equal(case.model.predict(Y, N_TEST, X), case.forecasts)
    refit = type(case.model)(**case.model.get_params()).fit(Y[:N_TRAIN], X[:N_TRAIN])
    assert np.array_equal(refit.predict(Y, N_TEST), case.refitted.predict(Y, N_TEST))


# Trainable parameters of the fitted models, where they do not depend on the data.
COUNTS = {
    "drift": {"drift": 1},
    "arima_fixed": {"ar": 2, "drift": 1, "sigma2": 1},
    "ridge": {"coef": LAGS, "intercept": 1},
    "mlp": {"W_xh": LAGS * 8, "W_xh bias": 8, "W_hy": 8, "W_hy bias": 1},
    # 4 gates of 4 units on 1 input: the seed lecture's W_xh, W_hh and a bias per gate unit.
    "lstm": {"lstm_1 W_xh": 16, "lstm_1 W_hh": 64, "lstm_1 bias": 16, "dense W_hy": 4, "dense bias": 1},
    "simple_rnn": {
        "simple_rnn_1 W_xh": 4,
        "simple_rnn_1 W_hh": 16,
        "simple_rnn_1 bias": 4,
        "dense W_hy": 4,
        "dense bias": 1,
    },
}


def test_parameter_counts(case):
    if case.name not in COUNTS:
        pytest.skip("counts that depend on the data (order search, tree sizes) or none")
    assert case.model.parameter_counts() == COUNTS[case.name]


# Beyond the table: what only some families have.


def test_stacked_recurrent_layers_weight_blocks_and_history():
    model = Recurrent(cell="gru", **{**TINY_NET, "units": (3, 2), "epochs": 2, "patience": 5}).fit(Y[:200])
    # GRU: 3 gates; Keras' default reset_after keeps two bias vectors per gate.
    assert model.parameter_counts() == {
        "gru_1 W_xh": 1 * 9,
        "gru_1 W_hh": 3 * 9,
        "gru_1 bias": 2 * 9,
        "gru_2 W_xh": 3 * 6,
        "gru_2 W_hh": 2 * 6,
        "gru_2 bias": 2 * 6,
        "dense W_hy": 2,
        "dense bias": 1,
    }
    assert list(model.history_) == ["loss", "val_loss"] and all(len(v) == 2 for v in model.history_.values())
    assert model.predict(Y[:260], 60).shape == (60,)


def test_recurrent_warm_start_continues_from_the_previous_weights():
    # A learning rate too small to move the weights: a warm refit must keep them. Without warm
    # start the second fit would begin from seed 2's initialisation and end there.
    warm = Recurrent(**{**TINY_NET, "epochs": 1, "learning_rate": 1e-9}, warm_start=True, seed=1).fit(Y[:N_TRAIN])
    first = [w.copy() for w in warm.weights_]
    warm.seed = 2
    warm.fit(Y[: N_TRAIN + 50])
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(first, warm.weights_, strict=True))


def test_mlp_counts_every_layer():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 5 iterations are not meant to converge
        model = Regressor(make_estimator("mlp", {"hidden_layer_sizes": [3, 2], "max_iter": 5}, 0), n_lags=LAGS).fit(
            Y[:200]
        )
    assert model.parameter_counts() == {
        "W_xh": LAGS * 3,
        "W_xh bias": 3,
        "W_hh1": 6,
        "W_hh1 bias": 2,
        "W_hy": 2,
        "W_hy bias": 1,
    }


@pytest.mark.parametrize("name", ["random_forest", "hist_gradient_boosting"])
def test_tree_models_count_their_nodes(name):
    model = Regressor(make_estimator(name, {"max_depth": 2}, 0), n_lags=LAGS).fit(Y[:200])
    ((block, nodes),) = model.parameter_counts().items()
    assert block == "tree nodes" and nodes > 0


def test_make_estimator_passes_the_seed_and_names_bad_keys():
    seeded = {name: make_estimator(name, {}, 3).get_params().get("random_state") for name in ESTIMATORS}
    assert seeded == {"ridge": None, "random_forest": 3, "hist_gradient_boosting": 3, "mlp": 3}  # RidgeCV draws nothing
    assert make_estimator("ridge", {}, 0).alphas == RIDGE_ALPHAS
    assert make_estimator("ridge", {"alphas": [2.5]}, 0).alphas == [2.5]
    with pytest.raises(UserError, match=r"^sklearn\.params\.n_trees: not a parameter of RandomForestRegressor"):
        make_estimator("random_forest", {"n_trees": 10}, 0)
    with pytest.raises(
        UserError,
        match=r"^sklearn\.params\.n_estimators: The 'n_estimators' parameter of RandomForestRegressor must be",
    ):
        make_estimator("random_forest", {"n_estimators": 0}, 0)
    with pytest.raises(UserError, match=r"^sklearn\.estimator: unknown estimator 'svm'"):
        make_estimator("svm", {}, 0)


_CACHE_PROBE = """
import sys
import numpy as np
from pipeline.models.recurrent import Recurrent
from tests.test_models import TINY_NET, Y, N_TRAIN, N_TEST
out = [Recurrent(cell="gru", **TINY_NET).fit(Y[:N_TRAIN]).predict(Y, N_TEST) for _ in range(int(sys.argv[1]))]
np.save(sys.argv[2], np.stack(out))
"""


def test_the_compilation_cache_changes_no_forecast(tmp_path):
    """Forecasts are the same bytes compiled afresh (no cache), and with the persistent cache
    both cold (first fit) and warm (a second fit reading what the first compiled)."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    runs = {
        "off": ("1", {"JAX_ENABLE_COMPILATION_CACHE": "false"}),
        "on": ("2", {"JAX_COMPILATION_CACHE_DIR": str(tmp_path / "jax")}),
    }
    results = {}
    for name, (fits, env) in runs.items():
        out = tmp_path / f"{name}.npy"
        subprocess.run(
            [sys.executable, "-c", _CACHE_PROBE, fits, str(out)],
            cwd=root,
            env={**os.environ, **env},
            check=True,
            timeout=300,
        )
        results[name] = np.load(out)
    assert any((tmp_path / "jax").iterdir())  # the cache was written, then read by the second fit
    assert np.array_equal(results["on"][0], results["on"][1]) and np.array_equal(results["off"][0], results["on"][0])
