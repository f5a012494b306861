"""`python -m pipeline.forecast`: tomorrow's price from the registered champion, or a clear error."""

from __future__ import annotations

import math
import re
import sys

import pandas as pd
import pytest
from conftest import copy_repo
from test_tracking import configure_tiny, in_repo, train_stage

from pipeline import cli, evaluate, features, forecast, ingest, split


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


def test_the_champion_forecasts_the_next_business_day(repo, capsys):
    with in_repo(repo, STOCKCAST_PIPELINE_RUN="forecast-test") as mp:
        train_stage(mp, "naive")
        evaluate.main()
        capsys.readouterr()
        _forecast(mp, "--series", "SP500")
        line = capsys.readouterr().out.strip()
        # SP500 2019-01-01: 2506.85, champion naive (version 1)
        match = re.fullmatch(r"SP500 (\d{4}-\d\d-\d\d): ([\d.]+), champion (naive|drift) \(version 1\)", line)
        assert match, line
        last = pd.read_parquet(repo / "data/prices.parquet").iloc[-1]
        assert match[1] == "2019-01-01" and last["ds"] == pd.Timestamp("2018-12-31")  # a Monday, then Tuesday
        price = float(match[2])
        assert math.isfinite(price) and abs(price / last["adj_close"] - 1) < 0.01
        direct = forecast.champion_forecast("SP500", pd.read_parquet(repo / "data/prices.parquet"))
        assert f"{direct['y_hat']:.2f}" == match[2] and direct["model"] == match[3]


def test_an_unknown_series_names_the_flag(repo, capsys):
    with in_repo(repo) as mp, pytest.raises(SystemExit):
        _forecast(mp, "--series", "NOPE")
    assert capsys.readouterr().err.strip() == "error: --series: 'NOPE' is not in data/prices.parquet (series: SP500)"
