"""Stage `features`: lag windows of the forecast target and its covariates, per series.

    python -m pipeline.features    # params: features.*  ->  data/windows.parquet, data/covariates.parquet

A row dated `ds` holds `lag_1..lag_L` (the L values before `ds`, lag_1 the most recent) and
`target` (the value on `ds`): values at t-L+1..t predict t+1. The target transform is the
daily log return by default, or the price itself. Each covariate channel
(`features.covariates`, `pipeline.covariates`) adds `<channel>_lag_1..<channel>_lag_L`, its
values on the same L days (lag_1 dated the cutoff, the day before `ds`): nothing dated `ds` or
later. `data/covariates.parquet` holds the channels by day, what ARIMA's regression reads. The
window models (stages `sklearn`, `lstm`, `rnn_scratch`) train and forecast on these rows; a
forecast from the latest prices builds the same rows from the same functions (`input_rows`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline import io, paths
from pipeline.cli import UserError, run
from pipeline.covariates import channels, covariate_table
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


def input_columns(n_lags: int, covariates=()) -> list[str]:
    """The windows table's input columns: the target's lags, then each covariate channel's."""
    names = ["", *(f"{channel}_" for channel in channels(covariates))]
    return [f"{name}lag_{i}" for name in names for i in range(1, n_lags + 1)]


def input_rows(log_price: np.ndarray, channel_values: np.ndarray | None, n_lags: int, target: str) -> np.ndarray:
    """`(days, n_lags * (1 + k))`: row t holds the windows table's inputs for target day t, in
    `input_columns` order, from the log prices and the `(days, k)` channel values by day
    (`None`: no covariates); NaN for the first days, which have no full window.

    Channel lag k of row t is its value on day t - k, the days of the target's lags.
    """
    log_price = np.asarray(log_price, dtype="float64")
    k = 0 if channel_values is None else channel_values.shape[1]
    out = np.full((len(log_price), n_lags * (1 + k)), np.nan)
    skip = lookback(n_lags, target)
    if len(log_price) > skip:
        blocks = [make_windows(transform(log_price, target), n_lags)[0]]
        blocks += [make_windows(channel_values[skip - n_lags :, j], n_lags)[0] for j in range(k)]
        out[skip:] = np.hstack(blocks)
    return out


def windows_table(
    prices: pd.DataFrame, n_lags: int, target: str, covariates: pd.DataFrame | None = None, names=()
) -> pd.DataFrame:
    """The long windows table (`unique_id`, `ds`, `input_columns`, `target`) for every series;
    `covariates` is `covariate_table`'s for the covariates `names` (or `None` for none)."""
    price_column = io.target_column(prices.columns)
    by_series = {} if covariates is None else dict(iter(covariates.groupby("unique_id", sort=False)))
    columns = input_columns(n_lags, names)
    frames = []
    for unique_id, series in prices.groupby("unique_id", sort=True):
        skip = lookback(n_lags, target)
        if len(series) <= skip:
            raise UserError(
                f"features.n_lags: {n_lags} lags need more than {skip} prices, series {unique_id} has {len(series)}"
            )
        log_price = np.log(series[price_column].to_numpy())
        values = by_series[unique_id][channels(names)].to_numpy("float64") if names else None
        frame = pd.DataFrame(input_rows(log_price, values, n_lags, target)[skip:], columns=columns)
        frame.insert(0, "ds", series["ds"].to_numpy()[skip:])
        frame.insert(0, "unique_id", unique_id)
        frame["target"] = make_windows(transform(log_price, target), n_lags)[1]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def main() -> None:
    params = load_params().features
    prices = io.read_table(paths.PRICES, ["unique_id", "ds"])
    covariates = covariate_table(prices, params.covariates)
    windows = windows_table(prices, params.n_lags, params.target, covariates, params.covariates)
    io.write_table(windows, paths.WINDOWS)
    io.write_table(covariates, paths.COVARIATES)
    named = f", covariates {', '.join(params.covariates)}" if params.covariates else ""
    print(f"features: {len(windows)} windows of {params.n_lags} lags ({params.target}{named}) -> {paths.WINDOWS}")


if __name__ == "__main__":
    run(main)
