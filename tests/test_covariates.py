"""Covariates: the channels by day, their windows, every model that reads them, and the canary.

The canary extends the conformance table's (tests/test_models.py) to covariates: changing any
covariate value at or after day t changes no forecast (nor interval bound) whose cutoff is
before t, for every model that reads covariates, every horizon and every kind of covariate;
and the forecast from cutoff t itself does change (the check can fire). Tiny models, one fit
each, every kind at once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.arima.model import ARIMA
from threadpoolctl import threadpool_limits

from pipeline import covariates as cov
from pipeline import forecast
from pipeline.cli import UserError
from pipeline.features import input_columns, input_rows, windows_table
from pipeline.models.arima import SCALE, Arima
from pipeline.models.recurrent import Recurrent
from pipeline.models.regressor import Regressor, make_estimator
from pipeline.models.scratch_rnn import ScratchRnn
from pipeline.walkforward import Fold, forecast_fold, series_from_prices, with_inputs

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

LAGS, H = 4, (1, 5, 20)
N_TRAIN, N_TEST = 400, 120
KINDS = {  # covariate kind -> its channels
    "volume": ["volume"],
    "range": ["range"],
    "gap": ["gap"],
    "calendar": ["day_of_week_sin", "day_of_week_cos", "month_sin", "month_cos"],
    "other series": ["OTHER"],
}
ALL = ["volume", "range", "gap", "day_of_week", "month", "OTHER"]


def ohlcv(n: int, seed: int, uid: str) -> pd.DataFrame:
    """A random walk with open, high, low, close and volume on business days."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate([[100.0], close[:-1]]) * np.exp(rng.normal(0, 0.003, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.004, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.004, n)))
    days = pd.bdate_range("2015-01-01", periods=n).astype("datetime64[ns]")
    volume = np.round(1e6 * np.exp(rng.normal(0, 0.3, n)))
    return pd.DataFrame(
        {"unique_id": uid, "ds": days, "open": open_, "high": high, "low": low, "close": close, "volume": volume}
    )


PRICES = pd.concat([ohlcv(N_TRAIN + N_TEST, 1, "A"), ohlcv(N_TRAIN + N_TEST, 2, "OTHER")], ignore_index=True)
Y = np.log(PRICES[PRICES.unique_id == "A"]["close"].to_numpy())
CHANNELS = cov.series_covariates(PRICES, "A", ALL)[cov.channels(ALL)].to_numpy()
CUTOFFS = np.arange(N_TRAIN - 1, len(Y) - 1)

MODELS = {
    "ridge": lambda: Regressor(make_estimator("ridge", {}, 0), n_lags=LAGS, horizons=H, covariates=tuple(ALL)),
    "lstm": lambda: Recurrent(
        units=(3,), epochs=2, batch_size=32, n_lags=LAGS, horizons=H, covariates=tuple(ALL), learning_rate=0.01
    ),
    "rnn_scratch": lambda: ScratchRnn(
        hidden=3, epochs=3, batch_size=32, n_lags=LAGS, horizons=H, covariates=tuple(ALL)
    ),
    "arima": lambda: Arima(order=[1, 1, 0], horizons=H, covariates=tuple(ALL)),
}


@pytest.fixture(scope="module", params=list(MODELS))
def fitted(request):
    with threadpool_limits(limits=1):
        model = MODELS[request.param]()
        return model.fit(Y[:N_TRAIN], model.inputs(Y[:N_TRAIN], CHANNELS[:N_TRAIN]))


def outputs(model, channel_values: np.ndarray) -> list[np.ndarray]:
    X = model.inputs(Y, channel_values)
    out = [model.predict(Y, N_TEST, X)]
    if model.own_intervals:
        out.append(model.predict_interval(Y, N_TEST, X))
    return out


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("t", [N_TRAIN, N_TRAIN + 37, len(Y) - 1])
def test_covariate_canary(fitted, kind, t):
    changed = CHANNELS.copy()
    columns = [cov.channels(ALL).index(name) for name in KINDS[kind]]
    changed[t:, columns] += np.random.default_rng(t).normal(0, 0.5, (len(Y) - t, len(columns)))
    for before, after in zip(outputs(fitted, CHANNELS), outputs(fitted, changed), strict=True):
        assert np.array_equal(after[t > CUTOFFS], before[t > CUTOFFS])  # every horizon, every bound
        if t <= CUTOFFS[-1]:  # the forecasts from cutoff t read the changed values: the check can fire
            pairs = zip(after[t == CUTOFFS][0], before[t == CUTOFFS][0], strict=True)
            assert all(not np.array_equal(a, b) for a, b in pairs)


@pytest.mark.parametrize("t", [50, 300, len(Y) - 1])
def test_a_covariate_on_day_t_reads_no_data_after_t(t):
    """The channels are point in time: changing the prices table (every column, the other
    series too) from day t on changes no channel value dated before t."""
    changed = PRICES.copy()
    later = changed["ds"] >= changed["ds"].unique()[t]
    for column in ("open", "high", "low", "close", "volume"):
        changed.loc[later, column] *= np.exp(np.random.default_rng(t).normal(0, 0.05, int(later.sum())))
    after = cov.series_covariates(changed, "A", ALL)[cov.channels(ALL)].to_numpy()
    assert np.array_equal(after[:t], CHANNELS[:t], equal_nan=True)
    assert not np.array_equal(after[t:, :3], CHANNELS[t:, :3])  # volume, range, gap of day t moved


def test_hand_built_windows_with_two_covariates_are_the_three_channel_table():
    days = pd.bdate_range("2020-01-06", periods=5).astype("datetime64[ns]")
    prices = pd.DataFrame(
        {
            "unique_id": "A",
            "ds": days,
            "high": [11.0, 12, 13, 14, 15],
            "low": [10.0, 10, 10, 10, 10],
            "close": [10.0, 11, 12, 13, 14],
            "volume": [100.0, 200, 400, 800, 800],
        }
    )
    covariates = cov.covariate_table(prices, ["volume", "range"])
    table = windows_table(prices, 2, "log_return", covariates, ["volume", "range"])
    r = np.log(prices["close"].to_numpy())
    r = np.diff(r)  # r[j]: the return of day j + 1
    v = np.log([2.0, 2.0, 2.0, 1.0])  # the volume's log change on days 1..4
    g = np.log(prices["high"] / prices["low"]).to_numpy()  # the range of days 0..4
    assert table.columns.tolist() == ["unique_id", "ds", *input_columns(2, ["volume", "range"]), "target"]
    assert input_columns(2, ["volume", "range"]) == [
        *("lag_1", "lag_2", "volume_lag_1", "volume_lag_2", "range_lag_1", "range_lag_2")
    ]
    # Rows for days 3 and 4: each channel's lag k is its value k days before the row's day.
    expected = [
        [r[1], r[0], v[1], v[0], g[2], g[1], r[2]],
        [r[2], r[1], v[2], v[1], g[3], g[2], r[3]],
    ]
    assert table["ds"].tolist() == list(days[3:])
    assert np.allclose(table.iloc[:, 2:].to_numpy(), expected, rtol=0, atol=1e-15)


def test_the_forecast_command_builds_the_inputs_the_walk_forward_reads():
    """`forecast.recent_prices` + `Model.inputs` give the rows of the features stage's tables,
    and the forecast from a day is the walk-forward's from that cutoff, for each family."""
    table = windows_table(PRICES, LAGS, "log_return", cov.covariate_table(PRICES, ALL), ALL)
    series = with_inputs(series_from_prices(PRICES), table, input_columns(LAGS, ALL))["A"]
    rows = input_rows(Y, CHANNELS, LAGS, "log_return")
    assert np.array_equal(series.inputs, rows, equal_nan=True)
    fold = Fold("A", 0, 0, N_TRAIN - 1, N_TRAIN, len(Y) - 1)
    for model in (MODELS["ridge"](), MODELS["arima"]()):
        channel_table = cov.covariate_table(PRICES, ALL)
        source = channel_table if model.inputs_from == "covariates" else table
        inputs = with_inputs(series_from_prices(PRICES), source, model.input_columns())["A"]
        predictions, fit = forecast_fold(model, inputs, fold)
        day = N_TRAIN + 30
        recent = forecast.recent_prices(PRICES[PRICES["ds"] < PRICES["ds"].unique()[day]], "A", ALL)
        assert cov.channels(ALL) == recent.columns[2:].tolist()
        out = forecast.horizon_forecasts(fit, recent)
        expected = predictions[predictions["cutoff"] == series.ds[day - 1]]
        assert out["y_hat"].to_numpy() == pytest.approx(expected["y_hat"].to_numpy(), rel=1e-9)


def test_arima_holds_the_cutoffs_regressors_for_every_horizon():
    """The h-step forecast is statsmodels' own `get_forecast(h)` from the cutoff, given the
    regressors of the day after the cutoff (the cutoff's covariates) for all h days."""
    model = MODELS["arima"]().fit(Y[:N_TRAIN], CHANNELS[:N_TRAIN])
    forecasts = model.predict(Y, N_TEST, CHANNELS)
    start, lagged = model._lagged(CHANNELS, len(Y))
    exog = model._standardised(lagged)
    assert start == 2  # day 0 has no covariates of the day before, day 1's of day 0 lack a volume change
    detrended = (Y - model._trend(np.arange(len(Y))))[start:]
    cutoff = N_TRAIN + 10
    known = cutoff + 1 - start  # regressors of the days up to the cutoff
    filtered = ARIMA(SCALE * detrended[:known], exog=exog[:known], order=model.order_, trend="n").filter(model.params_)
    held = np.repeat(exog[known : known + 1], max(H), axis=0)  # the cutoff's covariates, held
    mean = filtered.get_forecast(max(H), exog=held).predicted_mean / SCALE
    expected = mean[np.asarray(H) - 1] + model._trend(cutoff + np.asarray(H))
    assert forecasts[cutoff - CUTOFFS[0]] == pytest.approx(expected, rel=0, abs=1e-12)
    assert model.parameter_counts()["exog"] == len(cov.channels(ALL))


def test_a_series_is_not_its_own_covariate():
    values = cov.series_covariates(PRICES, "OTHER", ["OTHER", "A"])
    assert (values["OTHER"] == 0).all()  # its own column: no information
    a = np.log(PRICES[PRICES.unique_id == "A"]["close"].to_numpy())
    assert np.allclose(values["A"].to_numpy()[1:], np.diff(a)) and np.isnan(values["A"].iloc[0])
    # ARIMA leaves a channel constant on the train part out of the regression.
    y = np.log(PRICES[PRICES.unique_id == "OTHER"]["close"].to_numpy())
    model = Arima(order=[1, 1, 0], covariates=("OTHER", "A")).fit(y[:N_TRAIN], values[["OTHER", "A"]].to_numpy())
    assert model.exog_used_ == [False, True] and model.parameter_counts()["exog"] == 1


def test_another_series_is_read_as_of_each_date():
    """On a day the other series did not trade its return is 0; the next day's spans both."""
    prices = pd.concat([ohlcv(6, 1, "A"), ohlcv(6, 2, "B").drop(index=2)], ignore_index=True)
    b = prices[prices.unique_id == "B"]
    values = cov.series_covariates(prices, "A", ["B"])["B"].to_numpy()
    log_b = np.log(b["close"].to_numpy())  # days 0, 1, 3, 4, 5
    assert np.isnan(values[0])
    assert np.allclose(values[1:], [log_b[1] - log_b[0], 0.0, log_b[2] - log_b[1], *np.diff(log_b[2:])])


def test_zero_and_missing_volume_carry_the_last_volume_forward():
    prices = ohlcv(6, 3, "A")
    volume = prices["volume"].to_numpy()
    prices.loc[2, "volume"], prices.loc[3, "volume"] = 0.0, np.nan
    values = cov.series_covariates(prices, "A", ["volume"])["volume"].to_numpy()
    expected = [np.nan, np.log(volume[1] / volume[0]), 0.0, 0.0, np.log(volume[4] / volume[1])]
    assert np.allclose(values[:5], expected, equal_nan=True)


def test_calendar_channels_are_on_the_unit_circle():
    values = cov.series_covariates(ohlcv(10, 0, "A"), "A", ["day_of_week", "month"])
    assert np.allclose(values["day_of_week_sin"] ** 2 + values["day_of_week_cos"] ** 2, 1)
    monday = values["ds"].dt.day_of_week == 0
    assert np.allclose(values.loc[monday, ["day_of_week_sin", "day_of_week_cos"]], [0.0, 1.0])
    assert cov.covariates_of(cov.channels(["volume", "day_of_week", "NASDAQ"])) == ["volume", "day_of_week", "NASDAQ"]


@pytest.mark.parametrize(
    ("prices", "covariates", "message"),
    [
        (
            ohlcv(8, 0, "A").drop(columns="volume"),
            ["volume"],
            "volume needs the volume column, which data/prices.parquet does not have",
        ),
        (ohlcv(8, 0, "A").drop(columns="open"), ["gap"], "gap needs the open column"),
        (ohlcv(8, 0, "A").assign(volume=0.0), ["volume"], "volume: series A has no value of it"),
        (ohlcv(8, 0, "A").assign(volume=-1.0), ["volume"], "volume: series A has a negative volume on 2015-01-01"),
        (ohlcv(8, 0, "A"), ["NASDAQ"], "'NASDAQ' is neither a covariate nor a series of data/prices.parquet"),
    ],
    ids=["no-volume-column", "no-open-column", "all-zero-volume", "negative-volume", "unknown-series"],
)
def test_what_the_data_cannot_give_names_the_key(prices, covariates, message):
    with pytest.raises(UserError, match="^features.covariates: ") as error:
        cov.covariate_table(prices, covariates)
    assert message in str(error.value)


def test_a_recursive_window_model_refuses_covariates():
    model = Regressor(make_estimator("ridge", {}, 0), n_lags=LAGS, strategy="recursive", covariates=("volume",))
    with pytest.raises(ValueError, match="recursive strategy would need the covariates"):
        model.fit(Y[:N_TRAIN], model.inputs(Y[:N_TRAIN], CHANNELS[:N_TRAIN, :1]))


def test_window_models_need_their_covariates():
    with pytest.raises(ValueError, match=r"need X"):
        MODELS["ridge"]().fit(Y[:N_TRAIN])


def test_lag_gradients_are_the_price_channels():
    """With covariates the gradient profile is still one value per lag of the price."""
    ridge = MODELS["ridge"]().fit(Y[:N_TRAIN], MODELS["ridge"]().inputs(Y[:N_TRAIN], CHANNELS[:N_TRAIN]))
    X = ridge.inputs(Y, CHANNELS)[-3:]
    coefficients = ridge.models_[0].regressor_.named_steps["model"].coef_
    assert np.array_equal(ridge.lag_gradients(X), np.tile(coefficients[:LAGS], (3, 1)))
    scratch = MODELS["rnn_scratch"]().fit(Y[:N_TRAIN], ridge.inputs(Y[:N_TRAIN], CHANNELS[:N_TRAIN]))
    assert scratch.lag_gradients(X).shape == (3, LAGS)
    assert scratch.weights_["W_xh"].shape == (3, 1 + len(cov.channels(ALL)))
