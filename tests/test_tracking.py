"""The `track` stage and `pipeline.tracking`: pure parts, the local store after a tiny pipeline,
a second run (nothing logged twice), tracking off, an unreachable server and a real one.

The tiny pipeline runs once, in this process (stage by stage, in a throwaway git copy of the
repo), so the imports are paid once; `track` as its own process is tested where the process
matters (the unreachable server). The `mlflow server` starts with the module and comes up
while the pipeline runs.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import copy_repo, free_port, git_init, mlflow_server, run_in, wait_healthy
from dvc_data.hashfile.build import build
from dvc_data.hashfile.db import HashFileDB
from dvc_data.hashfile.hash import file_md5
from dvc_objects.fs.local import LocalFileSystem
from mlflow.exceptions import MlflowException

from pipeline import cli, diagnostics, evaluate, features, forecast, ingest, scoring, split, track, train
from pipeline.cli import UserError
from pipeline.models import loader
from pipeline.models import store as model_store
from pipeline.params import parse_params
from pipeline.tracking import flavours, provenance, registry, store
from pipeline.tracking.runs import PROCESS_TAG, fail_leftovers

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

TINY = {
    "data": {"start": "2017-01-01"},  # 502 days of the real S&P 500
    "features": {"n_lags": 5},
    "forecast": {"horizons": [1, 5]},  # the default 20 days need a longer test part
    "split": {"n_windows": 2, "test_size": 10},
    "parallel": {"n_jobs": 1},
    "lstm": {"units": [2], "epochs": 2},
    "diagnostics": {"seasonal_period": 20},
}
MODELS = ("naive", "drift", "arima", "sklearn", "lstm")
NATIVE = {"sklearn": "sklearn-SP500", "lstm": "keras-SP500"}  # no statsmodels flavour: it pickles
PIPELINE_RUN = "test-pipeline-run"
ENV_KEYS = (
    "MLFLOW_TRACKING_URI",
    "STOCKCAST_TRACKING",
    "STOCKCAST_PIPELINE_RUN",
    "DVC_ROOT",
    "DVC_STAGE",
    "DVC_EXP_NAME",
)


# ---------------------------------------------------------------- helpers other test modules use


@contextmanager
def in_repo(repo: Path, **env: str):
    """Run stages of `repo` in this process: its directory, a clean tracking environment."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(repo)
        for key in ENV_KEYS:
            mp.delenv(key, raising=False)
        for key, value in env.items():
            mp.setenv(key, value)
        yield mp


def configure_tiny(repo: Path) -> Path:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for section, values in TINY.items():
        params[section].update(values)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return repo


def run_stages(mp: pytest.MonkeyPatch, model_stages=("naive", "arima", "sklearn", "lstm")) -> None:
    """Every stage before `track`, in this process."""
    for stage in (ingest, diagnostics, features, split):
        stage.main()
    for stage in model_stages:
        mp.setattr(sys, "argv", ["python -m pipeline.train", stage])
        train.main()
    evaluate.main()


def copy_outputs(repo: Path, dest: Path) -> Path:
    """A copy of `repo` with its pipeline outputs, without its MLflow store."""
    shutil.copytree(repo, dest, ignore=shutil.ignore_patterns("mlflow.db", "mlruns", ".git"))
    return dest


# ---------------------------------------------------------------- pure parts


def test_the_project_root_is_dvc_root_or_the_nearest_dvc_yaml_outside_dvc(tmp_path):
    root = tmp_path / "project"
    temp_copy = root / ".dvc/tmp/exps/tmp1234"  # where `dvc exp run --temp` runs a stage
    temp_copy.mkdir(parents=True)
    (root / "dvc.yaml").write_text("stages: {}\n")
    (temp_copy / "dvc.yaml").write_text("stages: {}\n")
    assert store.project_root(temp_copy, environ={}) == root
    assert store.project_root(root / ".dvc", environ={}) == root
    assert store.project_root(tmp_path, environ={"DVC_ROOT": str(root)}) == root
    with pytest.raises(UserError, match="dvc.yaml: not found"):
        store.project_root(tmp_path, environ={})


def test_the_default_store_is_sqlite_with_artifacts_in_the_project_root(tmp_path):
    assert store.tracking_uri(tmp_path, environ={}) == f"sqlite:///{tmp_path}/mlflow.db"
    assert store.artifact_location(tmp_path, f"sqlite:///{tmp_path}/mlflow.db") == (tmp_path / "mlruns").as_uri()
    server = "http://127.0.0.1:5000"
    assert store.tracking_uri(tmp_path, environ={"MLFLOW_TRACKING_URI": server}) == server
    assert store.artifact_location(tmp_path, server) is None  # the server decides
    assert store.ui_link(server + "/", "3") == f"{server}/#/experiments/3?workflowType=machine_learning"
    assert not store.local_store_exists(f"sqlite:///{tmp_path}/none.db") and store.local_store_exists(server)


def test_tracking_is_off_only_when_switched_off():
    assert store.enabled({}) and store.enabled({"STOCKCAST_TRACKING": "on"})
    assert not any(store.enabled({"STOCKCAST_TRACKING": v}) for v in ("off", "OFF", "0", "false", "no"))


def test_the_pipeline_run_is_named_by_the_env_the_dvc_experiment_or_the_time():
    assert provenance.pipeline_run_id({"STOCKCAST_PIPELINE_RUN": "mine", "DVC_EXP_NAME": "exp"}) == "mine"
    assert provenance.pipeline_run_id({"DVC_EXP_NAME": "gummy-bass"}) == "gummy-bass"
    assert provenance.pipeline_run_id({}, now=datetime(2026, 12, 1, 9, 30, 12, tzinfo=UTC)) == "20261201T093012Z"


def test_md5s_are_dvcs_own_for_files_and_directories(tmp_path):
    path = tmp_path / "models/table.bin"
    path.parent.mkdir()
    path.write_bytes(b"line one\r\nline two\r\n" + bytes(range(256)))  # no line-ending games
    (tmp_path / "models/sub").mkdir()
    (tmp_path / "models/sub/b.json").write_text('{"b": 1}\n')
    assert provenance.dvc_md5(path) == file_md5(str(path))
    fs = LocalFileSystem()
    _, _, tree = build(HashFileDB(fs, str(tmp_path / "odb")), str(tmp_path / "models"), fs, "md5")
    assert provenance.dvc_md5(tmp_path / "models") == tree.hash_info.value  # as dvc.lock records a directory


def test_params_are_flattened_to_section_keys():
    params = parse_params({"sklearn": {"estimator": "mlp", "params": {"alpha": 0.01}}, "lstm": {"units": [8, 4]}})
    flat = provenance.flat_params(params, ("data", "sklearn", "lstm"))
    assert flat["sklearn.estimator"] == "mlp" and flat["sklearn.params.alpha"] == "0.01"
    assert flat["lstm.units"] == "[8, 4]" and flat["data.path"] == "null" and flat["lstm.warm_start"] == "false"
    assert not any(key.startswith(("split.", "features.")) for key in flat)


def test_learned_values_are_one_short_line():
    assert provenance.learned_text({"order_": [1, 1, 1], "drift_": 0.5}) == "order_=[1, 1, 1], drift_=0.5"
    assert provenance.learned_text({"weights_": list(range(100))}) == ""  # not what a tag is for


def test_the_receipt_has_no_run_ids_or_times_and_the_same_bytes_for_the_same_outputs(tmp_path):
    outputs = [provenance.ModelOutputs("naive", Path("p"), Path("d"), {}, "a" * 32, "b" * 32 + ".dir")]
    champions = {1: {"SP500": "naive"}, 5: {"SP500": "drift"}}
    content = track.receipt("stockcast", True, outputs, champions)
    assert content == {
        "experiment": "stockcast",
        "tracking": "on",
        "models": {"naive": {"predictions_md5": "a" * 32, "model_md5": "b" * 32 + ".dir"}},
        "champions": {"SP500": "naive"},
        "champions_by_horizon": {"1": {"SP500": "naive"}, "5": {"SP500": "drift"}},
    }
    track.io.write_json(content, tmp_path / "1.json")
    track.io.write_json(track.receipt("stockcast", True, outputs, champions), tmp_path / "2.json")
    assert (tmp_path / "1.json").read_bytes() == (tmp_path / "2.json").read_bytes()
    assert track.receipt("stockcast", False, outputs, champions)["tracking"] == "off"


def test_an_unreachable_server_is_a_user_error_naming_it_within_seconds():
    uri = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(UserError, match=f"^MLFLOW_TRACKING_URI: cannot reach the MLflow tracking server at {uri} "):
        store.check_reachable(uri)
    assert time.monotonic() - started < store.REACH_TIMEOUT + 1
    store.check_reachable("sqlite:///nowhere/mlflow.db")  # a local store: nothing to reach


# ---------------------------------------------------------------- a tiny pipeline, tracked locally


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real `mlflow server` (SQLite backend, proxied artifacts), started now, checked later."""
    with mlflow_server(tmp_path_factory.mktemp("server")) as server:
        yield server


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, server):
    """A tiny pipeline (every stage, `track` last) in a git-committed copy, tracked in the default local store."""
    repo = configure_tiny(copy_repo(tmp_path_factory.mktemp("tracked")))
    with open(repo / ".gitignore", "a") as ignore:
        ignore.write("/data/\n/models/\n/reports/\n")  # DVC's outputs, as `dvc repro` would ignore them
    git_init(repo)
    with in_repo(repo, STOCKCAST_PIPELINE_RUN=PIPELINE_RUN) as mp:
        run_stages(mp)
        track.main()
    return repo


@pytest.fixture(scope="module")
def tracked(pipeline):
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{pipeline}/mlflow.db")
    experiment = client.get_experiment_by_name("stockcast")
    runs = {run.info.run_name: run for run in client.search_runs([experiment.experiment_id])}
    return pipeline, client, experiment, runs


def test_a_parent_run_holds_the_model_runs_and_the_comparison(tracked):
    repo, _, experiment, runs = tracked
    assert sorted(runs) == sorted([PIPELINE_RUN, *MODELS, "comparison"])
    assert experiment.artifact_location == (repo / "mlruns").as_uri()
    assert experiment.tags[store.EXPERIMENT_KIND[0]] == "custom_model_development"  # the UI's model-training view
    parent = runs[PIPELINE_RUN]
    assert parent.data.tags["pipeline_run"] == PIPELINE_RUN and parent.info.status == "FINISHED"
    for name in (*MODELS, "comparison"):
        assert runs[name].data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert parent.data.tags[f"run.{name}"] == runs[name].info.run_id
    assert parent.data.tags["champion.SP500"] in MODELS


def test_one_run_per_model_with_its_params_and_tags(tracked):
    repo, _, _, runs = tracked
    inputs = {name: file_md5(str(repo / name)) for name in ("data/prices.parquet", "data/folds.json")}
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()
    for model in MODELS:
        run = runs[model]
        tags, params = run.data.tags, run.data.params
        manifest = model_store.read_manifest(repo / "models" / model)
        assert run.info.status == "FINISHED"
        assert tags["model"] == model and tags["series"] == "SP500" and tags["pipeline_run"] == PIPELINE_RUN
        assert tags["family"] == manifest["description"] and tags["stage"] == manifest["stage"]
        assert tags["git_commit"] == commit and tags["git_dirty"] == "false"
        assert tags[PROCESS_TAG] == f"{socket.gethostname()}:{os.getpid()}"  # track ran in this process
        assert {key: tags[f"md5.{key}"] for key in inputs} == inputs
        assert tags["output"] == f"data/predictions/{model}.parquet"
        assert tags["output_md5"] == file_md5(str(repo / tags["output"]))
        assert tags["model_md5"] == provenance.dvc_md5(repo / "models" / model)
        assert params["data.start"] == "2017-01-01" and params["split.test_size"] == "10"
        assert ("features.n_lags" in params) == (model in ("sklearn", "lstm"))
        (dataset,) = [d.dataset for d in run.inputs.dataset_inputs]  # the prices, under DVC's md5
        assert dataset.name == "prices" and dataset.digest == inputs["data/prices.parquet"]
    assert runs["arima"].data.params["arima.order"] == "auto" and "order_=[" in runs["arima"].data.tags["learned.SP500"]
    assert runs["sklearn"].data.tags["family"].startswith("Regressor(")
    assert runs["lstm"].data.params["lstm.units"] == "[2]" and runs["lstm"].data.tags["family"].startswith("Recurrent(")


def test_every_model_has_the_same_metric_keys_overall_and_per_fold_as_the_reports(tracked):
    repo, client, _, runs = tracked
    report = json.loads((repo / "reports/metrics.json").read_text())
    folds = json.loads((repo / "reports/evaluation.json").read_text())["folds"]
    keys = {model: {k for k in runs[model].data.metrics if not k.startswith("history/")} for model in MODELS}
    assert all(k == keys["naive"] for k in keys.values())
    # Every model has calibrated intervals: their scores at both levels beside the point scores.
    score_keys = [*scoring.METRIC_KEYS, *(f"{k}_{level}" for level in (80, 95) for k in scoring.INTERVAL_KEYS)]
    per_horizon = {f"h{h}/{k}" for h in (1, 5) for k in score_keys}
    trading = {f"trading/{k}" for k in report["models"]["naive"]["trading"]}  # the nested scores, flat
    assert trading >= {"trading/sharpe", "trading/annual_return", "trading/max_drawdown", "trading/turnover"}
    assert keys["naive"] == set(score_keys) | {f"fold/{k}" for k in score_keys} | per_horizon | trading
    for model in MODELS:
        scores = report["models"][model]
        expected = {k: v for k, v in scores.items() if k not in ("by_horizon", "trading")}
        expected |= {f"trading/{k}": v for k, v in scores["trading"].items()}
        expected |= {f"h{h}/{k}": v for h, by_key in scores["by_horizon"].items() for k, v in by_key.items()}
        for key, value in expected.items():
            logged = runs[model].data.metrics[key]
            assert math.isnan(logged) if value is None else logged == pytest.approx(value, rel=1e-12)
        history = client.get_metric_history(runs[model].info.run_id, "fold/rmse")
        assert {m.step: m.value for m in history} == pytest.approx({int(k): v[model]["rmse"] for k, v in folds.items()})
    assert runs["naive"].data.metrics["rmse_vs_naive"] == 1.0 and math.isnan(
        runs["naive"].data.metrics["dm_stat_vs_naive"]
    )


def test_the_recurrent_net_logs_its_training_curves_per_fold(tracked):
    _, client, _, runs = tracked
    run_id = runs["lstm"].info.run_id
    for fold in (0, 1):
        loss = client.get_metric_history(run_id, f"history/SP500/fold_{fold}/loss")
        val = client.get_metric_history(run_id, f"history/SP500/fold_{fold}/val_loss")
        assert [m.step for m in loss] == [m.step for m in val] == [0, 1]  # two epochs


def test_each_models_pyfunc_forecasts_what_its_models_directory_does(tracked):
    repo, client, _, runs = tracked
    recent = forecast.recent_prices(pd.read_parquet(repo / "data/prices.parquet"), "SP500")
    for model in MODELS:
        served = mlflow.pyfunc.load_model(runs[model].data.tags["forecaster.SP500"])
        assert served.metadata.signature is not None and served.input_example is not None
        logged = served.predict(recent)
        local = forecast.horizon_forecasts(loader.load(repo / "models" / model, "SP500"), recent)
        pd.testing.assert_frame_equal(logged, local, check_exact=True)
        assert logged["h"].tolist() == [1, 5]
        assert logged["ds"].tolist() == [pd.Timestamp("2019-01-02"), pd.Timestamp("2019-01-08")]  # no New Year's Day
        assert {"y_lo_80", "y_hi_80", "y_lo_95", "y_hi_95"} <= set(logged)  # every model's calibrated intervals
        artifacts = [a.path for a in client.list_artifacts(runs[model].info.run_id)]
        assert artifacts == ([NATIVE[model]] if model in NATIVE else [])
    with tempfile.TemporaryDirectory() as tmp:  # logged as code, with the model's own files: no pickle
        files = Path(mlflow.artifacts.download_artifacts(runs["lstm"].data.tags["forecaster.SP500"], dst_path=tmp))
        assert (files / "served.py").exists() and (files / "artifacts/model/model.json").exists()
        assert not [p for p in files.rglob("*") if p.suffix in (".pkl", ".pickle", ".cloudpickle")]


def test_the_native_flavours_load_with_their_input_examples(tracked):
    _, _, _, runs = tracked
    for model, path in NATIVE.items():
        native = mlflow.pyfunc.load_model(f"runs:/{runs[model].info.run_id}/{path}")
        assert native.metadata.signature is not None and native.input_example is not None
        assert np.all(np.isfinite(np.asarray(native.predict(native.input_example), dtype="float64")))
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(f"runs:/{runs['sklearn'].info.run_id}/sklearn-SP500", dst_path=tmp)
        assert (Path(local) / "model.skops").exists() and not list(Path(local).glob("*.pkl"))


def test_the_comparison_run_holds_the_scores_and_reports_and_the_champion_is_registered(tracked):
    repo, client, _, runs = tracked
    report = json.loads((repo / "reports/metrics.json").read_text())
    comparison = runs["comparison"]
    assert comparison.data.tags["pipeline_run"] == PIPELINE_RUN
    assert {comparison.data.tags[f"run.{model}"] for model in MODELS} == {runs[model].info.run_id for model in MODELS}
    for model in MODELS:
        assert comparison.data.metrics[f"{model}.rmse"] == pytest.approx(report["models"][model]["rmse"], rel=1e-12)
        five = report["models"][model]["by_horizon"]["5"]["rmse"]
        assert comparison.data.metrics[f"h5/{model}.rmse"] == pytest.approx(five, rel=1e-12)
        sharpe, logged = (
            report["models"][model]["trading"]["sharpe"],
            comparison.data.metrics[f"{model}.trading/sharpe"],
        )
        assert math.isnan(logged) if sharpe is None else logged == pytest.approx(sharpe, rel=1e-12)
    tests = report["tests"]
    for h in ("1", "5"):  # the tests and buy-and-hold, beside the models: flat keys
        assert comparison.data.metrics[f"h{h}/spa_pvalue"] == pytest.approx(tests["spa"][h]["pvalue"], rel=1e-12)
        for model in MODELS:
            assert comparison.data.metrics[f"h{h}/{model}.in_mcs"] == float(model in tests["mcs"][h]["included"])
    assert comparison.data.metrics["buy_and_hold/sharpe"] == pytest.approx(report["buy_and_hold"]["sharpe"], rel=1e-12)
    artifacts = {a.path for a in client.list_artifacts(comparison.info.run_id)}
    assert {"metrics.json", "evaluation.json", "leaderboard.md", "plots", "diagnostics"} <= artifacts
    champion = scoring.champions(report)["SP500"]
    version = client.get_model_version_by_alias("stockcast-SP500", "champion")
    assert version.tags["model"] == champion == comparison.data.tags["champion.SP500"]
    assert version.source == runs[champion].data.tags["forecaster.SP500"]
    for h in (1, 5):  # one alias per horizon, at that horizon's champion's served pyfunc
        at_h = scoring.champions(report, h)["SP500"]
        aliased = client.get_model_version_by_alias("stockcast-SP500", f"champion-h{h}")
        assert aliased.source == runs[at_h].data.tags["forecaster.SP500"]
        assert comparison.data.tags[f"champion.h{h}.SP500"] == at_h
    assert client.get_model_version_by_alias("stockcast-SP500", "champion-h1").version == version.version


def test_the_receipt_says_what_was_tracked(tracked):
    repo, _, _, runs = tracked
    receipt = json.loads((repo / "data/tracked.json").read_text())
    assert (
        receipt["tracking"] == "on"
        and receipt["experiment"] == "stockcast"
        and sorted(receipt["models"]) == sorted(MODELS)
    )
    for model in MODELS:
        assert receipt["models"][model]["predictions_md5"] == runs[model].data.tags["output_md5"]
        assert receipt["models"][model]["model_md5"] == runs[model].data.tags["model_md5"]
    assert receipt["champions"] == {"SP500": runs[PIPELINE_RUN].data.tags["champion.SP500"]}


def test_the_forecast_is_the_same_from_the_registry_and_from_models(tracked, capsys):
    repo, _, _, _ = tracked
    lines = {}
    for switch in ("on", "off"):
        with in_repo(repo, STOCKCAST_TRACKING=switch) as mp:
            mp.setattr(sys, "argv", ["python -m pipeline.forecast"])
            capsys.readouterr()
            forecast.main()
            lines[switch] = capsys.readouterr().out.strip().splitlines()
    champions = json.loads((repo / "data/tracked.json").read_text())["champions_by_horizon"]
    assert len(lines["on"]) == len(lines["off"]) == len(champions) == 2
    for on, off, (h, by_series) in zip(lines["on"], lines["off"], champions.items(), strict=True):
        champion = by_series["SP500"]
        assert on.startswith(f"SP500 2019-01-0{2 if h == '1' else 8} (h={h}): ")
        assert re.search(f"champion {champion} \\(stockcast-SP500 version \\d+\\)$", on), on
        assert off.endswith(f"champion {champion} (models/{champion}/)")
        assert on.split(", champion")[0] == off.split(", champion")[0]  # SP500 2019-01-02 (h=1): ...


# ---------------------------------------------------------------- runs after the first


def test_a_second_run_logs_no_model_again_and_links_the_earlier_runs(tracked, capsys):
    repo, client, experiment, runs = tracked
    receipt = (repo / "data/tracked.json").read_bytes()
    with in_repo(repo, STOCKCAST_PIPELINE_RUN="second"):
        track.main()
    out = capsys.readouterr().out
    assert "track: pipeline run 'second': 0 model runs logged, 5 unchanged since logged, in sqlite:///" in out
    assert (
        f"track: runs at http://127.0.0.1:5000/#/experiments/{experiment.experiment_id}?workflowType=machine_learning"
        in out
    )
    second = {
        r.info.run_name: r for r in client.search_runs([experiment.experiment_id], "tags.pipeline_run = 'second'")
    }
    assert sorted(second) == ["comparison", "second"]  # a parent and its comparison, no model run
    for model in MODELS:
        assert second["second"].data.tags[f"run.{model}"] == runs[model].info.run_id
        assert second["comparison"].data.tags[f"run.{model}"] == runs[model].info.run_id
    assert [int(v.version) for v in client.search_model_versions("name = 'stockcast-SP500'")] == [1]
    assert (repo / "data/tracked.json").read_bytes() == receipt


def test_only_runs_of_a_gone_track_on_this_host_are_marked_failed(tracked):
    repo, client, experiment, _ = tracked
    gone = subprocess.Popen(["true"])
    gone.wait()  # a process id that no process has now
    host = socket.gethostname()
    owners = {"killed": f"{host}:{gone.pid}", "live": f"{host}:{os.getpid()}", "elsewhere": f"not-{host}:{gone.pid}"}
    ids = {
        name: client.create_run(
            experiment.experiment_id, run_name=name, tags={"pipeline_run": "leftovers", PROCESS_TAG: owner}
        ).info.run_id
        for name, owner in owners.items()
    }
    with in_repo(repo):
        store.connect()
        assert fail_leftovers(experiment.experiment_id) == [ids["killed"]]
    status = {name: client.get_run(run_id).info.status for name, run_id in ids.items()}
    assert status == {"killed": "FAILED", "live": "RUNNING", "elsewhere": "RUNNING"}
    for run_id in ids.values():  # the later tests' `track` runs see none of these
        client.delete_run(run_id)


def test_tracking_off_logs_nothing_and_says_so_in_the_receipt(pipeline, tmp_path, capsys):
    copy = copy_outputs(pipeline, tmp_path / "off")
    with in_repo(copy, STOCKCAST_TRACKING="off"):
        track.main()
    assert capsys.readouterr().out.strip() == "track: STOCKCAST_TRACKING=off: nothing logged"
    assert not (copy / "mlflow.db").exists() and not (copy / "mlruns").exists()
    receipt = json.loads((copy / "data/tracked.json").read_text())
    assert receipt == {**json.loads((pipeline / "data/tracked.json").read_text()), "tracking": "off"}


def test_an_unreachable_server_fails_track_fast_in_one_line_and_keeps_the_receipt(pipeline, tmp_path):
    copy = copy_outputs(pipeline, tmp_path / "offline")
    before = (copy / "data/tracked.json").read_bytes()
    uri = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = run_in(copy, "python", "-m", "pipeline.track", env={"MLFLOW_TRACKING_URI": uri})
    elapsed = time.monotonic() - started
    assert result.returncode == 2 and elapsed < 10, (elapsed, result.stderr)
    expected = (
        f"error: MLFLOW_TRACKING_URI: cannot reach the MLflow tracking server at {uri} ([Errno 111] Connection refused)"
    )
    assert result.stderr.strip().splitlines() == [expected] and result.stdout == ""
    assert (copy / "data/tracked.json").read_bytes() == before


def test_a_failure_while_logging_is_one_line_marks_the_runs_failed_and_keeps_the_receipt(pipeline, tmp_path, capsys):
    copy = copy_outputs(pipeline, tmp_path / "failing")
    before = (copy / "data/tracked.json").read_bytes()

    def broken(*args):
        raise MlflowException("the store went away")

    with in_repo(copy, STOCKCAST_PIPELINE_RUN="failing") as mp, pytest.raises(SystemExit):
        mp.setattr(flavours, "log_forecaster", broken)
        cli.run(track.main)
    assert capsys.readouterr().err.strip() == f"error: MLflow (sqlite:///{copy}/mlflow.db): the store went away"
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{copy}/mlflow.db")
    found = client.search_runs([client.get_experiment_by_name("stockcast").experiment_id])
    assert {run.info.run_name: run.info.status for run in found} == {"failing": "FAILED", "arima": "FAILED"}
    assert (copy / "data/tracked.json").read_bytes() == before  # so DVC runs `track` again


def test_a_real_server_gets_the_runs_artifacts_and_champion(pipeline, server, tmp_path):
    process, uri, log = server
    wait_healthy(process, uri, log)
    remote = copy_outputs(pipeline, tmp_path / "remote")
    with in_repo(remote, MLFLOW_TRACKING_URI=uri, STOCKCAST_PIPELINE_RUN="on-the-server"):
        track.main()
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("stockcast")
    assert experiment.artifact_location.startswith("mlflow-artifacts:")  # the server stores them
    found = client.search_runs([experiment.experiment_id], "tags.pipeline_run = 'on-the-server'")
    runs = {run.info.run_name: run for run in found}
    assert sorted(runs) == sorted(["on-the-server", *MODELS, "comparison"])
    assert [m.step for m in client.get_metric_history(runs["naive"].info.run_id, "fold/rmse")] == [0, 1]
    assert {"metrics.json", "leaderboard.md", "plots"} <= {
        a.path for a in client.list_artifacts(runs["comparison"].info.run_id)
    }
    version = client.get_model_version_by_alias("stockcast-SP500", "champion")
    assert version.tags["pipeline_run"] == "on-the-server"
    with in_repo(remote, MLFLOW_TRACKING_URI=uri):
        model, tags = registry.load_champion("SP500")
    recent = forecast.recent_prices(pd.read_parquet(remote / "data/prices.parquet"), "SP500")
    assert np.isfinite(model.predict(recent)["y_hat"].iloc[0]) and tags["model"] == version.tags["model"]
    assert not (remote / "mlflow.db").exists() and not (remote / "mlruns").exists()
