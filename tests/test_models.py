"""Every model through the same checks, one row per model and strategy (the conformance table).

Each model is fitted on the first part of an AR(2) log-return process and forecasts the rest at
horizons 1, 5 and 20 from every cutoff. Checked for every row: `fit` returns self; the loop's
table has the contract's columns, one finite row per test day and horizon; a second fit with
the same seed gives the same bytes; the leakage canary at every horizon; and every learning
model beats the random walk one step ahead on a series that has structure.
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
from pipeline.models.scratch_rnn import ScratchRnn
from pipeline.models.windowed import horizon_targets
from pipeline.walkforward import PREDICTION_COLUMNS, Fold, Series, forecast_fold

# Keras 3.15 copies its variables with np.array(variable), which numpy 2.4 flags; harmless.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

N_TRAIN, N_TEST = 700, 200
LAGS = 5
H = (1, 5, 20)
TINY_NET = {"units": (4,), "epochs": 4, "batch_size": 32, "learning_rate": 0.01, "patience": 2, "n_lags": LAGS}
TINY_SCRATCH = {"hidden": 4, "epochs": 10, "batch_size": 32, "learning_rate": 0.05, "n_lags": LAGS}

# name -> (factory of the unfitted model, whether it learns: learning models must beat naive)
MODELS = {
    "naive": (lambda: Naive(H), False),
    "drift": (lambda: Drift(H), False),
    "arima_fixed": (lambda: Arima(order=[2, 1, 0], horizons=H), True),
    "arima_auto": (lambda: Arima(order="auto", max_p=2, max_q=1, horizons=H), True),
    "ridge": (lambda: Regressor(make_estimator("ridge", {}, 0), n_lags=LAGS, horizons=H), True),
    "ridge_recursive": (
        lambda: Regressor(make_estimator("ridge", {}, 0), n_lags=LAGS, horizons=H, strategy="recursive"),
        True,
    ),
    "ridge_price": (lambda: Regressor(make_estimator("ridge", {}, 0), n_lags=LAGS, target="price", horizons=H), False),
    "random_forest": (
        lambda: Regressor(
            make_estimator("random_forest", {"n_estimators": 20, "min_samples_leaf": 20}, 0), n_lags=LAGS, horizons=H
        ),
        True,
    ),
    "hist_gradient_boosting": (
        lambda: Regressor(make_estimator("hist_gradient_boosting", {"max_iter": 30}, 0), n_lags=LAGS, horizons=H),
        True,
    ),
    "mlp": (
        lambda: Regressor(make_estimator("mlp", {"hidden_layer_sizes": [8]}, 0), n_lags=LAGS, horizons=(1,)),
        True,
    ),
    "lstm": (lambda: Recurrent(cell="lstm", horizons=H, **TINY_NET), True),
    "lstm_recursive": (lambda: Recurrent(cell="lstm", horizons=H, strategy="recursive", **TINY_NET), True),
    "gru": (lambda: Recurrent(cell="gru", horizons=H, **TINY_NET), True),
    "simple_rnn": (lambda: Recurrent(cell="simple_rnn", horizons=(1,), **TINY_NET), True),
    "rnn_scratch": (lambda: ScratchRnn(horizons=H, **TINY_SCRATCH), True),
    "rnn_scratch_recursive": (lambda: ScratchRnn(horizons=H, strategy="recursive", **TINY_SCRATCH), True),
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
CUTOFFS = np.arange(N_TRAIN - 1, len(Y) - 1)  # the cutoff of each row of `predict`


@dataclass
class Case:
    name: str
    learns: bool
    model: object  # fitted on the train part by `fit`
    returned: object  # what `fit` returned
    forecasts: np.ndarray  # model.predict(Y, N_TEST): (N_TEST, len(horizons))
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


def test_table_has_one_finite_row_per_test_day_and_horizon(case):
    horizons = case.model.horizons
    assert case.forecasts.shape == (N_TEST, len(horizons)) and case.forecasts.dtype == np.float64
    interval = case.model.predict_interval(Y, N_TEST)
    assert (interval is not None) == case.model.own_intervals
    assert interval is None or interval.shape == (N_TEST, len(horizons), len(case.model.levels), 2)
    assert case.table.columns.tolist() == PREDICTION_COLUMNS  # the loop adds calibrated intervals
    assert not case.table.isna().any().any()
    assert case.table.groupby("h").size().to_dict() == {h: N_TEST - h + 1 for h in horizons}
    for h, rows in case.table.groupby("h"):
        # Every target is a test day; its cutoff is h days before it (the series' days are consecutive).
        assert np.array_equal(rows["ds"].to_numpy(), SERIES.ds[N_TRAIN + h - 1 :])
        assert np.array_equal(rows["cutoff"].to_numpy(), SERIES.ds[N_TRAIN - 1 : len(Y) - h])
        assert np.array_equal(rows["y"].to_numpy(), np.exp(Y[N_TRAIN + h - 1 :]))
    if interval is not None:  # its own, e.g. ARIMA's Gaussian: nested around the forecast
        lower, upper = interval[..., 0], interval[..., 1]
        assert (np.diff(lower, axis=2) < 0).all() and (np.diff(upper, axis=2) > 0).all()
        assert (lower[..., 0] < case.forecasts).all() and (case.forecasts < upper[..., 0]).all()


def test_same_seed_same_output(case):
    assert np.array_equal(case.refitted.predict(Y, N_TEST), case.forecasts)


@pytest.mark.parametrize("t", [N_TRAIN, N_TRAIN + 57, len(Y) - 1])
def test_leakage_canary(case, t):
    """Changing any value at or after day t changes no forecast, at any horizon, whose cutoff is
    before t; the forecasts from cutoff t itself do change (the check can fail)."""
    changed = Y.copy()
    changed[t:] += np.random.default_rng(t).normal(0, 0.05, len(Y) - t)
    outputs = [lambda y: case.model.predict(y, N_TEST)]
    if case.model.predict_interval(Y, N_TEST) is not None:
        outputs.append(lambda y: case.model.predict_interval(y, N_TEST))
    for output in outputs:
        before, after = output(Y), output(changed)
        assert np.array_equal(after[t > CUTOFFS], before[t > CUTOFFS])
        if t <= CUTOFFS[-1]:
            assert all(
                not np.array_equal(a, b) for a, b in zip(after[t == CUTOFFS][0], before[t == CUTOFFS][0], strict=True)
            )


def test_learning_models_beat_the_random_walk_on_ar2_returns(case):
    if not case.learns:
        pytest.skip("a baseline, or a target that hides the structure (prices)")
    actual = np.exp(Y[N_TRAIN:])
    rmse = np.sqrt(np.mean((np.exp(case.forecasts[:, 0]) - actual) ** 2))
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
    "ridge": {f"h{h} {block}": n for h in H for block, n in (("coef", LAGS), ("intercept", 1))},
    "ridge_recursive": {"coef": LAGS, "intercept": 1},
    "mlp": {"W_xh": LAGS * 8, "W_xh bias": 8, "W_hy": 8, "W_hy bias": 1},
    # 4 gates of 4 units on 1 input: the seed lecture's W_xh, W_hh and a bias per gate unit.
    # MIMO: one output per horizon.
    "lstm": {"lstm_1 W_xh": 16, "lstm_1 W_hh": 64, "lstm_1 bias": 16, "dense W_hy": 4 * 3, "dense bias": 3},
    "lstm_recursive": {"lstm_1 W_xh": 16, "lstm_1 W_hh": 64, "lstm_1 bias": 16, "dense W_hy": 4, "dense bias": 1},
    "simple_rnn": {
        "simple_rnn_1 W_xh": 4,
        "simple_rnn_1 W_hh": 16,
        "simple_rnn_1 bias": 4,
        "dense W_hy": 4,
        "dense bias": 1,
    },
    # The lecture's blocks: 4 hidden units on 1 input, one output per horizon (mimo) or one.
    "rnn_scratch": {"W_xh": 4, "W_hh": 16, "b_h": 4, "W_hy": 4 * 3, "b_y": 3},
    "rnn_scratch_recursive": {"W_xh": 4, "W_hh": 16, "b_h": 4, "W_hy": 4, "b_y": 1},
}


def test_parameter_counts(case):
    if case.name not in COUNTS:
        pytest.skip("counts that depend on the data (order search, tree sizes) or none")
    assert case.model.parameter_counts() == COUNTS[case.name]


# The families with a gradient by lag: the recurrent nets and the linear regressors.
WITHOUT_GRADIENTS = {"naive", "drift", "arima_fixed", "arima_auto", "random_forest", "hist_gradient_boosting", "mlp"}


def test_lag_gradients_are_one_finite_row_per_window_or_none(case):
    windows = np.diff(Y)[:LAGS][::-1] + np.zeros((3, 1))  # three copies of one real window, lag_1 first
    gradients = case.model.lag_gradients(windows)
    if case.name in WITHOUT_GRADIENTS:
        assert gradients is None
        return
    assert gradients.shape == (3, LAGS) and np.isfinite(gradients).all()
    # A window's gradient depends on that window alone (to float32 rounding in the Keras nets).
    assert np.allclose(gradients[0], gradients[2], rtol=1e-5, atol=0)
    assert np.abs(gradients).max() > 0


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
    assert model.predict(Y[:260], 60).shape == (60, 1)


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


# Horizons: what the table above does not pin down.


@pytest.mark.parametrize("make", [Naive, Drift, lambda h: Arima(order=[2, 1, 0], horizons=h)])
def test_one_step_forecasts_do_not_depend_on_the_other_horizons(make):
    several, alone = make(H).fit(Y[:N_TRAIN]), make((1,)).fit(Y[:N_TRAIN])
    assert np.array_equal(several.predict(Y, N_TEST)[:, 0], alone.predict(Y, N_TEST)[:, 0])
    if several.predict_interval(Y, N_TEST) is not None:
        assert np.array_equal(several.predict_interval(Y, N_TEST)[:, 0], alone.predict_interval(Y, N_TEST)[:, 0])


def test_drift_forecasts_grow_with_the_horizon():
    model = Drift(H).fit(Y[:N_TRAIN])
    forecasts = model.predict(Y, N_TEST)
    assert np.allclose(forecasts - Y[N_TRAIN - 1 : -1, None], model.drift_ * np.asarray(H), rtol=0, atol=1e-12)


def test_direct_targets_stop_at_the_train_part():
    """For horizon h the last h - 1 train windows have no target inside the train part: each
    direct estimator is fitted on the others alone."""
    y = Y[:300]
    cutoffs = np.arange(LAGS, len(y) - 1)
    targets = horizon_targets(y, cutoffs, H, "log_return")
    assert [int(np.isnan(column).sum()) for column in targets.T] == [h - 1 for h in H]
    assert np.allclose(targets[0], [y[LAGS + h] - y[LAGS] for h in H], rtol=0, atol=1e-15)
    model = Regressor(make_estimator("ridge", {}, 0), n_lags=LAGS, horizons=H).fit(y)
    seen = [int(m.regressor_.named_steps["scale"].n_samples_seen_) for m in model.models_]
    assert seen == [len(cutoffs) - h + 1 for h in H]


def ar1_log_prices(n: int, phi: float, sigma: float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, sigma, n + 50)
    r = np.zeros(n + 50)
    for t in range(1, n + 50):
        r[t] = phi * r[t - 1] + noise[t]
    return np.log(100.0) + np.cumsum(r[50:])


@pytest.mark.parametrize("strategy", ["direct", "recursive"])
def test_strategies_approach_the_analytic_ar1_forecast_as_the_train_part_grows(strategy):
    """On AR(1) log returns r_t = phi r_t-1 + e_t the h-step forecast of the log price is
    y_c + r_c phi (1 - phi^h) / (1 - phi); both strategies get closer to it with more data."""
    phi, sigma, n_test = 0.4, 0.01, 300
    analytic_gain = np.array([phi * (1 - phi**h) / (1 - phi) for h in H])
    distances = []
    for n_train in (150, 1000, 8000):
        y = ar1_log_prices(n_train + n_test, phi, sigma, seed=3)
        model = Regressor(make_estimator("ridge", {"alphas": [1e-6]}, 0), n_lags=3, horizons=H, strategy=strategy)
        forecasts = model.fit(y[:n_train]).predict(y, n_test)
        cut = np.arange(len(y) - n_test - 1, len(y) - 1)
        analytic = y[cut, None] + (y[cut] - y[cut - 1])[:, None] * analytic_gain
        distances.append(np.sqrt(np.mean((forecasts - analytic) ** 2, axis=0)) / sigma)
    distances = np.array(distances)  # (train sizes, horizons), in units of the daily noise
    assert (np.diff(distances, axis=0) < 0).all()
    assert (distances[-1] < 0.2).all()
