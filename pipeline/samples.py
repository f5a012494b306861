"""Real daily prices that installed packages ship (`data.source: sample`): no network.

| data set | package | series (ids) | columns |
|---|---|---|---|
| `sp500`, `nasdaq` | arch | one index each (`SP500`, `NASDAQ`), 1999-2018 | OHLCV + adj close |
| `sp500_stocks` | skfolio | 20 S&P 500 constituents (tickers), 1990-01-02..2022-12-28 | adjusted close |
| `bokeh_stocks` | bokeh-sampledata | AAPL, IBM, MSFT (2000-03..2013-03), GOOG (2004-08..) | OHLCV + adj close |

Each loader returns the raw table; `pipeline.ingest.standardize` maps it onto the prices contract.
"""

from __future__ import annotations

import importlib
import importlib.metadata

import pandas as pd

ARCH_IDS = {"sp500": "SP500", "nasdaq": "NASDAQ"}
# FB has 196 days in bokeh's file: too few for the default 5 folds x 250 test days.
BOKEH_TICKERS = ("AAPL", "GOOG", "IBM", "MSFT")
SKFOLIO_FILE = "skfolio/datasets/data/sp500_dataset.csv.gz"


def arch_sample(name: str) -> pd.DataFrame:
    """`arch.data.<name>.load()`: one index, Date + OHLCV + Adj Close, no ticker column."""
    return importlib.import_module(f"arch.data.{name}").load().reset_index()


def skfolio_stocks() -> pd.DataFrame:
    """skfolio's S&P 500 data set as a long table `ticker, date, adj_close`.

    The file that `skfolio.datasets.load_sp500_dataset()` reads, read from the installed
    distribution directly: importing skfolio imports cvxpy, clarabel and plotly (seconds), and
    the data set is one CSV of adjusted closes, a column per ticker.
    """
    path = importlib.metadata.distribution("skfolio").locate_file(SKFOLIO_FILE)
    wide = pd.read_csv(path, dtype={"Date": str})
    return wide.melt(id_vars="Date", var_name="ticker", value_name="adj_close")


def bokeh_stocks() -> pd.DataFrame:
    """bokeh-sampledata's stocks (`ticker, date, open, high, low, close, volume, adj_close`),
    its Quandl WIKI prices, without FB. Open..close and volume are unadjusted; adj_close is the target."""
    from bokeh_sampledata.stocks import data

    return data[data["ticker"].isin(BOKEH_TICKERS)].reset_index(drop=True)


LOADERS = {
    "sp500": lambda: arch_sample("sp500"),
    "nasdaq": lambda: arch_sample("nasdaq"),
    "sp500_stocks": skfolio_stocks,
    "bokeh_stocks": bokeh_stocks,
}
