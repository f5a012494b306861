"""`python -m pipeline.forecast`: tomorrow's price from the registered champion, or a clear error."""

from __future__ import annotations

import math
import re
import sys

import pandas as pd
import pytest
from conftest import copy_repo
from test_tracking import configure_tiny, in_repo, train_stage

from pipeline import cli, evaluate, features, forecast, ingest, split, tracking


def _forecast(mp: pytest.MonkeyPatch, *args: str) -> None:
    mp.setattr(sys, "argv", ["python -m pipeline.forecast", *args])
    cli.run(forecast.main)


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A tiny pipeline's inputs, before anything is registered."""
    repo = configure_tiny(copy_repo(tmp_path_factory.mktemp("forecast")))
    with in_repo(repo):
        for stage in (ingest, features, split):
            stage.main()
    return repo


def test_no_champion_yet_is_one_line_and_exit_status_2(repo, capsys):
    with in_repo(repo) as mp, pytest.raises(SystemExit) as exit_:
        _forecast(mp)
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: models:/stockcast-SP500@champion: no champion yet")
    assert not (repo / "mlflow.db").exists()  # asking created no store


def test_the_champion_forecasts_the_next_trading_day(repo, capsys):
    with in_repo(repo, STOCKCAST_PIPELINE_RUN="forecast-test") as mp:
        train_stage(mp, "naive")
        evaluate.main()
        capsys.readouterr()
        _forecast(mp, "--series", "SP500")
        line = capsys.readouterr().out.strip()
        # SP500 2019-01-02: 2506.85, champion naive (version 1)
        match = re.fullmatch(r"SP500 (\d{4}-\d\d-\d\d): ([\d.]+), champion (naive|drift) \(version 1\)", line)
        assert match, line
        last = pd.read_parquet(repo / "data/prices.parquet").iloc[-1]
        assert match[1] == "2019-01-02" and last["ds"] == pd.Timestamp("2018-12-31")  # a Monday, then New Year's Day
        price = float(match[2])
        assert math.isfinite(price) and abs(price / last["adj_close"] - 1) < 0.01
        direct = forecast.champion_forecast("SP500", pd.read_parquet(repo / "data/prices.parquet"))
        assert f"{direct['y_hat']:.2f}" == match[2] and direct["model"] == match[3]


def test_an_unknown_series_names_the_flag(repo, capsys):
    with in_repo(repo) as mp, pytest.raises(SystemExit):
        _forecast(mp, "--series", "NOPE")
    assert capsys.readouterr().err.strip() == "error: --series: 'NOPE' is not in data/prices.parquet (series: SP500)"


@pytest.mark.parametrize(
    ("day", "next_day"),
    [
        ("2018-12-31", "2019-01-02"),  # New Year's Day
        ("2019-04-18", "2019-04-22"),  # Good Friday, then the weekend
        ("2021-12-30", "2021-12-31"),  # New Year's Day 2022 is a Saturday: not made up on the Friday
        ("2022-06-17", "2022-06-21"),  # Juneteenth (from 2022) on a Sunday: the Monday
        ("2024-11-27", "2024-11-29"),  # Thanksgiving
    ],
)
def test_the_next_trading_day_skips_nyse_holidays(day, next_day):
    assert tracking.next_trading_day(pd.Timestamp(day)) == pd.Timestamp(next_day)


def test_the_calendar_reproduces_twenty_years_of_sp500_trading_days():
    days = pd.DatetimeIndex(ingest.load_sample("sp500")["ds"])
    missed = [day.date().isoformat() for day, following in zip(days[:-1], days[1:]) if tracking.next_trading_day(day) != following]
    # Only the unscheduled closures: 9/11, President Reagan's and President Ford's national days
    # of mourning, Hurricane Sandy, President George H. W. Bush's day of mourning.
    assert missed == ["2001-09-10", "2004-06-10", "2006-12-29", "2012-10-26", "2018-12-04"]
