"""The next trading days' prices, at every horizon, from each series' champions.

    python -m pipeline.forecast                  # every series in data/prices.parquet
    python -m pipeline.forecast --series SP500

The champion of a series at a horizon (`pipeline.scoring.champions`: the lowest-RMSE model that
beats the naive baseline significantly at that horizon, else naive) is, with tracking on, the one
the registry serves as `stockcast-<series>@champion-h<h>` (the `track` stage registers it); with
`STOCKCAST_TRACKING=off`, or before the registry has one, it is the champion of
`reports/metrics.json`, loaded from `models/<champion>/`. Both give the same number. Each
horizon h is forecast from the series' last day in `data/prices.parquet` to the h-th NYSE
trading day after it, with its prediction interval where the model has one, one line per
horizon. The command writes nothing.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import pandas as pd

from pipeline import io, paths
from pipeline.calendar import next_trading_days
from pipeline.cli import UserError, run
from pipeline.covariates import channels, covariates_of, series_covariates
from pipeline.intervals import level_name


def recent_prices(prices: pd.DataFrame, series: str, covariates=()) -> pd.DataFrame:
    """One series' `ds` and target `price` (`io.target_column`), oldest first, and the channels
    of `covariates` by day (`pipeline.covariates`): a forecast's input."""
    rows = prices[prices["unique_id"] == series].sort_values("ds")
    column = io.target_column(prices.columns)
    frame = pd.DataFrame({"ds": rows["ds"].to_numpy("datetime64[ns]"), "price": rows[column].to_numpy("float64")})
    if covariates:
        values = series_covariates(prices, series, covariates)
        for channel in channels(covariates):
            frame[channel] = values[channel].to_numpy("float64")
    return frame


def horizon_forecasts(model, prices: pd.DataFrame) -> pd.DataFrame:
    """A fitted model's forecasts from the last day of `prices` (one series' `ds`, `price` and
    the model's covariate channels, `recent_prices`; any order).

    One row per horizon of the model: `ds` the h-th next trading day, `h`, `y_hat` the forecast
    price and, where the model gives them, its prediction intervals `y_lo_<L>`, `y_hi_<L>` at
    each of its levels L (percent).
    """
    frame = prices.sort_values("ds")
    price = frame["price"].to_numpy("float64")
    y = np.log(price)
    # A model forecasts from the cutoffs before the last value of its input, so a placeholder
    # day after the last makes the last day a cutoff; no forecast reads the placeholder (nor
    # its covariate values, which are missing).
    extended = np.append(y, y[-1])
    names = channels(model.covariates)
    missing = [name for name in names if name not in frame]
    if missing:
        raise UserError(f"forecast input: no column {missing[0]!r} (covariate channels: {', '.join(names)})")
    values = np.vstack([frame[names].to_numpy("float64"), np.full((1, len(names)), np.nan)]) if names else None
    X = model.inputs(extended, values)
    horizons = list(model.horizons)

    def to_price(log_price) -> np.ndarray:  # relative to the last price, as the walk-forward loop maps forecasts
        return price[-1] * np.exp(np.asarray(log_price, dtype="float64").reshape(-1) - y[-1])

    days = next_trading_days(frame["ds"].iloc[-1], horizons[-1])
    out = {
        "ds": [days[h - 1] for h in horizons],
        "h": np.asarray(horizons, dtype="int64"),
        "y_hat": to_price(model.predict(extended, 1, X)[0]),
    }
    interval = model.predict_interval(extended, 1, X) if model.own_intervals else None
    if interval is not None:
        for k, level in enumerate(model.levels):
            name = level_name(level)
            out[f"y_lo_{name}"], out[f"y_hi_{name}"] = to_price(interval[0, :, k, 0]), to_price(interval[0, :, k, 1])
    return pd.DataFrame(out)


class Champions:
    """Each horizon's champion of one series and its forecasts, loading each model once."""

    def __init__(self, series: str, prices: pd.DataFrame, report: dict, registry: bool):
        self.series, self.prices, self.report, self.registry = series, prices, report, registry
        self.loaded: dict[str, tuple[pd.DataFrame, str, str]] = {}

    def forecast(self, h: int) -> tuple[pd.Series, str, str]:
        """(the row of horizon `h`, the champion's name, where it came from)."""
        found = self._from_registry(h) if self.registry else None
        table, model, source = found or self._from_models(h)
        rows = table[table["h"] == h]
        if rows.empty:
            raise UserError(f"{source}: the {model} model has no {h}-day forecast (rerun `dvc repro`)")
        return rows.iloc[0], model, source

    def _from_models(self, h: int) -> tuple[pd.DataFrame, str, str]:
        from pipeline import scoring
        from pipeline.models import loader

        champion = scoring.champions(self.report, h).get(self.series)
        if champion is None:
            raise UserError(f"{paths.METRICS}: no scores for series {self.series!r} (rerun `dvc repro`)")
        if champion not in self.loaded:
            directory = paths.model_directory(champion)
            model = loader.load(directory, self.series)  # a missing or damaged file: a UserError naming it
            recent = recent_prices(self.prices, self.series, model.covariates)
            self.loaded[champion] = (horizon_forecasts(model, recent), champion, f"{directory.as_posix()}/")
        return self.loaded[champion]

    def _from_registry(self, h: int) -> tuple[pd.DataFrame, str, str] | None:
        from pipeline.tracking import registry  # imports mlflow: only with tracking on

        found = registry.load_champion(self.series, h)
        if found is None:
            return None
        model, version = found
        where = f"{registry.registered_name(self.series)} version {version['version']}"
        if where not in self.loaded:
            # The served model's input schema names the covariate channels it reads.
            wanted = [name for name in model.metadata.get_input_schema().input_names() if name not in ("ds", "price")]
            recent = recent_prices(self.prices, self.series, covariates_of(wanted))
            self.loaded[where] = (model.predict(recent), version.get("model", "?"), where)
        return self.loaded[where]


def champion_forecasts(series: str, prices: pd.DataFrame) -> list[dict]:
    """The champions' forecasts for `series` after the last day in `prices`, one per horizon of
    `reports/metrics.json`: `series`, `h`, `ds`, `y_hat` and, where the model gives them, `y_lo_<L>`,
    `y_hi_<L>`, plus the champion's `model` and `source` (the registry version, or the models directory)."""
    from pipeline import scoring
    from pipeline.tracking import store as tracking_store  # no mlflow import: only the switch

    report = io.read_json(paths.METRICS)
    champions = Champions(series, prices, report, registry=tracking_store.enabled())
    out = []
    for h in scoring.horizons(report):
        row, model, source = champions.forecast(h)
        if not math.isfinite(row["y_hat"]):
            raise UserError(f"{source}: the {model} forecast for {series} is not a finite number ({row['y_hat']})")
        out.append({"series": series, **row.to_dict(), "h": int(row["h"]), "model": model, "source": source})
    return out


def describe(forecast: dict) -> str:
    """One line for a person: date, horizon, price, intervals if any, and which model said so,
    e.g. `SP500 2019-01-02 (h=1): 2506.85 (80%: 2470.11 to 2544.13, 95%: ...), champion ...`."""
    line = f"{forecast['series']} {forecast['ds']:%Y-%m-%d} (h={forecast['h']}): {forecast['y_hat']:.2f}"
    levels = [key[len("y_lo_") :] for key in forecast if key.startswith("y_lo_")]
    if levels:
        bounds = [f"{level}%: {forecast[f'y_lo_{level}']:.2f} to {forecast[f'y_hi_{level}']:.2f}" for level in levels]
        line += f" ({', '.join(bounds)})"
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
        for forecast in champion_forecasts(series, prices):
            print(describe(forecast))


if __name__ == "__main__":
    run(main)
