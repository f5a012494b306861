"""Lag windows: the seed's table, built per series."""

import numpy as np
import pandas as pd
import pytest

from pipeline.cli import UserError
from pipeline.features import lookback, make_windows, transform, windows_table


def test_make_windows_matches_the_seed_table():
    # The lecture's table: values at t-4..t predict t+1.
    X, y = make_windows(np.arange(1.0, 9.0), n_lags=5)
    assert X.tolist() == [[5, 4, 3, 2, 1], [6, 5, 4, 3, 2], [7, 6, 5, 4, 3]]  # lag_1 first
    assert y.tolist() == [6, 7, 8]


def test_make_windows_too_short_is_empty():
    X, y = make_windows(np.arange(3.0), n_lags=3)
    assert X.shape == (0, 3) and y.shape == (0,)


def test_transform_and_lookback():
    log_price = np.log(np.array([100.0, 110.0, 99.0]))
    assert np.allclose(transform(log_price, "log_return"), [np.log(1.1), np.log(0.9)])
    assert np.allclose(transform(log_price, "price"), [100, 110, 99])
    assert lookback(5, "log_return") == 6 and lookback(5, "price") == 5


def _prices():
    days = pd.bdate_range("2020-01-01", periods=6).astype("datetime64[ns]")
    return pd.DataFrame(
        {
            "unique_id": ["A"] * 6 + ["B"] * 6,
            "ds": list(days) * 2,
            "close": [1, 2, 4, 8, 16, 32, 10, 20, 30, 40, 50, 60.0],
        }
    )


def test_windows_table_of_log_returns_against_hand_built_rows():
    table = windows_table(_prices(), n_lags=2, target="log_return")
    assert table.columns.tolist() == ["unique_id", "ds", "lag_1", "lag_2", "target"]
    a = table[table.unique_id == "A"]
    # Returns of a doubling series are all log 2; first target is the 4th price's return.
    assert np.allclose(a[["lag_1", "lag_2", "target"]].to_numpy(), np.log(2))
    assert a.ds.iloc[0] == pd.Timestamp("2020-01-06") and len(a) == 3
    b = table[table.unique_id == "B"]
    assert np.allclose(b.iloc[0][["lag_1", "lag_2", "target"]].astype(float), [np.log(1.5), np.log(2), np.log(40 / 30)])


def test_windows_table_of_prices():
    table = windows_table(_prices(), n_lags=3, target="price")
    first = table.iloc[0]
    assert (first.lag_1, first.lag_2, first.lag_3, first.target) == pytest.approx((4, 2, 1, 8))
    assert len(table) == 6


def test_windows_table_names_the_key_when_the_series_is_too_short():
    with pytest.raises(UserError, match="features.n_lags: 6 lags need more than 7 prices, series A has 6"):
        windows_table(_prices(), n_lags=6, target="log_return")
