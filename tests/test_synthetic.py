"""The synthetic source, and the multi-series path through the stages.

The synthetic walks are a pure function of (n_series, n_days, seed). Several series, from each
multi-series source (synthetic, a long CSV with a ticker column, the two `arch` samples), go
through ingest, features, split and the naive stage in a scratch directory, each stage by its
own `main()` as `dvc repro` runs it.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline import features, ingest, io, split, train
from pipeline.ingest import synthetic_prices


def test_synthetic_walks_are_a_pure_function_of_the_seed(tmp_path):
    io.write_table(synthetic_prices(3, 100, seed=7), tmp_path / "a.parquet")
    io.write_table(synthetic_prices(3, 100, seed=7), tmp_path / "b.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    seven, eight = synthetic_prices(3, 100, seed=7), synthetic_prices(3, 100, seed=8)
    for uid in seven.unique_id.unique():
        assert not np.isclose(seven.close[seven.unique_id == uid], eight.close[eight.unique_id == uid]).any()


def test_more_series_leave_the_first_ones_unchanged():
    """N = 10 is a prefix of N = 50 in the scaling benchmark: the same work per series."""
    few, more = synthetic_prices(2, 100, seed=0), synthetic_prices(5, 100, seed=0)
    pd.testing.assert_frame_equal(few, more[more.unique_id.isin(few.unique_id)].reset_index(drop=True))


def test_synthetic_walks_look_like_daily_prices():
    prices = synthetic_prices(4, 500, seed=1)
    assert prices.unique_id.unique().tolist() == ["SYN0000", "SYN0001", "SYN0002", "SYN0003"]
    assert prices.groupby("unique_id").size().tolist() == [500] * 4
    assert (prices.ds.dt.day_of_week < 5).all() and (prices.close > 0).all()
    volatility = prices.groupby("unique_id").close.apply(lambda c: np.diff(np.log(c)).std())
    assert volatility.between(0.004, 0.025).all()  # 0.5%-2% a day, as drawn


def _long_csv(path):
    prices = synthetic_prices(3, 300, seed=2)
    prices["unique_id"] = prices.unique_id.map({"SYN0000": "AAA", "SYN0001": "BBB", "SYN0002": "CCC"})
    prices["ds"] = prices.ds.dt.strftime("%Y-%m-%d")
    prices.rename(columns={"unique_id": "Ticker", "ds": "Date", "close": "Close"}).to_csv(path, index=False)
    return str(path)


SOURCES = {
    "synthetic": (
        lambda tmp: {"source": "synthetic", "n_series": 3, "n_days": 300, "seed": 1},
        {"SYN0000", "SYN0001", "SYN0002"},
    ),
    "long_csv": (lambda tmp: {"source": "csv", "path": _long_csv(tmp / "tickers.csv")}, {"AAA", "BBB", "CCC"}),
    "sp500_and_nasdaq": (
        lambda tmp: {"source": "sample", "datasets": ["sp500", "nasdaq"], "start": "2017-06-01"},
        {"SP500", "NASDAQ"},
    ),
}


@pytest.mark.parametrize("source", SOURCES)
def test_several_series_run_through_the_stages(source, tmp_path, monkeypatch):
    data, expected = SOURCES[source]
    params = {
        "data": data(tmp_path),
        "features": {"n_lags": 5},
        "forecast": {"horizons": [1, 5]},  # the default 20 days need a longer test part
        "split": {"n_windows": 2, "test_size": 20},
        "parallel": {"n_jobs": 1},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STOCKCAST_TRACKING", "off")  # the data path is under test here, not MLflow
    for stage in (ingest, features, split):
        stage.main()
    monkeypatch.setattr(sys, "argv", ["pipeline.train", "naive"])
    train.main()
    folds = io.read_json("data/folds.json")
    assert set(folds) == expected and all(len(f) == 2 for f in folds.values())
    for model in ("naive", "drift"):
        table = io.read_table(f"data/predictions/{model}.parquet")
        assert set(table.unique_id) == expected
        assert table.groupby("unique_id").size().eq(2 * (20 + 16)).all()  # 2 folds of h=1 and h=5 forecasts
        one_step = table[table.h == 1]
        assert one_step.groupby("unique_id").fold.apply(lambda f: f.tolist() == [0] * 20 + [1] * 20).all()
        assert np.isfinite(table.y_hat).all()
