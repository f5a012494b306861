"""Stage `features`: lag windows of the forecast target, per series (the seed's table).

    python -m pipeline.features    # params: features.*  ->  data/windows.parquet

A row dated `ds` holds `lag_1..lag_L` (the L values before `ds`, lag_1 the most recent) and
`target` (the value on `ds`): values at t-L+1..t predict t+1. The target transform is the
daily log return by default, or the price itself. The window models (stages `sklearn`, `lstm`)
train and forecast on these rows; a forecast from the latest prices builds the same rows from
the same functions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline import io, paths
from pipeline.cli import UserError, run
from pipeline.params import load_params


def transform(log_price: np.ndarray, target: str) -> np.ndarray:
    """The modelled series: log returns (one shorter than the input) or prices."""
    return np.diff(log_price) if target == "log_return" else np.exp(log_price)


def lookback(n_lags: int, target: str) -> int:
    """How many prices come before the first window's target date."""
    return n_lags + (1 if target == "log_return" else 0)


def make_windows(values: np.ndarray, n_lags: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of `n_lags` consecutive values (most recent first) and the value that follows each."""
    if len(values) <= n_lags:
        return np.empty((0, n_lags)), np.empty(0)
    lagged = np.lib.stride_tricks.sliding_window_view(values[:-1], n_lags)[:, ::-1]
    return np.ascontiguousarray(lagged), values[n_lags:].copy()


def windows_table(prices: pd.DataFrame, n_lags: int, target: str) -> pd.DataFrame:
    """The long windows table (`unique_id`, `ds`, `lag_1..lag_L`, `target`) for every series."""
    price_column = io.target_column(prices.columns)
    frames = []
    for unique_id, series in prices.groupby("unique_id", sort=True):
        skip = lookback(n_lags, target)
        if len(series) <= skip:
            raise UserError(
                f"features.n_lags: {n_lags} lags need more than {skip} prices, series {unique_id} has {len(series)}"
            )
        X, y = make_windows(transform(np.log(series[price_column].to_numpy()), target), n_lags)
        frame = pd.DataFrame(X, columns=[f"lag_{i}" for i in range(1, n_lags + 1)])
        frame.insert(0, "ds", series["ds"].to_numpy()[skip:])
        frame.insert(0, "unique_id", unique_id)
        frame["target"] = y
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def main() -> None:
    params = load_params().features
    prices = io.read_table(paths.PRICES, ["unique_id", "ds"])
    windows = windows_table(prices, params.n_lags, params.target)
    io.write_table(windows, paths.WINDOWS)
    print(f"features: {len(windows)} windows of {params.n_lags} lags ({params.target}) -> {paths.WINDOWS}")


if __name__ == "__main__":
    run(main)
