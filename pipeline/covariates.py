"""Covariates: what a model may read beside the price, one value per series and trading day.

    table = covariate_table(prices, ["volume", "range", "NASDAQ"])   # unique_id, ds, one column per channel

`features.covariates` names them from a fixed set (`NAMES`), or names another series of the
prices table:

- `volume`: the log change of the volume from the day before;
- `range`: log(high / low) of the day;
- `gap`: log(open / the previous day's close) (unadjusted prices, as the exchange quotes them);
- `day_of_week`, `month`: the calendar, known in advance, each as two channels on the unit
  circle (`<name>_sin`, `<name>_cos`: Friday sits next to Monday's week before, December next
  to January, which one ordinal number would put far apart);
- any other series id, e.g. `NASDAQ` beside `SP500`: that series' log return as of each date of
  this one, from its last price at or before each date (on a day it did not trade, 0, and the
  next day's return spans both). A series is not its own covariate: its column is 0 there (no
  information, so every series' windows have the same channels).

Every value is dated: the value on day t uses data of day t and before only, so a forecast
from cutoff t may read it (`features` places them in the windows, ARIMA lags them one day).
Missing values, and zero volume (a day without a reported volume, e.g. NASDAQ's 2015-05-12), are
carried forward from the last day that had one: the log change of a volume carried forward is 0
on that day, and the next day's is measured from the last volume reported. A value before the
first day that has one stays missing, and the model leaves out the windows that hold it. What
the data cannot give at all is a `UserError` naming `features.covariates`: no column for it, a
series without one value of it, a negative volume, a series id not in the table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline import io, paths
from pipeline.cli import UserError

PAST = {"volume": ("volume",), "range": ("high", "low"), "gap": ("open", "close")}  # name -> columns it needs
CALENDAR = {"day_of_week": 7, "month": 12}  # name -> period, in its own units
NAMES = (*PAST, *CALENDAR)  # the fixed names; anything else must be a series id


def channels(covariates) -> list[str]:
    """The columns the covariates take, in order: one each, two for a calendar covariate."""
    out = []
    for name in covariates:
        out += [f"{name}_sin", f"{name}_cos"] if name in CALENDAR else [name]
    return out


def covariates_of(columns) -> list[str]:
    """The covariates whose channels are among `columns` (the other side of `channels`), in order."""
    out = []
    for column in columns:
        stem = column.rsplit("_", 1)[0]
        name = stem if stem in CALENDAR and column.endswith(("_sin", "_cos")) else column
        if name not in out:
            out.append(name)
    return out


def past(covariates) -> list[str]:
    """The covariates not known in advance: every one but the calendar's."""
    return [name for name in covariates if name not in CALENDAR]


def _fail(problem: str) -> UserError:
    return UserError(f"features.covariates: {problem}")


def _carried(values: np.ndarray, name: str, uid: str) -> np.ndarray:
    """`values` with each missing value replaced by the last one before it (leading ones stay)."""
    filled = pd.Series(values, dtype="float64").ffill().to_numpy()
    if not np.isfinite(filled).any():
        raise _fail(f"{name}: series {uid} has no value of it in {paths.PRICES}")
    return filled


def _past_values(rows: pd.DataFrame, name: str, uid: str) -> np.ndarray:
    missing = [column for column in PAST[name] if column not in rows]
    if missing:
        raise _fail(f"{name} needs the {missing[0]} column, which {paths.PRICES} does not have (its source gives none)")
    if name == "volume":
        volume = rows["volume"].to_numpy("float64")
        if (volume < 0).any():
            day = rows["ds"].iloc[int(np.argmax(volume < 0))]
            raise _fail(f"volume: series {uid} has a negative volume on {day:%Y-%m-%d}")
        level = _carried(np.where(volume > 0, volume, np.nan), name, uid)
        return np.concatenate([[np.nan], np.diff(np.log(level))])
    if name == "range":
        return _carried(np.log(rows["high"].to_numpy("float64") / rows["low"].to_numpy("float64")), name, uid)
    close = rows["close"].to_numpy("float64")
    gap = np.concatenate([[np.nan], np.log(rows["open"].to_numpy("float64")[1:] / close[:-1])])
    return _carried(gap, name, uid)


def _other_series(prices: pd.DataFrame, rows: pd.DataFrame, other: str) -> np.ndarray:
    """Series `other`'s log return between consecutive days of `rows`, from its last price at or
    before each day (missing before its first day)."""
    theirs = prices[prices["unique_id"] == other]
    days = theirs["ds"].to_numpy("datetime64[ns]")
    at = np.searchsorted(days, rows["ds"].to_numpy("datetime64[ns]"), side="right") - 1
    log_price = np.log(theirs[io.target_column(prices.columns)].to_numpy("float64"))
    as_of = np.where(at >= 0, log_price[np.maximum(at, 0)], np.nan)
    return np.concatenate([[np.nan], np.diff(as_of)])


def series_covariates(prices: pd.DataFrame, uid: str, covariates) -> pd.DataFrame:
    """Series `uid`'s covariate channels by day (`ds` and one column per channel), oldest first."""
    rows = prices[prices["unique_id"] == uid].sort_values("ds")
    ds = pd.DatetimeIndex(rows["ds"])
    out = {"ds": ds.to_numpy("datetime64[ns]")}
    known = set(prices["unique_id"].unique())
    for name in covariates:
        if name in CALENDAR:
            value = ds.day_of_week.to_numpy() if name == "day_of_week" else ds.month.to_numpy() - 1
            angle = 2 * np.pi * value / CALENDAR[name]
            out[f"{name}_sin"], out[f"{name}_cos"] = np.sin(angle), np.cos(angle)
        elif name in PAST:
            out[name] = _past_values(rows, name, uid)
        elif name not in known:
            expected = ", ".join([*NAMES, *sorted(known)])
            raise _fail(f"{name!r} is neither a covariate nor a series of {paths.PRICES} (expected one of {expected})")
        else:
            out[name] = np.zeros(len(rows)) if name == uid else _other_series(prices, rows, name)
    return pd.DataFrame(out)


def covariate_table(prices: pd.DataFrame, covariates) -> pd.DataFrame:
    """Every series' `series_covariates`: `unique_id`, `ds`, the channels, sorted by series and day."""
    frames = []
    for uid in sorted(prices["unique_id"].unique()):
        frame = series_covariates(prices, uid, covariates)
        frame.insert(0, "unique_id", uid)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
