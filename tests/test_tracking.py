"""MLflow tracking: the local store after a tiny pipeline, a real server, an unreachable one.

The pipeline runs in this process (stage by stage, in a throwaway copy of the repo) so the
imports are paid once; a stage as its own process is tested where the process matters (the
unreachable server). The `mlflow server` starts at the beginning and comes up while the local
pipeline runs.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import psutil
import pytest
import yaml
from conftest import BIN, copy_repo, run_in
from dvc_data.hashfile.hash import file_md5

from pipeline import evaluate, features, ingest, scoring, split, tracking, train
from pipeline.cli import UserError
from pipeline.models.arima import Arima
from pipeline.models.naive import Drift, Naive
from pipeline.params import parse_params
from pipeline.walkforward import Fold, Series, forecast_fold

TINY = {
    "data": {"start": "2017-01-01"},  # 502 days of the real S&P 500
    "features": {"n_lags": 5},
    "split": {"n_windows": 2, "test_size": 10},
    "parallel": {"n_jobs": 1},
    "lstm": {"units": [2], "epochs": 2},
    "evaluate": {"seasonal_period": 20},
}
MODELS = ("naive", "drift", "arima", "sklearn", "lstm")
NATIVE = {"arima": "statsmodels-SP500", "sklearn": "sklearn-SP500", "lstm": "keras-SP500"}
PIPELINE_RUN = "test-pipeline-run"


# ---------------------------------------------------------------- pure parts


def test_the_project_root_is_dvc_root_or_the_nearest_dvc_yaml_outside_dvc(tmp_path):
    root = tmp_path / "project"
    temp_copy = root / ".dvc/tmp/exps/tmp1234"  # where `dvc exp run --temp` runs a stage
    temp_copy.mkdir(parents=True)
    (root / "dvc.yaml").write_text("stages: {}\n")
    (temp_copy / "dvc.yaml").write_text("stages: {}\n")
    assert tracking.project_root(temp_copy, environ={}) == root
    assert tracking.project_root(root / ".dvc", environ={}) == root
    assert tracking.project_root(tmp_path, environ={"DVC_ROOT": str(root)}) == root
    with pytest.raises(UserError, match="dvc.yaml: not found"):
        tracking.project_root(tmp_path, environ={})


def test_the_default_store_is_sqlite_with_artifacts_in_the_project_root(tmp_path):
    assert tracking.tracking_uri(tmp_path, environ={}) == f"sqlite:///{tmp_path}/mlflow.db"
    assert tracking.artifact_location(tmp_path, f"sqlite:///{tmp_path}/mlflow.db") == (tmp_path / "mlruns").as_uri()
    server = "http://127.0.0.1:5000"
    assert tracking.tracking_uri(tmp_path, environ={"MLFLOW_TRACKING_URI": server}) == server
    assert tracking.artifact_location(tmp_path, server) is None  # the server decides


def test_the_pipeline_run_id_comes_from_the_env_the_experiment_or_the_dvc_process():
    assert tracking.pipeline_run_id({"STOCKCAST_PIPELINE_RUN": "mine", "DVC_EXP_NAME": "exp"}) == "mine"
    assert tracking.pipeline_run_id({"DVC_EXP_NAME": "gummy-bass"}) == "gummy-bass"
    assert tracking.pipeline_run_id({}).endswith(f"-{os.getpid()}")  # a stage on its own
    # Under DVC, the nearest ancestor without DVC_STAGE in its environment is `dvc` itself:
    # here, pytest's parent, which every stage of the "repro" would share.
    started = psutil.Process(os.getppid()).create_time()
    expected = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(started))}-{os.getppid()}"
    assert tracking.pipeline_run_id({"DVC_STAGE": "naive"}) == expected


def test_the_md5_is_dvcs_own(tmp_path):
    path = tmp_path / "table.bin"
    path.write_bytes(b"line one\r\nline two\r\n" + bytes(range(256)))  # no line-ending games
    assert tracking.dvc_md5(path) == file_md5(str(path))


def test_params_are_flattened_to_section_keys():
    params = parse_params({"sklearn": {"estimator": "mlp", "params": {"alpha": 0.01}}, "lstm": {"units": [8, 4]}})
    flat = tracking.flat_params(params, ("data", "sklearn", "lstm"))
    assert flat["sklearn.estimator"] == "mlp" and flat["sklearn.params.alpha"] == "0.01"
    assert flat["lstm.units"] == "[8, 4]" and flat["data.path"] == "null" and flat["lstm.warm_start"] == "false"
    assert not any(key.startswith(("split.", "features.")) for key in flat)


def test_family_and_learned_state_describe_a_fitted_model():
    model = Arima(order=[0, 1, 0]).fit(np.log(np.linspace(100, 120, 60)))
    assert tracking.family(model) == "Arima(order=[0, 1, 0], max_p=2, max_q=2, d=1, coverage=0.9)"
    assert "order_=(0, 1, 0)" in tracking.learned(model)
    assert tracking.family(Naive()) == "Naive()" and tracking.learned(Naive()) == ""


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
        out = tracking.next_day_forecast(fitted, prices.sample(frac=1, random_state=0))  # any row order
        expected = table.iloc[day - 60]
        assert out["ds"].iloc[0] == expected["ds"]  # consecutive business days
        assert out["y_hat"].iloc[0] == pytest.approx(expected["y_hat"], rel=1e-9)
        if "y_lo" in table:
            assert out[["y_lo", "y_hi"]].iloc[0].tolist() == pytest.approx([expected["y_lo"], expected["y_hi"]], rel=1e-9)
        else:
            assert list(out.columns) == ["ds", "y_hat"]


def test_the_forecaster_pyfunc_skips_the_weekend():
    friday = pd.DataFrame({"ds": pd.to_datetime(["2024-01-04", "2024-01-05"]), "price": [10.0, 11.0]})
    out = tracking.Forecaster(Naive()).predict(None, friday)  # the pyfunc shell around next_day_forecast
    assert out.to_dict("records") == [{"ds": pd.Timestamp("2024-01-08"), "y_hat": 11.0}]


def test_the_champion_beats_naive_significantly_else_naive_is_the_champion():
    beats = {"dm_stat_vs_naive": -3.0, "dm_pvalue_vs_naive": 0.01}
    luck = {"dm_stat_vs_naive": -0.5, "dm_pvalue_vs_naive": 0.6}
    worse = {"dm_stat_vs_naive": 3.0, "dm_pvalue_vs_naive": 0.01}
    report = {"series": {
        "A": {"arima": {"rmse": 1.0, **beats}, "lstm": {"rmse": 1.5, **beats}, "naive": {"rmse": 2.0}},
        "B": {"arima": {"rmse": 3.0, **worse}, "naive": {"rmse": 2.5}},
        "C": {"drift": {"rmse": 0.9, **luck}, "naive": {"rmse": 1.0}},  # lower RMSE, but could be luck
        "D": {"drift": {"rmse": 1.0, **beats}, "sklearn": {"rmse": 1.0, **beats}, "naive": {"rmse": 2.0}},  # a tie: first name
    }}  # fmt: skip
    assert scoring.champions(report) == {"A": "arima", "B": "naive", "C": "naive", "D": "drift"}


def test_an_unreachable_server_is_a_user_error_naming_it_within_seconds():
    uri = f"http://127.0.0.1:{_free_port()}"
    started = time.monotonic()
    with pytest.raises(UserError, match=f"cannot reach the MLflow tracking server at {uri}"):
        tracking.check_reachable(uri)
    assert time.monotonic() - started < tracking.REACH_TIMEOUT + 1
    tracking.check_reachable("sqlite:///nowhere/mlflow.db")  # a local store: nothing to reach


# ---------------------------------------------------------------- a tiny pipeline, in this process


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def in_repo(repo: Path, **env: str):
    """Run stages of `repo` in this process: its directory, a clean tracking environment."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(repo)
        for key in ("MLFLOW_TRACKING_URI", "STOCKCAST_TRACKING", "STOCKCAST_PIPELINE_RUN", "DVC_ROOT", "DVC_STAGE", "DVC_EXP_NAME"):
            mp.delenv(key, raising=False)
        for key, value in env.items():
            mp.setenv(key, value)
        yield mp


def train_stage(mp: pytest.MonkeyPatch, stage: str) -> None:
    mp.setattr(sys, "argv", ["python -m pipeline.train", stage])
    train.main()


def configure_tiny(repo: Path) -> Path:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for section, values in TINY.items():
        params[section].update(values)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return repo


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real `mlflow server` (SQLite backend, proxied artifacts), started now, checked later."""
    root = tmp_path_factory.mktemp("server")
    port = _free_port()
    argv = [
        str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{root}/db", "--artifacts-destination", str(root / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with open(root / "server.log", "wb") as log:
        process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    yield process, f"http://127.0.0.1:{port}", root / "server.log"
    children = psutil.Process(process.pid).children(recursive=True)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"server processes left behind: {alive}"


@pytest.fixture(scope="module")
def store(tmp_path_factory, server):
    """A tiny pipeline (every stage) in a git-committed copy, tracked in the default local store."""
    repo = configure_tiny(copy_repo(tmp_path_factory.mktemp("tracked")))
    with open(repo / ".gitignore", "a") as ignore:
        ignore.write("/data/\n/reports/\n")  # DVC's outputs, as `dvc repro` would ignore them
    for argv in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-qm", "init"]):
        subprocess.run(["git", *argv], cwd=repo, check=True, capture_output=True)
    with in_repo(repo, STOCKCAST_PIPELINE_RUN=PIPELINE_RUN) as mp:
        for stage in (ingest, features, split):
            stage.main()
        for stage in ("naive", "arima", "sklearn", "lstm"):
            train_stage(mp, stage)
        evaluate.main()
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{repo}/mlflow.db")
    experiment = client.get_experiment_by_name("stockcast")
    runs = {run.info.run_name: run for run in client.search_runs([experiment.experiment_id])}
    return repo, client, experiment, runs


def test_one_run_per_model_with_its_params_and_tags(store):
    repo, _, experiment, runs = store
    assert sorted(runs) == sorted([*MODELS, "comparison"])
    assert experiment.artifact_location == (repo / "mlruns").as_uri()
    lock = {"data/prices.parquet": file_md5(str(repo / "data/prices.parquet")), "data/folds.json": file_md5(str(repo / "data/folds.json"))}
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
    for model in MODELS:
        run = runs[model]
        tags, params = run.data.tags, run.data.params
        assert run.info.status == "FINISHED"
        assert tags["model"] == model and tags["series"] == "SP500" and tags["pipeline_run"] == PIPELINE_RUN
        assert tags["stage"] == ("naive" if model == "drift" else model)
        assert tags["git_commit"] == commit and tags["git_dirty"] == "false"
        assert {key: tags[f"md5.{key}"] for key in lock} == lock
        assert tags["output_md5"] == file_md5(str(repo / f"data/predictions/{model}.parquet"))
        assert params["data.start"] == "2017-01-01" and params["split.test_size"] == "10"
        assert ("features.n_lags" in params) == (model in ("sklearn", "lstm"))
    assert runs["arima"].data.params["arima.order"] == "auto" and "order_=(" in runs["arima"].data.tags["learned.SP500"]
    assert runs["sklearn"].data.tags["family"].startswith("Regressor(estimator=Ridge")
    assert runs["lstm"].data.params["lstm.units"] == "[2]" and runs["lstm"].data.tags["family"].startswith("Recurrent(cell='lstm'")
    for model in MODELS:  # the prices table as the run's input, under DVC's md5
        (dataset,) = [d.dataset for d in runs[model].inputs.dataset_inputs]
        assert dataset.name == "prices" and dataset.digest == lock["data/prices.parquet"]
        assert [c["name"] for c in json.loads(dataset.schema)["mlflow_colspec"]][:2] == ["unique_id", "ds"]


def test_every_model_has_the_same_metric_keys_per_fold_and_overall_as_the_reports(store):
    repo, client, _, runs = store
    report = json.loads((repo / "reports/metrics.json").read_text())
    keys = {model: {k for k in runs[model].data.metrics if not k.startswith("history/")} for model in MODELS}
    assert all(k == keys["naive"] for k in keys.values()) and {"rmse", "mase", "rmse_vs_naive", "fold/rmse"} <= keys["naive"]
    for model in MODELS:
        overall = runs[model].data.metrics
        assert overall["rmse"] == pytest.approx(report["models"][model]["rmse"], rel=1e-12)
        assert overall["directional_accuracy"] == pytest.approx(report["models"][model]["directional_accuracy"], rel=1e-12)
        history = client.get_metric_history(runs[model].info.run_id, "fold/rmse")
        assert sorted(m.step for m in history) == [0, 1]
    assert runs["naive"].data.metrics["rmse_vs_naive"] == 1.0 and math.isnan(runs["naive"].data.metrics["dm_stat_vs_naive"])


def test_the_recurrent_net_logs_its_training_curves_per_fold(store):
    _, client, _, runs = store
    run_id = runs["lstm"].info.run_id
    for fold in (0, 1):
        loss = client.get_metric_history(run_id, f"history/SP500/fold_{fold}/loss")
        val = client.get_metric_history(run_id, f"history/SP500/fold_{fold}/val_loss")
        assert [m.step for m in loss] == [m.step for m in val] == [0, 1]  # two epochs


def test_the_last_folds_models_load_through_pyfunc(store):
    repo, client, _, runs = store
    prices = pd.read_parquet(repo / "data/prices.parquet")
    recent = tracking.recent_prices(prices, "SP500")
    for model in MODELS:
        forecast = mlflow.pyfunc.load_model(runs[model].data.tags["forecaster.SP500"]).predict(recent)
        assert forecast["ds"].iloc[0] == pd.Timestamp("2019-01-02") and np.isfinite(forecast["y_hat"].iloc[0])  # New Year's Day skipped
        assert ("y_lo" in forecast) == (model == "arima")
        artifacts = [a.path for a in client.list_artifacts(runs[model].info.run_id)]
        assert artifacts == ([NATIVE[model]] if model in NATIVE else [])
    for model, path in NATIVE.items():
        native = mlflow.pyfunc.load_model(f"runs:/{runs[model].info.run_id}/{path}")
        assert native.metadata.signature is not None and native.input_example is not None
        assert np.all(np.isfinite(np.asarray(native.predict(native.input_example), dtype="float64")))


def test_the_comparison_run_holds_the_reports_and_registers_the_champion(store):
    repo, client, _, runs = store
    report = json.loads((repo / "reports/metrics.json").read_text())
    comparison = runs["comparison"]
    assert comparison.data.tags["stage"] == "evaluate" and comparison.data.tags["pipeline_run"] == PIPELINE_RUN
    assert {comparison.data.tags[f"run.{model}"] for model in MODELS} == {runs[model].info.run_id for model in MODELS}
    for model in MODELS:
        assert comparison.data.metrics[f"{model}.rmse"] == pytest.approx(report["models"][model]["rmse"], rel=1e-12)
    artifacts = {a.path for a in client.list_artifacts(comparison.info.run_id)}
    assert {"metrics.json", "evaluation.json", "leaderboard.md", "plots"} <= artifacts
    champion = scoring.champions(report)["SP500"]
    version = client.get_model_version_by_alias("stockcast-SP500", "champion")
    assert version.tags["model"] == champion == comparison.data.tags["champion.SP500"]
    assert version.source == runs[champion].data.tags["forecaster.SP500"]


def test_tracking_changes_no_output_and_a_rerun_registers_no_new_version(store, tmp_path):
    repo, client, _, _ = store
    untracked = copy_repo(tmp_path / "untracked")
    shutil.copytree(repo / "data", untracked / "data", ignore=shutil.ignore_patterns("predictions"))
    shutil.copy(repo / "params.yaml", untracked / "params.yaml")
    with in_repo(untracked, STOCKCAST_TRACKING="off") as mp:
        train_stage(mp, "naive")
    for model in ("naive", "drift"):
        assert file_md5(str(untracked / f"data/predictions/{model}.parquet")) == file_md5(str(repo / f"data/predictions/{model}.parquet"))
    assert not (untracked / "mlflow.db").exists()
    with in_repo(repo):
        evaluate.main()  # the same tables again: the champion stays the same version
    assert [int(v.version) for v in client.search_model_versions("name = 'stockcast-SP500'")] == [1]


# ---------------------------------------------------------------- a real server, and no server


def _wait_healthy(process: subprocess.Popen, uri: str, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"mlflow server exited: {log.read_text()[-2000:]}"
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"mlflow server not healthy after {timeout} s: {log.read_text()[-2000:]}")


def test_a_real_server_gets_the_runs_artifacts_and_champion(store, server, tmp_path):
    repo, _, _, _ = store
    process, uri, log = server
    _wait_healthy(process, uri, log)
    remote = copy_repo(tmp_path / "remote")
    shutil.copytree(repo / "data", remote / "data", ignore=shutil.ignore_patterns("predictions"))
    shutil.copy(repo / "params.yaml", remote / "params.yaml")
    with in_repo(remote, MLFLOW_TRACKING_URI=uri, STOCKCAST_PIPELINE_RUN="on-the-server") as mp:
        train_stage(mp, "naive")
        evaluate.main()
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("stockcast")
    assert experiment.artifact_location.startswith("mlflow-artifacts:")  # the server stores them
    runs = {run.info.run_name: run for run in client.search_runs([experiment.experiment_id], "tags.pipeline_run = 'on-the-server'")}
    assert sorted(runs) == ["comparison", "drift", "naive"]
    assert [m.step for m in client.get_metric_history(runs["naive"].info.run_id, "fold/rmse")] == [0, 1]
    assert {"metrics.json", "leaderboard.md", "plots"} <= {a.path for a in client.list_artifacts(runs["comparison"].info.run_id)}
    version = client.get_model_version_by_alias("stockcast-SP500", "champion")
    assert version.tags["model"] in ("naive", "drift") and version.tags["pipeline_run"] == "on-the-server"
    forecast = mlflow.pyfunc.load_model("models:/stockcast-SP500@champion").predict(tracking.recent_prices(pd.read_parquet(remote / "data/prices.parquet"), "SP500"))
    assert np.isfinite(forecast["y_hat"].iloc[0])
    assert not (remote / "mlflow.db").exists() and not (remote / "mlruns").exists()


def test_an_unreachable_server_fails_the_stage_fast_in_one_line(store, tmp_path):
    repo, _, _, _ = store
    copy = copy_repo(tmp_path / "offline")
    shutil.copytree(repo / "data", copy / "data", ignore=shutil.ignore_patterns("predictions"))
    uri = f"http://127.0.0.1:{_free_port()}"
    started = time.monotonic()
    result = run_in(copy, "python", "-m", "pipeline.train", "naive", env={"MLFLOW_TRACKING_URI": uri})
    elapsed = time.monotonic() - started
    assert result.returncode == 2 and elapsed < 10, (elapsed, result.stderr)
    assert result.stderr.strip().splitlines() == [f"error: MLFLOW_TRACKING_URI: cannot reach the MLflow tracking server at {uri} ([Errno 111] Connection refused)"]
    assert not (copy / "data/predictions").exists()  # it failed before training
