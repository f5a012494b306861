"""`python -m pipeline.forecast`: every horizon's price from `models/` or the registry, or a clear error."""

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

from pipeline import cli, diagnostics, features, forecast, ingest, scoring, split, track
from pipeline.calendar import next_trading_days
from pipeline.models.arima import Arima
from pipeline.models.naive import Drift, Naive
from pipeline.walkforward import Fold, Series, forecast_fold

LINE = re.compile(
    r"SP500 (?P<ds>\d{4}-\d\d-\d\d) \(h=(?P<h>\d+)\): (?P<price>[\d.]+) "
    r"\(80%: (?P<lo80>[\d.]+) to (?P<hi80>[\d.]+), 95%: (?P<lo95>[\d.]+) to (?P<hi95>[\d.]+)\), "
    r"champion (?P<model>naive|drift) \((?P<source>.+)\)"
)
HORIZONS = {"1": "2019-01-02", "5": "2019-01-08"}  # after Monday 2018-12-31: New Year's Day is no session


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


def _lines(output: str) -> list[re.Match]:
    matches = [LINE.fullmatch(line) for line in output.splitlines()]
    assert all(matches) and [m["h"] for m in matches] == list(HORIZONS), output
    return matches


def test_without_tracking_the_champions_forecast_every_horizon_from_models(trained, capsys):
    with in_repo(trained, STOCKCAST_TRACKING="off") as mp:
        output = _forecast(mp, capsys, "--series", "SP500")
    # SP500 2019-01-02 (h=1): 2506.85, champion naive (models/naive/)
    # SP500 2019-01-08 (h=5): 2506.85, champion naive (models/naive/)
    last = pd.read_parquet(trained / "data/prices.parquet").iloc[-1]
    assert last["ds"] == pd.Timestamp("2018-12-31")
    report = json.loads((trained / "reports/metrics.json").read_text())
    for match in _lines(output):
        assert match["ds"] == HORIZONS[match["h"]]
        assert match["source"] == f"models/{match['model']}/"
        assert match["model"] == scoring.champions(report, int(match["h"]))["SP500"]
        price = float(match["price"])
        bounds = [float(match[k]) for k in ("lo95", "lo80", "hi80", "hi95")]
        # Calibrated intervals, nested (the tiny folds' 6 five-day scores give both levels the largest).
        assert bounds[0] <= bounds[1] < price < bounds[2] <= bounds[3]
        assert math.isfinite(price) and abs(price / last["adj_close"] - 1) < 0.02
    assert not (trained / "mlflow.db").exists()


def test_with_tracking_on_and_no_registry_champion_models_answer(trained, capsys):
    with in_repo(trained) as mp:
        output = _forecast(mp, capsys)
    assert all(m["source"].startswith("models/") for m in _lines(output)) and not (trained / "mlflow.db").exists()


def test_the_registry_champions_give_the_same_numbers_as_models(trained, capsys):
    with in_repo(trained, STOCKCAST_PIPELINE_RUN="forecast-test") as mp:
        track.main()
        registry_output = _forecast(mp, capsys)
        mp.setenv("STOCKCAST_TRACKING", "off")
        models_output = _forecast(mp, capsys)
    receipt = json.loads((trained / "data/tracked.json").read_text())
    for on, off in zip(_lines(registry_output), _lines(models_output), strict=True):
        assert on["source"].startswith("stockcast-SP500 version ") and off["source"] == f"models/{off['model']}/"
        assert on.groups()[:-1] == off.groups()[:-1]  # the same date, horizon, price, bounds and model
        assert receipt["champions_by_horizon"][on["h"]] == {"SP500": on["model"]}
    assert receipt["champions"] == receipt["champions_by_horizon"]["1"]


def test_an_unknown_series_names_the_flag(trained, capsys):
    with in_repo(trained, STOCKCAST_TRACKING="off") as mp, pytest.raises(SystemExit):
        _forecast(mp, capsys, "--series", "NOPE")
    assert capsys.readouterr().err.strip() == "error: --series: 'NOPE' is not in data/prices.parquet (series: SP500)"


def _series(n: int = 80) -> Series:
    """A random walk on NYSE sessions (2024 has holidays a business-day range does not skip)."""
    days = pd.DatetimeIndex(next_trading_days("2023-12-29", n)).to_numpy("datetime64[ns]")
    price = 100 * np.exp(np.cumsum(np.random.default_rng(0).normal(0.0005, 0.01, n)))
    return Series("X", days, price)


@pytest.mark.parametrize(
    "model",
    [Naive((1, 3, 7)), Drift((1, 3, 7)), Arima(order=[1, 1, 0], horizons=(1, 3, 7))],
    ids=["naive", "drift", "arima"],
)
def test_the_forecast_from_a_day_is_what_the_walk_forward_gives_from_that_cutoff(model):
    series = _series()
    fold = Fold("X", 0, 0, 59, 60, 79)
    table, fitted = forecast_fold(model, series, fold, own_intervals=model.own_intervals)
    # Fed the prices up to a test day's eve, it forecasts every horizon from that eve.
    for day in (60, 70, 73):
        prices = pd.DataFrame({"ds": series.ds[:day], "price": series.price[:day]})
        out = forecast.horizon_forecasts(fitted, prices.sample(frac=1, random_state=0))  # any row order
        assert out["h"].tolist() == [1, 3, 7]
        expected = table[table["cutoff"] == series.ds[day - 1]].set_index("h")
        assert out["ds"].tolist() == expected["ds"].tolist()  # the h-th session after the cutoff
        assert out["y_hat"].to_numpy() == pytest.approx(expected["y_hat"].to_numpy(), rel=1e-9)
        if "y_lo_80" in table:
            columns = ["y_lo_80", "y_hi_80", "y_lo_95", "y_hi_95"]
            assert out[columns].to_numpy() == pytest.approx(expected[columns].to_numpy(), rel=1e-9)
        else:
            assert list(out.columns) == ["ds", "h", "y_hat"]
