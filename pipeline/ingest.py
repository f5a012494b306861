"""Stage `ingest`: load daily prices from the chosen source into one long, validated table.

    python -m pipeline.ingest      # params: data.*  ->  data/prices.parquet

Sources (`data.source`): `sample` (real daily prices that installed packages ship, no network:
the S&P 500 and NASDAQ indices, 20 S&P 500 stocks, four tech stocks; `pipeline.samples`), `csv`
(a user's file), `yfinance` (optional extra), `synthetic` (seeded geometric random walks for
tests and benchmarks).

NaN policy, per column: a row whose forecast-target price (adj_close, else close) is NaN is
dropped and the count is logged; NaN in the other price columns and in volume is kept (those
columns are carried along, not modelled). Every present price must be finite and positive.
"""

from __future__ import annotations

import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.tseries.api import guess_datetime_format

from pipeline import io, paths, samples
from pipeline.cli import UserError, run
from pipeline.params import DataParams, load_params

TICKER_PATTERN = re.compile(r"^[A-Za-z0-9^][A-Za-z0-9.^=_-]{0,31}$")
MAX_PRICE = 1e12  # above any real quote; larger values are data errors that would overflow returns
HEADER_ALIASES = {
    "date": "ds",
    "ds": "ds",
    "datetime": "ds",
    "timestamp": "ds",
    "ticker": "unique_id",
    "symbol": "unique_id",
    "unique_id": "unique_id",
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "adj close": "adj_close",
    "adj_close": "adj_close",
    "adjclose": "adj_close",
    "adjusted close": "adj_close",
    "volume": "volume",
}


def validate_ticker(ticker: str, where: str) -> str:
    """Return `ticker` if it is a plain symbol; anything path-like (`/`, `..`) is rejected."""
    if not TICKER_PATTERN.fullmatch(ticker) or ".." in ticker:
        raise UserError(f"{where}: invalid ticker {ticker!r} (letters, digits and . ^ = _ - only, at most 32)")
    return ticker


def standardize(raw: pd.DataFrame, source: str, default_id: str | None = None) -> pd.DataFrame:
    """Map a wide or long price table onto the prices contract and validate it.

    `raw` has a date column, at least one price column and optionally a ticker column
    (any header case; Yahoo-style names accepted). Without a ticker column every row belongs to
    `default_id`. Returns rows sorted by (`unique_id`, `ds`).
    """
    renamed = {}
    for column in raw.columns:
        canonical = HEADER_ALIASES.get(str(column).strip().lower())
        if canonical is not None:
            if canonical in renamed.values():
                raise UserError(f"{source}: two columns map to {canonical!r} (one is {column!r})")
            renamed[column] = canonical
    frame = raw[list(renamed)].rename(columns=renamed)
    if "ds" not in frame:
        raise UserError(f"{source}: missing date column (expected 'Date' or 'ds')")
    prices = [c for c in io.PRICE_COLUMNS if c in frame]
    if not prices:
        raise UserError(f"{source}: missing price column (expected one of Open, High, Low, Close, Adj Close)")
    if frame.empty:
        raise UserError(f"{source}: no data rows")
    if "unique_id" not in frame:
        if default_id is None:
            raise UserError(f"{source}: missing ticker column")
        frame.insert(0, "unique_id", default_id)
    frame["unique_id"] = _tickers(frame["unique_id"], source)
    frame["ds"] = _dates(frame["ds"], source)
    for column in [*prices, *(["volume"] if "volume" in frame else [])]:
        frame[column] = _numbers(frame[column], column, source)
    frame = _drop_missing_target(frame, source)
    for column in prices:
        values = frame[column].dropna()
        bad = values[(values <= 0) | ~np.isfinite(values) | (values > MAX_PRICE)]
        if len(bad):
            row = bad.index[0]
            raise UserError(
                f"{source}: column {column!r}: price must be positive and finite (below {MAX_PRICE:g}), "
                f"got {float(bad.iloc[0])!r} on {_day(frame.at[row, 'ds'])}"
            )
    frame = frame.sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)
    duplicated = frame.duplicated(["unique_id", "ds"])
    if duplicated.any():
        row = frame[duplicated].iloc[0]
        raise UserError(f"{source}: duplicate date {_day(row.ds)} for series {row.unique_id}")
    short = frame.groupby("unique_id").size()
    if (short < 2).any():
        raise UserError(f"{source}: series {short[short < 2].index[0]} has fewer than 2 rows")
    columns = [
        "unique_id",
        "ds",
        *[c for c in io.PRICE_COLUMNS if c in frame],
        *(["volume"] if "volume" in frame else []),
    ]
    return frame[columns]


def _tickers(column: pd.Series, source: str) -> pd.Series:
    if column.isna().any():
        raise UserError(
            f"{source}: column 'unique_id': empty ticker on row {int(column.isna().to_numpy().argmax()) + 1}"
        )
    tickers = column.astype(str).str.strip()
    for ticker in tickers.unique():
        validate_ticker(ticker, source)
    return tickers


def _dates(column: pd.Series, source: str) -> pd.Series:
    text = column.astype("string").str.strip()
    empty = text.isna() | text.eq("")
    if empty.any():
        raise UserError(f"{source}: column 'ds': empty date on row {int(empty.to_numpy().argmax()) + 1}")
    # ISO, else the one format of the first date: never pandas' row-by-row dateutil guesses or its
    # words 'now' and 'today', which read '12:00' or 'now' as a time today (another table tomorrow).
    formats = ["ISO8601", *_calendar_format(text.iloc[0])]
    relative = text.str.lower().isin(["now", "today"])
    for fmt in formats if not relative.any() else []:
        try:
            return pd.to_datetime(text, format=fmt).astype("datetime64[ns]")
        except (ValueError, TypeError, OverflowError):
            continue
    parsed = pd.to_datetime(text.mask(relative), format=formats[-1], errors="coerce")
    row = int(parsed.isna().to_numpy().argmax())
    raise UserError(f"{source}: column 'ds': unparseable or inconsistent date {text.iloc[row]!r} on row {row + 1}")


def _calendar_format(date: str) -> list[str]:
    """The strptime format pandas guesses for `date`, if it names a year, a month and a day."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "day-first format guessed", which would go to stderr
        guessed = guess_datetime_format(date)
    parts = set(re.findall(r"%.", guessed or ""))
    return [guessed] if {"%Y", "%d"} <= parts and parts & {"%m", "%b", "%B"} else []


def _numbers(column: pd.Series, name: str, source: str) -> pd.Series:
    text = column.astype("string").str.strip()
    values = pd.to_numeric(text.mask(text.str.lower().isin(["", "nan", "null", "na"])), errors="coerce")
    bad = values.isna() & text.notna() & ~text.str.lower().isin(["", "nan", "null", "na"])
    if bad.any():
        row = int(bad.to_numpy().argmax())
        raise UserError(f"{source}: column {name!r}: non-numeric value {column.iloc[row]!r} on row {row + 1}")
    return values.astype("float64")


def _drop_missing_target(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    target = io.target_column(frame.columns)
    missing = frame[target].isna()
    if missing.all():
        raise UserError(f"{source}: column {target!r}: no values")
    if missing.any():
        print(f"ingest: {source}: dropped {int(missing.sum())} rows with no {target}", file=sys.stderr)
    return frame[~missing]


def _day(value) -> str:
    return pd.Timestamp(value).strftime("%Y-%m-%d")


def filter_dates(prices: pd.DataFrame, start: str | None, end: str | None) -> pd.DataFrame:
    """Keep rows with `start <= ds <= end` (either bound optional)."""
    keep = pd.Series(True, index=prices.index)
    if start:
        keep &= prices["ds"] >= pd.Timestamp(start)
    if end:
        keep &= prices["ds"] <= pd.Timestamp(end)
    kept = prices[keep].reset_index(drop=True)
    if kept.empty:
        raise UserError(f"data.start/data.end: no rows between {start or 'the start'} and {end or 'the end'}")
    return kept


def synthetic_prices(n_series: int, n_days: int, seed: int) -> pd.DataFrame:
    """Seeded geometric random walks on business days: a pure function of its arguments."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2000-01-03", periods=n_days).astype("datetime64[ns]")
    frames = []
    for i in range(n_series):
        drift, vol = rng.uniform(-2e-4, 6e-4), rng.uniform(0.005, 0.02)
        log_price = np.log(rng.uniform(20, 200)) + np.cumsum(rng.normal(drift, vol, n_days))
        frames.append(pd.DataFrame({"unique_id": f"SYN{i:04d}", "ds": days, "close": np.exp(log_price)}))
    return pd.concat(frames, ignore_index=True)


def load_sample(name: str) -> pd.DataFrame:
    """One of the data sets installed packages ship (`samples.LOADERS`), on the prices contract."""
    return standardize(samples.LOADERS[name](), f"data set {name}", default_id=samples.ARCH_IDS.get(name))


def load_samples(names: list[str]) -> pd.DataFrame:
    """The data sets `names`, one table; a series id in two of them is a `UserError`."""
    tables = [load_sample(name) for name in names]
    seen: dict[str, str] = {}
    for name, table in zip(names, tables, strict=True):
        for uid in table["unique_id"].unique():
            if uid in seen:
                raise UserError(f"data.datasets: {seen[uid]} and {name} both have series {uid}; keep one")
            seen[uid] = name
    return pd.concat(tables, ignore_index=True)


def read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    try:
        raw = pd.read_csv(
            path, encoding="utf-8", dtype=str, keep_default_na=False, na_values=["", "NaN", "nan", "null", "NA"]
        )
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text ({_first_non_utf8(path.read_bytes())})") from None
    except pd.errors.EmptyDataError:
        raise UserError(f"{path}: file is empty") from None
    except pd.errors.ParserError as err:
        raise UserError(f"{path}: malformed CSV ({str(err).strip()})") from None
    raw = raw.dropna(how="all").reset_index(drop=True)  # rows of empty fields (`,,,` from spreadsheets) are blank lines
    return standardize(raw, str(path), default_id=validate_ticker(path.stem.upper(), f"{path}: file name"))


def _first_non_utf8(data: bytes) -> str:
    """Where `data` stops being UTF-8 (pandas' own error counts from the start of a chunk)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        return f"byte 0x{data[err.start]:02x} on line {line}"
    return "undecodable"


def download_yfinance(tickers: list[str], start: str | None, end: str | None) -> pd.DataFrame:
    for ticker in tickers:  # before anything (yfinance's own cache included) sees them
        validate_ticker(ticker, "data.tickers")
    try:
        import yfinance
    except ImportError:
        raise UserError("data.source: yfinance needs the optional extra (pip install 'stockcast[yfinance]')") from None
    frames = []
    for ticker in tickers:
        # yfinance's `end` is exclusive; ours is inclusive.
        stop = (pd.Timestamp(end) + pd.Timedelta(days=1)).strftime("%Y-%m-%d") if end else None
        raw = yfinance.download(
            ticker, start=start, end=stop, auto_adjust=False, progress=False, multi_level_index=False
        )
        if raw is None or raw.empty:
            raise UserError(f"data.tickers: no prices for {ticker!r} from yfinance (unknown ticker, or no network)")
        frames.append(standardize(raw.reset_index(), f"yfinance {ticker}", default_id=ticker))
    return pd.concat(frames, ignore_index=True)


def load_prices(params: DataParams) -> pd.DataFrame:
    """The prices table for `params`: chosen source, then the date filter."""
    if params.source == "sample":
        prices = load_samples(params.datasets)
    elif params.source == "csv":
        prices = read_csv(Path(params.path))
    elif params.source == "yfinance":
        prices = download_yfinance(params.tickers, params.start, params.end)
    else:
        prices = synthetic_prices(params.n_series, params.n_days, params.seed)
    prices = prices.sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)
    return filter_dates(prices, params.start, params.end)


def main() -> None:
    params = load_params()
    prices = load_prices(params.data)
    io.write_table(prices, paths.PRICES)
    counts = prices.groupby("unique_id").size()
    print(f"ingest: {len(prices)} rows, {len(counts)} series -> {paths.PRICES}")


if __name__ == "__main__":
    run(main)
