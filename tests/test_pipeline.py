"""End to end: `dvc repro` in a throwaway copy of the repo, on a small slice of the real data."""

import hashlib

import pandas as pd
import pytest
import yaml

from conftest import copy_repo, git_init, run_in

TINY = {
    "data": {"start": "2017-01-01"},  # 502 trading days of the real S&P 500
    "features": {"n_lags": 5},
    "split": {"n_windows": 2, "test_size": 20},
}
FIRST_STAGES = ("data/prices.parquet", "data/windows.parquet", "data/folds.json", "data/predictions/naive.parquet", "data/predictions/drift.parquet")


def _configure(repo, overrides):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for section, values in overrides.items():
        params[section].update(values)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _digests(repo, names):
    return {name: hashlib.md5((repo / name).read_bytes()).hexdigest() for name in names}


@pytest.fixture(scope="module")
def repro(tmp_path_factory):
    repo = copy_repo(tmp_path_factory.mktemp("e2e"))
    _configure(repo, TINY)
    git_init(repo)
    result = run_in(repo, "dvc", "repro", "naive")
    assert result.returncode == 0, result.stderr
    return repo


def test_first_stages_write_the_contract_tables(repro):
    prices = pd.read_parquet(repro / "data/prices.parquet")
    assert set(prices.unique_id) == {"SP500"} and len(prices) == 502
    windows = pd.read_parquet(repro / "data/windows.parquet")
    assert windows.columns.tolist() == ["unique_id", "ds", "lag_1", "lag_2", "lag_3", "lag_4", "lag_5", "target"]
    assert len(windows) == 502 - 6
    naive = pd.read_parquet(repro / "data/predictions/naive.parquet")
    assert len(naive) == 40 and naive.fold.tolist() == [0] * 20 + [1] * 20
    assert naive.ds.iloc[-1] == pd.Timestamp("2018-12-31")


def test_nothing_changed_after_repro_and_a_rerun_is_a_no_op(repro):
    status = run_in(repro, "dvc", "status", "naive")
    assert status.returncode == 0 and "up to date" in status.stdout.lower(), status.stdout
    again = run_in(repro, "dvc", "repro", "naive")
    assert again.returncode == 0 and "Running stage" not in again.stdout


def test_a_cold_rerun_gives_byte_identical_outputs(repro):
    before = _digests(repro, FIRST_STAGES)
    for name in FIRST_STAGES:
        (repro / name).unlink()
    result = run_in(repro, "dvc", "repro", "--force", "naive")
    assert result.returncode == 0, result.stderr
    assert _digests(repro, FIRST_STAGES) == before


def test_a_param_change_reruns_only_what_reads_it(repro):
    _configure(repro, {"split": {"test_size": 15}})
    result = run_in(repro, "dvc", "repro", "naive")
    assert result.returncode == 0, result.stderr
    ran = {line.split("'")[1] for line in result.stdout.splitlines() if line.startswith("Running stage")}
    assert ran == {"split", "naive"}
