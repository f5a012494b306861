"""Economic value: positions from forecasts, returns net of costs on a hand-built case, the scores."""

import numpy as np
import pandas as pd
import pytest

from pipeline import trading

# Five days: the cutoff's price, the day's price, and a forecast that rises, rises, falls, falls, rises.
Y_CUTOFF = np.array([100.0, 110.0, 99.0, 99.0, 108.9])
Y = np.array([110.0, 99.0, 99.0, 108.9, 119.79])
Y_HAT = np.array([101.0, 111.0, 98.0, 90.0, 110.0])


def test_positions_by_strategy():
    assert trading.positions(Y_HAT, Y_CUTOFF, "long_flat").tolist() == [1, 1, 0, 0, 1]
    assert trading.positions(Y_HAT, Y_CUTOFF, "long_short").tolist() == [1, 1, -1, -1, 1]
    assert trading.positions(Y_CUTOFF, Y_CUTOFF, "long_short").tolist() == [0] * 5  # no change: no position


def test_returns_on_five_days_charge_costs_on_position_changes_only():
    # Day returns +10%, -10%, 0%, +10%, +10%; 10 bp per unit of turnover.
    long_flat = trading.net_returns(trading.positions(Y_HAT, Y_CUTOFF, "long_flat"), Y, Y_CUTOFF, 10)
    # entry from flat (1 unit), held, out (1), stays out, in again (1)
    assert long_flat == pytest.approx([0.10 - 0.001, -0.10, 0.0 - 0.001, 0.0, 0.10 - 0.001], abs=1e-12)
    long_short = trading.net_returns(trading.positions(Y_HAT, Y_CUTOFF, "long_short"), Y, Y_CUTOFF, 10)
    # long to short is 2 units of turnover, short to long 2 again
    assert long_short == pytest.approx([0.10 - 0.001, -0.10, 0.0 - 0.002, -0.10, 0.10 - 0.002], abs=1e-12)
    free = trading.net_returns(trading.positions(Y_HAT, Y_CUTOFF, "long_flat"), Y, Y_CUTOFF, 0)
    assert free == pytest.approx([0.10, -0.10, 0.0, 0.0, 0.10], abs=1e-12)
    assert trading.turnover(np.array([1, 1, -1, -1, 1])).tolist() == [1, 0, 2, 0, 2]


def test_performance_of_a_hand_built_series():
    r = np.array([0.10 - 0.001, -0.10, -0.001, 0.0, 0.10 - 0.001])
    p = trading.performance(r, trading.turnover(np.array([1, 1, 0, 0, 1])))
    equity = np.cumprod(1 + r)
    assert p["annual_return"] == pytest.approx(equity[-1] ** (252 / 5) - 1)
    assert p["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * np.sqrt(252))
    assert p["volatility"] == pytest.approx(r.std(ddof=1) * np.sqrt(252))
    assert p["max_drawdown"] == pytest.approx(1 - equity[3] / equity[0])  # from the first day's peak
    assert p["turnover"] == pytest.approx(3 / 5 * 252)
    assert p["n_days"] == 5
    # Mertens (2002): with normal returns (skew 0, kurtosis 3) the iid SE is sqrt((1 + SR²/2) / T).
    rng = np.random.default_rng(0)
    normal = rng.normal(5e-4, 0.01, 200_000)
    sr = normal.mean() / normal.std(ddof=1)
    se = trading.performance(normal, np.zeros(len(normal)))["sharpe_se"]
    assert se == pytest.approx(np.sqrt((1 + sr**2 / 2) / len(normal)) * np.sqrt(252), rel=1e-3)
    flat = trading.performance(np.zeros(5), np.zeros(5))
    assert flat["sharpe"] is None and flat["sharpe_se"] is None and flat["annual_return"] == 0


def test_buy_and_hold_and_the_equal_weight_portfolio():
    days = pd.bdate_range("2021-01-04", periods=5)
    one = pd.DataFrame({"unique_id": "A", "ds": days, "y": Y, "y_cutoff": Y_CUTOFF, "y_hat": Y_HAT, "model": "m"})
    two = one.assign(unique_id="B", y=Y_CUTOFF, y_hat=Y_CUTOFF)  # a series that never moves, never forecast to
    daily = trading.daily_frame(pd.concat([one, two]), "long_flat", 10)
    report = trading.trading_report(daily)
    hold = daily[(daily["model"] == trading.BUY_AND_HOLD) & (daily["unique_id"] == "A")]["ret"]
    assert hold.to_numpy() == pytest.approx(Y / Y_CUTOFF - 1 - np.array([0.001, 0, 0, 0, 0]))  # one entry cost
    m = trading.portfolio(daily).query("model == 'm'")
    a = trading.net_returns(trading.positions(Y_HAT, Y_CUTOFF, "long_flat"), Y, Y_CUTOFF, 10)
    assert m["ret"].to_numpy() == pytest.approx(a / 2)  # B is in cash: half the portfolio earns nothing
    assert m["equity"].to_numpy() == pytest.approx(np.cumprod(1 + a / 2))
    assert report["series"]["A"]["m"] == trading.performance(a, trading.turnover(np.array([1, 1, 0, 0, 1])))
    assert set(report["models"]) == {"m", trading.BUY_AND_HOLD}
