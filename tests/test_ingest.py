"""Ingest: sources mapped onto the prices contract, and every validation error with its message."""

import numpy as np
import pandas as pd
import pytest

from pipeline.cli import UserError
from pipeline.ingest import filter_dates, load_prices, load_sample, read_csv, standardize, validate_ticker
from pipeline.params import DataParams


def test_sample_sp500_is_the_real_series():
    prices = load_sample("sp500")
    assert len(prices) == 5031 and set(prices.unique_id) == {"SP500"}
    assert prices.ds.iloc[0] == pd.Timestamp("1999-01-04") and prices.ds.iloc[-1] == pd.Timestamp("2018-12-31")
    assert prices.columns.tolist() == ["unique_id", "ds", "open", "high", "low", "close", "adj_close", "volume"]
    assert prices.ds.is_monotonic_increasing and prices.adj_close.gt(0).all()


def test_sp500_stocks_are_skfolios_twenty_constituents():
    prices = load_sample("sp500_stocks")
    counts = prices.groupby("unique_id").size()
    assert len(counts) == 20 and {"AAPL", "JPM", "XOM"} <= set(counts.index) and (counts == 8313).all()
    assert prices.columns.tolist() == ["unique_id", "ds", "adj_close"]
    assert prices.ds.min() == pd.Timestamp("1990-01-02") and prices.ds.max() == pd.Timestamp("2022-12-28")
    assert prices.adj_close.gt(0).all() and not prices.duplicated(["unique_id", "ds"]).any()


def test_bokeh_stocks_have_ohlcv_and_no_fb():
    prices = load_sample("bokeh_stocks")
    counts = prices.groupby("unique_id").size()
    assert counts.to_dict() == {"AAPL": 3270, "GOOG": 2148, "IBM": 3270, "MSFT": 3270}  # FB's 196 days left out
    assert prices.columns.tolist() == ["unique_id", "ds", "open", "high", "low", "close", "adj_close", "volume"]
    assert (prices.groupby("unique_id").ds.max() == pd.Timestamp("2013-03-01")).all()
    assert prices.groupby("unique_id").ds.is_monotonic_increasing.all()


def test_a_series_in_two_data_sets_is_refused():
    with pytest.raises(UserError, match="data.datasets: sp500_stocks and bokeh_stocks both have series AAPL"):
        load_prices(DataParams(datasets=["sp500_stocks", "bokeh_stocks"]))


def test_every_named_data_set_has_a_loader():
    from pipeline import samples
    from pipeline.params import SAMPLE_DATASETS

    assert set(samples.LOADERS) == set(SAMPLE_DATASETS)


def test_two_sample_data_sets_and_a_date_filter():
    prices = load_prices(DataParams(datasets=["sp500", "nasdaq"], start="2018-01-01", end="2018-01-31"))
    assert sorted(prices.unique_id.unique()) == ["NASDAQ", "SP500"]
    assert prices.ds.min() >= pd.Timestamp("2018-01-01") and prices.ds.max() <= pd.Timestamp("2018-01-31")
    assert prices.groupby("unique_id").size().tolist() == [21, 21]  # January 2018 had 21 trading days


def test_yahoo_headers_any_case(tmp_path):
    path = tmp_path / "aapl.csv"
    path.write_text(
        "DATE,open,HIGH,Low,Close,ADJ CLOSE,volume\n2020-01-03,2,3,1,2.5,2.4,100\n2020-01-02,1,2,1,1.5,1.4,90\n"
    )
    prices = read_csv(path)
    assert prices.unique_id.tolist() == ["AAPL", "AAPL"]  # the file name is the series id
    assert prices.ds.tolist() == [pd.Timestamp("2020-01-02"), pd.Timestamp("2020-01-03")]  # sorted
    assert prices.adj_close.tolist() == [1.4, 2.4]


def test_long_file_with_symbol_column(tmp_path):
    path = tmp_path / "many.csv"
    path.write_text("symbol,date,close\nMSFT,2020-01-02,10\nIBM,2020-01-02,20\nMSFT,2020-01-03,11\nIBM,2020-01-03,21\n")
    prices = read_csv(path)
    assert prices[["unique_id", "close"]].values.tolist() == [
        ["IBM", 20.0],
        ["IBM", 21.0],
        ["MSFT", 10.0],
        ["MSFT", 11.0],
    ]


def test_nan_target_rows_are_dropped_and_counted(capsys):
    raw = pd.DataFrame(
        {
            "Date": ["2020-01-02", "2020-01-03", "2020-01-06", "2020-01-07"],
            "Close": ["1", "", "NaN", "2"],
            "Open": ["1", "1", "1", ""],
        }
    )
    prices = standardize(raw, "f.csv", default_id="F")
    assert prices.close.tolist() == [1.0, 2.0]
    assert np.isnan(prices.open.iloc[1])  # NaN kept in columns that are not the target
    assert "dropped 2 rows with no close" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ({"Close": ["1", "2"]}, "f.csv: missing date column"),
        ({"Date": ["2020-01-02"], "Volume": ["1"]}, "f.csv: missing price column"),
        ({"Date": [], "Close": []}, "f.csv: no data rows"),
        (
            {"Date": ["2020-01-02", "someday"], "Close": ["1", "2"]},
            "column 'ds': unparseable or inconsistent date 'someday' on row 2",
        ),
        (
            {"Date": ["2020-01-02", "01/03/2020"], "Close": ["1", "2"]},
            "unparseable or inconsistent date '01/03/2020' on row 2",
        ),
        (
            {"Date": ["2020-01-02", "2020-01-03"], "Close": ["1", "abc"]},
            "column 'close': non-numeric value 'abc' on row 2",
        ),
        (
            {"Date": ["2020-01-02", "2020-01-03"], "Close": ["1", "-5"]},
            "column 'close': price must be positive and finite",
        ),
        ({"Date": ["2020-01-02", "2020-01-03"], "Close": ["0", "1"]}, "got 0.0 on 2020-01-02"),
        (
            {"Date": ["2020-01-02", "2020-01-03"], "Close": ["1", "1e300"]},
            "price must be positive and finite (below 1e+12)",
        ),
        ({"Date": ["2020-01-02", "2020-01-03"], "Close": ["1", "inf"]}, "column 'close': price must be positive"),
        ({"Date": ["2020-01-02", "2020-01-02"], "Close": ["1", "2"]}, "duplicate date 2020-01-02 for series F"),
        ({"Date": ["2020-01-02"], "Close": ["1"]}, "series F has fewer than 2 rows"),
        ({"Date": ["2020-01-02", "2020-01-03"], "Close": ["", ""]}, "column 'close': no values"),
        (
            {"Ticker": ["../etc", "../etc"], "Date": ["2020-01-02", "2020-01-03"], "Close": ["1", "2"]},
            "invalid ticker '../etc'",
        ),
        ({"Ticker": ["A/B", "A/B"], "Date": ["2020-01-02", "2020-01-03"], "Close": ["1", "2"]}, "invalid ticker 'A/B'"),
    ],
)
def test_validation_errors_name_the_problem(frame, message):
    with pytest.raises(UserError) as err:
        standardize(pd.DataFrame(frame, dtype=object), "f.csv", default_id="F")
    assert message in str(err.value)
    assert str(err.value).startswith("f.csv")


@pytest.mark.parametrize("ticker", ["SPY", "BRK.B", "^GSPC", "EURUSD=X", "RDS-A"])
def test_ordinary_tickers_are_valid(ticker):
    assert validate_ticker(ticker, "t") == ticker


@pytest.mark.parametrize("ticker", ["", "..", "a/b", "a\\b", "x" * 33, ".hidden", "a b", "A..B"])
def test_path_like_tickers_are_rejected(ticker):
    with pytest.raises(UserError, match="invalid ticker"):
        validate_ticker(ticker, "t")


def test_csv_file_errors(tmp_path):
    with pytest.raises(UserError, match="file not found"):
        read_csv(tmp_path / "missing.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(UserError, match="empty.csv: file is empty"):
        read_csv(empty)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("Date,Close\n2020-01-02,1\n2020-01-03,caf\xe9\n".encode("latin-1"))
    with pytest.raises(UserError, match="latin.csv: not UTF-8 text"):
        read_csv(latin)


def test_date_filter_that_keeps_nothing_names_the_keys():
    prices = pd.DataFrame({"unique_id": "A", "ds": pd.to_datetime(["2020-01-02", "2020-01-03"]), "close": [1.0, 2.0]})
    assert len(filter_dates(prices, "2020-01-03", None)) == 1
    with pytest.raises(UserError, match="data.start/data.end: no rows between 2021-01-01 and the end"):
        filter_dates(prices, "2021-01-01", None)
