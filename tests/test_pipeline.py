"""End to end: `dvc repro` in a throwaway copy of the repo, on a small slice of the real data."""

import hashlib

import pandas as pd
import pytest
import yaml
from conftest import copy_repo, git_init, run_in

TINY = {
    "data": {"start": "2017-01-01"},  # 502 trading days of the real S&P 500
    "features": {"n_lags": 5},
    "forecast": {"horizons": [1, 5]},  # the default 20 days need a longer test part
    "split": {"n_windows": 2, "test_size": 20},
    "parallel": {"n_jobs": 1},
    "lstm": {"units": [2], "epochs": 2},
    "rnn_scratch": {"hidden": 2, "epochs": 2},
    "diagnostics": {"seasonal_period": 20},
}
OFF = {"STOCKCAST_TRACKING": "off"}  # the tracking stage runs, and logs nothing: tests/test_tracking.py logs
FIRST_STAGES = (
    "data/prices.parquet",
    "data/windows.parquet",
    "data/folds.json",
    "data/predictions/naive.parquet",
    "data/predictions/drift.parquet",
)


def _configure(repo, overrides):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for section, values in overrides.items():
        params[section].update(values)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _digests(repo, names):
    return {name: hashlib.md5((repo / name).read_bytes()).hexdigest() for name in names}


def _ran(result) -> set[str]:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return {line.split("'")[1] for line in result.stdout.splitlines() if line.startswith("Running stage")}


@pytest.fixture(scope="module")
def repro(tmp_path_factory):
    repo = copy_repo(tmp_path_factory.mktemp("e2e"))
    _configure(repo, TINY)
    git_init(repo)
    assert len(_ran(run_in(repo, "dvc", "repro", env=OFF))) == 11
    return repo


def test_first_stages_write_the_contract_tables(repro):
    prices = pd.read_parquet(repro / "data/prices.parquet")
    assert set(prices.unique_id) == {"SP500"} and len(prices) == 502
    windows = pd.read_parquet(repro / "data/windows.parquet")
    assert windows.columns.tolist() == ["unique_id", "ds", "lag_1", "lag_2", "lag_3", "lag_4", "lag_5", "target"]
    assert len(windows) == 502 - 6
    naive = pd.read_parquet(repro / "data/predictions/naive.parquet")
    assert naive.columns.tolist() == [
        *("unique_id", "ds", "cutoff", "h", "fold", "y", "y_hat"),
        *("y_lo_80", "y_hi_80", "y_lo_95", "y_hi_95"),  # every model's calibrated intervals
    ]
    # Per fold of 20 test days: 20 one-step forecasts and 16 five-step ones, sorted by h, then ds.
    assert len(naive) == 2 * (20 + 16) and naive.h.tolist() == [1] * 40 + [5] * 32
    assert naive.fold.tolist() == [0] * 20 + [1] * 20 + [0] * 16 + [1] * 16
    assert (naive.groupby("h").ds.max() == pd.Timestamp("2018-12-31")).all()
    assert sorted(p.name for p in (repro / "models").iterdir() if p.is_dir()) == [
        "arima",
        "drift",
        "lstm",
        "naive",
        "rnn_scratch",
        "sklearn",
    ]


def test_nothing_changed_after_repro_and_a_rerun_is_a_no_op(repro):
    status = run_in(repro, "dvc", "status")
    assert status.returncode == 0 and "up to date" in status.stdout.lower(), status.stdout
    assert _ran(run_in(repro, "dvc", "repro", env=OFF)) == set()


def test_a_cold_rerun_gives_byte_identical_outputs(repro):
    outputs = [
        *FIRST_STAGES,
        *(p.relative_to(repro).as_posix() for p in sorted((repro / "models").rglob("*")) if p.is_file()),
    ]
    before = _digests(repro, outputs)
    for name in FIRST_STAGES:
        (repro / name).unlink()
    assert _ran(run_in(repro, "dvc", "repro", "--force", "naive", env=OFF)) == {"ingest", "split", "naive"}
    assert _ran(run_in(repro, "dvc", "repro", "--force", env=OFF)) >= {"sklearn", "lstm@lstm", "rnn_scratch", "arima"}
    assert _digests(repro, outputs) == before


def test_a_window_param_reruns_the_window_models_and_what_follows_them_only(repro):
    """`features.n_lags` moves no fold: naive and ARIMA do not rerun (nor the diagnostics)."""
    ran = _ran(run_in(repro, "dvc", "exp", "run", "-S", "features.n_lags=6", env=OFF))
    assert ran == {"features", "sklearn", "lstm@lstm", "rnn_scratch", "evaluate", "track"}


def test_one_horizon_reruns_the_models_and_keeps_their_one_step_forecasts(repro):
    tables = {m: pd.read_parquet(repro / f"data/predictions/{m}.parquet") for m in ("naive", "drift", "arima")}
    ran = _ran(run_in(repro, "dvc", "exp", "run", "-S", "forecast.horizons=[1]", env=OFF))
    assert ran == {"naive", "arima", "sklearn", "lstm@lstm", "rnn_scratch", "evaluate", "track"}
    for model, before in tables.items():
        after = pd.read_parquet(repro / f"data/predictions/{model}.parquet")
        assert after.h.unique().tolist() == [1]
        pd.testing.assert_frame_equal(after, before[before.h == 1].reset_index(drop=True), check_exact=True)


def test_cells_side_by_side_run_each_new_cell_alone_on_the_same_folds(repro):
    """Adding cells runs their stages only (lstm@lstm's params are unchanged), each writes its own
    table and models, and every recurrent model has its gradient profile on the leaderboard."""
    ran = _ran(run_in(repro, "dvc", "exp", "run", "-S", "lstm.cells=[lstm, gru, simple_rnn]", env=OFF))
    assert ran == {"lstm@gru", "lstm@simple_rnn", "evaluate", "track"}
    tables = {
        cell: pd.read_parquet(repro / f"data/predictions/{cell}.parquet") for cell in ("lstm", "gru", "simple_rnn")
    }
    for cell, table in tables.items():
        assert table[["unique_id", "ds", "cutoff", "h", "fold"]].equals(
            tables["lstm"][["unique_id", "ds", "cutoff", "h", "fold"]]
        )
        assert (repro / f"models/{cell}/model.json").is_file()
    assert _ran(run_in(repro, "dvc", "repro", "lstm", env=OFF)) == set()  # the group, every cell up to date
    report = yaml.safe_load((repro / "reports/evaluation.json").read_text())["gradient_by_lag"]
    assert sorted(report) == ["gru", "lstm", "rnn_scratch", "simple_rnn", "sklearn"]
    assert (repro / "reports/plots/images/gradient_by_lag.png").is_file()


def test_a_tracking_change_reruns_the_tracking_stage_alone(repro):
    code = repro / "pipeline/track.py"
    code.write_text(code.read_text() + "\n# changed\n")
    assert _ran(run_in(repro, "dvc", "repro", env=OFF)) == {"track"}


def test_a_split_param_reruns_only_what_reads_it(repro):
    _configure(repro, {"split": {"test_size": 15}})
    assert _ran(run_in(repro, "dvc", "repro", "naive", env=OFF)) == {"split", "naive"}
