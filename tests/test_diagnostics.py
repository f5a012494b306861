"""The diagnostics stage: ADF tests, STL seasonal strength and the decomposition figures."""

import hashlib

import numpy as np
import pandas as pd

from pipeline import diagnostics, io, plots


def test_seasonal_strength_finds_a_planted_cycle_and_not_a_random_walk():
    rng = np.random.default_rng(3)
    days = np.arange(2000)
    cycle = 4.6 + 0.05 * np.sin(2 * np.pi * days / 50) + rng.normal(0, 0.002, len(days))
    walk = 4.6 + np.cumsum(rng.normal(0, 0.01, len(days)))
    strong = diagnostics.seasonal_strength(*diagnostics.decompose(cycle, period=50)[1:])
    weak = diagnostics.seasonal_strength(*diagnostics.decompose(walk, period=50)[1:])
    assert strong > 0.9 and weak < 0.5
    assert diagnostics.decompose(walk[:99], period=50) is None  # under two periods: no decomposition


def test_decomposition_with_jumps_stays_close_to_smoothing_every_point():
    from statsmodels.tsa.seasonal import STL

    walk = 4.6 + np.cumsum(np.random.default_rng(5).normal(0, 0.01, 1500))
    trend, seasonal, resid = diagnostics.decompose(walk, period=100)
    full = STL(walk, period=100).fit()
    assert np.allclose(trend + seasonal + resid, walk)  # the parts add up to the series
    assert np.max(np.abs(trend - full.trend)) < 0.01  # log points: under 1% of price
    assert (
        abs(
            diagnostics.seasonal_strength(seasonal, resid)
            - diagnostics.seasonal_strength(np.asarray(full.seasonal), np.asarray(full.resid))
        )
        < 0.05
    )


def test_the_stage_reports_every_series_and_a_parallel_rerun_is_byte_identical(repo_copy, monkeypatch):
    days = pd.bdate_range("2020-01-01", periods=120).astype("datetime64[ns]")
    rng = np.random.default_rng(0)
    prices = pd.concat(
        [
            pd.DataFrame({"unique_id": uid, "ds": days, "close": 50 * np.exp(np.cumsum(rng.normal(0, 0.01, 120)))})
            for uid in ("AAA", "BBB")
        ]
        + [pd.DataFrame({"unique_id": "SHORT", "ds": days[:30], "close": np.linspace(5, 6, 30)})],
        ignore_index=True,
    )
    monkeypatch.chdir(repo_copy)
    io.write_table(prices, "data/prices.parquet")
    (repo_copy / "params.yaml").write_text("diagnostics:\n  seasonal_period: 20\n")
    diagnostics.main()
    report = io.read_json("reports/diagnostics/diagnostics.json")
    assert list(report["series"]) == ["AAA", "BBB", "SHORT"] and report["seasonal_period"] == 20
    assert report["series"]["SHORT"]["seasonal_strength"] is None  # 30 days: under two periods
    assert report["series"]["AAA"]["adf_log_return"]["pvalue"] < 0.05
    digests = {
        p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted((repo_copy / "reports/diagnostics").iterdir())
    }
    assert list(digests) == ["decomposition_AAA.png", "decomposition_BBB.png", "diagnostics.json"]
    monkeypatch.setattr(plots, "MIN_TASKS_PER_PROCESS", 1)  # 3 series on 2 processes
    (repo_copy / "params.yaml").write_text("diagnostics:\n  seasonal_period: 20\nparallel:\n  n_jobs: 2\n")
    diagnostics.main()
    again = {
        p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted((repo_copy / "reports/diagnostics").iterdir())
    }
    assert again == digests
