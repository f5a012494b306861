"""`python -m pipeline.forecast`: tomorrow's price from `models/` or the registry, or a clear error."""

from __future__ import annotations

import json
import math
import re
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import copy_repo
from test_tracking import configure_tiny, in_repo, run_stages

from pipeline import cli, diagnostics, features, forecast, ingest, split, track
from pipeline.models.arima import Arima
from pipeline.models.naive import Drift, Naive
from pipeline.walkforward import Fold, Series, forecast_fold

LINE = re.compile(r"SP500 (\d{4}-\d\d-\d\d): ([\d.]+), champion (naive|drift) \((.+)\)")


def _forecast(mp: pytest.MonkeyPatch, capsys, *args: str) -> str:
    mp.setattr(sys, "argv", ["python -m pipeline.forecast", *args])
    capsys.readouterr()
    cli.run(forecast.main)
    return capsys.readouterr().out.strip()


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A tiny pipeline's inputs, before any model is trained."""
    repo = configure_tiny(copy_repo(tmp_path_factory.mktemp("forecast")))
    with in_repo(repo):
        for stage in (ingest, diagnostics, features, split):
            stage.main()
    return repo


@pytest.fixture(scope="module")
def trained(repo):
    """The same pipeline with the naive stage's models and the evaluate stage's reports."""
    with in_repo(repo) as mp:
        run_stages(mp, model_stages=("naive",))
    return repo


def test_no_models_yet_is_one_line_and_exit_status_2(repo, capsys):
    for switch in ("on", "off"):
        with in_repo(repo, STOCKCAST_TRACKING=switch) as mp, pytest.raises(SystemExit) as exit_:
            _forecast(mp, capsys)
        assert exit_.value.code == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert lines == ["error: reports/metrics.json: file not found (run `dvc repro` to create it)"]
    assert not (repo / "mlflow.db").exists()  # asking created no store


def test_without_tracking_the_champion_forecasts_from_models(trained, capsys):
    with in_repo(trained, STOCKCAST_TRACKING="off") as mp:
        line = _forecast(mp, capsys, "--series", "SP500")
    # SP500 2019-01-02: 2506.85, champion naive (models/naive/)
    match = LINE.fullmatch(line)
    assert match, line
    last = pd.read_parquet(trained / "data/prices.parquet").iloc[-1]
    assert match[1] == "2019-01-02" and last["ds"] == pd.Timestamp("2018-12-31")  # a Monday, then New Year's Day
    assert match[4] == f"models/{match[3]}/"
    price = float(match[2])
    assert math.isfinite(price) and abs(price / last["adj_close"] - 1) < 0.01
    assert not (trained / "mlflow.db").exists()


def test_with_tracking_on_and_no_registry_champion_models_answer(trained, capsys):
    with in_repo(trained) as mp:
        line = _forecast(mp, capsys)
    assert LINE.fullmatch(line)[4].startswith("models/") and not (trained / "mlflow.db").exists()


def test_the_registry_champion_gives_the_same_number_as_models(trained, capsys):
    with in_repo(trained, STOCKCAST_PIPELINE_RUN="forecast-test") as mp:
        track.main()
        registry_line = _forecast(mp, capsys)
        mp.setenv("STOCKCAST_TRACKING", "off")
        models_line = _forecast(mp, capsys)
    on, off = LINE.fullmatch(registry_line), LINE.fullmatch(models_line)
    assert on[4] == "stockcast-SP500 version 1" and off[4] == f"models/{off[3]}/"
    assert on.groups()[:3] == off.groups()[:3]
    assert json.loads((trained / "data/tracked.json").read_text())["champions"] == {"SP500": on[3]}


def test_an_unknown_series_names_the_flag(trained, capsys):
    with in_repo(trained, STOCKCAST_TRACKING="off") as mp, pytest.raises(SystemExit):
        _forecast(mp, capsys, "--series", "NOPE")
    assert capsys.readouterr().err.strip() == "error: --series: 'NOPE' is not in data/prices.parquet (series: SP500)"


def _series(n: int = 80) -> Series:
    days = pd.bdate_range("2024-01-01", periods=n).to_numpy("datetime64[ns]")
    price = 100 * np.exp(np.cumsum(np.random.default_rng(0).normal(0.0005, 0.01, n)))
    return Series("X", days, price)


@pytest.mark.parametrize("model", [Naive(), Drift(), Arima(order=[1, 1, 0])], ids=["naive", "drift", "arima"])
def test_the_next_day_forecast_is_what_the_walk_forward_gives_that_day(model):
    series = _series()
    fold = Fold("X", 0, 0, 59, 60, 79)
    table, fitted = forecast_fold(model, series, fold)
    # Fed the prices up to each test day's eve, it forecasts that day.
    for day in (60, 70, 79):
        prices = pd.DataFrame({"ds": series.ds[:day], "price": series.price[:day]})
        out = forecast.next_day_forecast(fitted, prices.sample(frac=1, random_state=0))  # any row order
        expected = table.iloc[day - 60]
        assert out["ds"].iloc[0] == expected["ds"]  # consecutive business days, no holiday among them
        assert out["y_hat"].iloc[0] == pytest.approx(expected["y_hat"], rel=1e-9)
        if "y_lo" in table:
            assert out[["y_lo", "y_hi"]].iloc[0].tolist() == pytest.approx(
                [expected["y_lo"], expected["y_hi"]], rel=1e-9
            )
        else:
            assert list(out.columns) == ["ds", "y_hat"]
