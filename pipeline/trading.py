"""Economic value of the one-step forecasts: a measure of forecast value, not a trading system.

Each day t of the walk-forward test parts, the forecast made at the cutoff t-1 for t sets the
position held over that day (`evaluate.strategy`): `long_flat` holds 1 when it forecasts a rise
(y_hat > the cutoff's price) and 0 otherwise; `long_short` holds 1 on a forecast rise, -1 on a
forecast fall, 0 on no change. The day's return is position x (y / y_cutoff - 1), less
`cost_bps` basis points per unit of turnover |position_t - position_{t-1}| (the first day
trades from flat), so costs are charged on position changes only. Buy-and-hold is position 1
on the same days. With several series the portfolio holds each series' strategy with equal
weight: its daily return is the mean over the series trading that day. No interest on cash,
no borrowing cost for shorts, and the close of the cutoff day as the fill price.

Scores (`performance`), from daily net returns r_t over T days, 252 trading days a year:
annual_return (geometric, prod(1 + r)^(252/T) - 1), volatility (std(r) sqrt(252)), sharpe
(mean(r) / std(r) sqrt(252), no risk-free rate), sharpe_se (its standard error for iid but
not normal returns, Mertens 2002 / Opdyke 2007: sqrt((1 + SR²(kurtosis - 1)/4 - skew SR) / T)
for the daily SR, times sqrt(252)), max_drawdown (the largest fall of the equity curve from a
peak, a fraction), turnover (the mean |position change| per day, times 252: positions turned
over per year), n_days.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

TRADING_DAYS = 252
BUY_AND_HOLD = "buy_and_hold"  # the equity curve's label for the passive position


def positions(y_hat: np.ndarray, y_cutoff: np.ndarray, strategy: str) -> np.ndarray:
    """The position each forecast takes: `long_flat` 1 or 0, `long_short` 1, 0 or -1."""
    move = np.sign(np.asarray(y_hat, dtype="float64") - np.asarray(y_cutoff, dtype="float64"))
    return np.maximum(move, 0) if strategy == "long_flat" else move


def net_returns(position: np.ndarray, y: np.ndarray, y_cutoff: np.ndarray, cost_bps: float) -> np.ndarray:
    """Daily returns of holding `position` from each cutoff's close to the day's, less `cost_bps`
    per unit of position change (from flat before the first day). Days in time order."""
    position = np.asarray(position, dtype="float64")
    gross = position * (np.asarray(y, dtype="float64") / np.asarray(y_cutoff, dtype="float64") - 1)
    return gross - cost_bps / 1e4 * turnover(position)


def turnover(position: np.ndarray) -> np.ndarray:
    """|position_t - position_{t-1}| per day, from flat before the first."""
    return np.abs(np.diff(np.asarray(position, dtype="float64"), prepend=0.0))


def performance(returns: np.ndarray, daily_turnover: np.ndarray) -> dict:
    """The scores of a daily net return series (module docstring); None where undefined (a
    constant return series has no Sharpe ratio)."""
    r = np.asarray(returns, dtype="float64")
    n = len(r)
    equity = np.cumprod(1 + r)
    sd = float(np.std(r, ddof=1)) if n > 1 else 0.0
    daily_sr = float(np.mean(r)) / sd if sd > 0 else None
    se = None
    if daily_sr is not None:
        skew, kurt = float(stats.skew(r)), float(stats.kurtosis(r, fisher=False))
        se = float(np.sqrt(max(1 + daily_sr**2 * (kurt - 1) / 4 - skew * daily_sr, 0) / n) * np.sqrt(TRADING_DAYS))
    return {
        "annual_return": float(max(equity[-1], 0) ** (TRADING_DAYS / n) - 1),  # -100% once all is lost
        "volatility": sd * float(np.sqrt(TRADING_DAYS)),
        "sharpe": None if daily_sr is None else daily_sr * float(np.sqrt(TRADING_DAYS)),
        "sharpe_se": se,
        "max_drawdown": float(np.max(1 - equity / np.maximum.accumulate(np.maximum(equity, 1)))),
        "turnover": float(np.mean(daily_turnover)) * TRADING_DAYS,
        "n_days": int(n),
    }


def daily_frame(rows: pd.DataFrame, strategy: str, cost_bps: float) -> pd.DataFrame:
    """`model` (each model, then `BUY_AND_HOLD`), `unique_id`, `ds`, `ret` (net), `turnover` for
    one horizon's forecast rows (`scoring.forecast_rows`), each series' days in time order."""
    frames = []
    for model, group in rows.groupby("model", sort=True):
        frames += [_strategy(model, by_series, strategy, cost_bps) for _, by_series in group.groupby("unique_id")]
    days = rows.drop_duplicates(["unique_id", "ds"])
    for _, by_series in days.groupby("unique_id", sort=True):
        frames.append(_strategy(BUY_AND_HOLD, by_series.assign(y_hat=np.inf), "long_flat", cost_bps))
    return pd.concat(frames, ignore_index=True)


def _strategy(model: str, rows: pd.DataFrame, strategy: str, cost_bps: float) -> pd.DataFrame:
    rows = rows.sort_values("ds", kind="stable")
    y, y_cutoff = rows["y"].to_numpy(), rows["y_cutoff"].to_numpy()
    position = positions(rows["y_hat"].to_numpy(), y_cutoff, strategy)
    return pd.DataFrame(
        {
            "model": model,
            "unique_id": rows["unique_id"].to_numpy(),
            "ds": rows["ds"].to_numpy(),
            "ret": net_returns(position, y, y_cutoff, cost_bps),
            "turnover": turnover(position),
        }
    )


def portfolio(daily: pd.DataFrame) -> pd.DataFrame:
    """The equal-weight portfolio of each model's series: `model`, `ds`, `ret`, `turnover`
    (means over the series trading that day) and `equity` (growth of 1), by model and date."""
    out = daily.groupby(["model", "ds"], sort=True)[["ret", "turnover"]].mean().reset_index()
    out["equity"] = out.groupby("model", sort=False)["ret"].transform(lambda r: np.cumprod(1 + r))
    return out


def trading_report(daily: pd.DataFrame) -> dict:
    """`performance` per model of the portfolio (`models`), per series and model (`series`),
    with `BUY_AND_HOLD` among the models."""
    whole = {
        m: performance(g["ret"].to_numpy(), g["turnover"].to_numpy()) for m, g in portfolio(daily).groupby("model")
    }
    by_series = {
        uid: {m: performance(g["ret"].to_numpy(), g["turnover"].to_numpy()) for m, g in s.groupby("model", sort=True)}
        for uid, s in daily.groupby("unique_id", sort=True)
    }
    return {"models": whole, "series": by_series}
