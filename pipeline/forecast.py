"""Tomorrow's price from each series' champion in the MLflow model registry.

    python -m pipeline.forecast                  # every series in data/prices.parquet
    python -m pipeline.forecast --series SP500

The evaluate stage registers each series' champion (`pipeline.scoring.champions`: the lowest-RMSE
model that beats the naive baseline significantly, else naive) as `stockcast-<series>` with
alias `champion` (see `pipeline.tracking`). This command loads it
through `mlflow.pyfunc`, gives it the series' prices from `data/prices.parquet` and prints the
forecast for the next trading day, with its prediction interval where the model has one.
It writes nothing.
"""

from __future__ import annotations

import argparse
import math

import pandas as pd

from pipeline import io, paths, tracking
from pipeline.cli import UserError, run


def champion_forecast(series: str, prices: pd.DataFrame) -> dict:
    """The champion's forecast for `series` after the last day in `prices`.

    Returns `series`, `ds`, `y_hat` and, where the model gives them, `y_lo`, `y_hi`, plus the
    registered version's `model` and `version`.
    """
    model, version = tracking.load_champion(series)
    row = model.predict(tracking.recent_prices(prices, series)).iloc[0]
    if not math.isfinite(row["y_hat"]):
        raise UserError(f"models:/{tracking.registered_name(series)}@{tracking.CHAMPION}: forecast is not a finite number ({row['y_hat']})")
    return {"series": series, **row.to_dict(), "model": version.get("model", "?"), "version": version["version"]}


def describe(forecast: dict) -> str:
    """One line for a person: date, price, interval if any, and which model said so."""
    line = f"{forecast['series']} {forecast['ds']:%Y-%m-%d}: {forecast['y_hat']:.2f}"
    if "y_lo" in forecast and "y_hi" in forecast:
        line += f" (interval {forecast['y_lo']:.2f} to {forecast['y_hi']:.2f})"
    return line + f", champion {forecast['model']} (version {forecast['version']})"


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
