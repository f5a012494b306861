"""Tomorrow's price from each series' champion.

    python -m pipeline.forecast                  # every series in data/prices.parquet
    python -m pipeline.forecast --series SP500

The champion of a series (`pipeline.scoring.champions`: the lowest-RMSE model that beats the
naive baseline significantly, else naive) is, with tracking on, the one the registry serves as
`stockcast-<series>@champion` (the `track` stage registers it); with `STOCKCAST_TRACKING=off`,
or before the registry has one, it is the champion of `reports/metrics.json`, loaded from
`models/<champion>/`. Both give the same number. The forecast is for the next NYSE trading day,
from the series' prices in `data/prices.parquet`, with its prediction interval where the model
has one. The command writes nothing.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import pandas as pd

from pipeline import io, paths
from pipeline.calendar import next_trading_day
from pipeline.cli import UserError, run


def recent_prices(prices: pd.DataFrame, series: str) -> pd.DataFrame:
    """One series' `ds` and target `price` (`io.target_column`), oldest first: a forecast's input."""
    rows = prices[prices["unique_id"] == series].sort_values("ds")
    column = io.target_column(prices.columns)
    return pd.DataFrame({"ds": rows["ds"].to_numpy("datetime64[ns]"), "price": rows[column].to_numpy("float64")})


def next_day_forecast(model, prices: pd.DataFrame) -> pd.DataFrame:
    """A fitted model's forecast for the day after `prices` (one series' `ds`, `price`, any order).

    One row: `ds` the next trading day, `y_hat` the forecast price and, where the model gives
    one, its prediction interval `y_lo`, `y_hi`.
    """
    frame = prices.sort_values("ds")
    price = frame["price"].to_numpy("float64")
    y = np.log(price)
    # A model forecasts the last value of its input from the values before it, so the unknown
    # next day is a placeholder that no forecast reads.
    extended = np.append(y, y[-1])

    def to_price(log_price) -> np.ndarray:  # relative to the last price, as the walk-forward loop maps forecasts
        return price[-1] * np.exp(np.asarray(log_price, dtype="float64").reshape(-1) - y[-1])

    out = {"ds": [next_trading_day(frame["ds"].iloc[-1])], "y_hat": to_price(model.predict(extended, 1))}
    interval = model.predict_interval(extended, 1)
    if interval is not None:
        out["y_lo"], out["y_hi"] = to_price(interval[:, 0]), to_price(interval[:, 1])
    return pd.DataFrame(out)


def from_models(series: str, prices: pd.DataFrame) -> tuple[pd.DataFrame, str, str]:
    """The forecast of the champion in `reports/metrics.json`, loaded from `models/<champion>/`:
    (the forecast row, the champion's name, where it came from)."""
    from pipeline import scoring
    from pipeline.models import loader

    report = io.read_json(paths.METRICS)
    champion = scoring.champions(report).get(series)
    if champion is None:
        raise UserError(f"{paths.METRICS}: no scores for series {series!r} (rerun `dvc repro`)")
    directory = paths.model_directory(champion)
    model = loader.load(directory, series)  # a missing or damaged file: a UserError naming it
    return next_day_forecast(model, recent_prices(prices, series)), champion, f"{directory.as_posix()}/"


def from_registry(series: str, prices: pd.DataFrame) -> tuple[pd.DataFrame, str, str] | None:
    """The registry champion's forecast, as `from_models` returns it; `None` if there is none."""
    from pipeline.tracking import registry  # imports mlflow: only with tracking on

    found = registry.load_champion(series)
    if found is None:
        return None
    model, version = found
    where = f"{registry.registered_name(series)} version {version['version']}"
    return model.predict(recent_prices(prices, series)), version.get("model", "?"), where


def champion_forecast(series: str, prices: pd.DataFrame) -> dict:
    """The champion's forecast for `series` after the last day in `prices`: `series`, `ds`,
    `y_hat` and, where the model gives them, `y_lo`, `y_hi`, plus the champion's `model` and
    `source` (the registry version, or the models directory)."""
    from pipeline.tracking import store as tracking_store  # no mlflow import: only the switch

    found = from_registry(series, prices) if tracking_store.enabled() else None
    forecast, model, source = found or from_models(series, prices)
    row = forecast.iloc[0].to_dict()
    if not math.isfinite(row["y_hat"]):
        raise UserError(f"{source}: the {model} forecast for {series} is not a finite number ({row['y_hat']})")
    return {"series": series, **row, "model": model, "source": source}


def describe(forecast: dict) -> str:
    """One line for a person: date, price, interval if any, and which model said so."""
    line = f"{forecast['series']} {forecast['ds']:%Y-%m-%d}: {forecast['y_hat']:.2f}"
    if "y_lo" in forecast and "y_hi" in forecast:
        line += f" (interval {forecast['y_lo']:.2f} to {forecast['y_hi']:.2f})"
    return line + f", champion {forecast['model']} ({forecast['source']})"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.forecast", description=__doc__.splitlines()[0])
    parser.add_argument("--series", help="one series id (default: every series in data/prices.parquet)")
    args = parser.parse_args()
    prices = io.read_table(paths.PRICES, ["unique_id", "ds"])
    known = sorted(prices["unique_id"].unique())
    if args.series is not None and args.series not in known:
        raise UserError(f"--series: {args.series!r} is not in {paths.PRICES} (series: {', '.join(known)})")
    for series in [args.series] if args.series else known:
        print(describe(champion_forecast(series, prices)))


if __name__ == "__main__":
    run(main)
