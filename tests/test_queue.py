"""Queued experiments: three `dvc exp run --queue` experiments, two at a time, against one real
`mlflow server`, land in the store exactly once each and equal serial runs of the same params.

Cost: about 2 minutes on the 2-core machine (measured: the baseline `dvc repro` 24 s, the queue
47 s, the three serial runs 40 s; 177 s in all while other test runs shared the cores). It stays
in `make test` because what it guards against (two `track` stages logging to one store at once)
shows only with real queue workers and a real server. A cheaper third experiment (one that
changes no model) would save about 20 s and no longer check that every model's runs land from
two workers at once.

In a git copy of the repo on a tiny config: `dvc repro` (the baseline, committed), three queued
experiments (`sklearn.params.alphas`, `arima.order`, `split.test_size`: one, one and every
model's outputs change), `dvc queue start -j 2`, then the same three param changes run one after
another with `dvc exp run --temp`, after the run cache is emptied so that their stages really
run. The serial runs log to the same store: their model outputs are the queued runs', so they
link those runs and log none.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

import mlflow
import psutil
import pytest
import yaml
from conftest import copy_repo, git_init, mlflow_server, run_in, stage_env, wait_healthy

from pipeline.scratch import GIT_IDENTITY

TINY = {
    "data": {"start": "2017-01-01"},  # 502 days of the real S&P 500
    "features": {"n_lags": 5},
    "forecast": {"horizons": [1, 5]},  # the default 20 days need a longer test part
    "split": {"n_windows": 2, "test_size": 20},
    "parallel": {"n_jobs": 1},
    "lstm": {"units": [2], "epochs": 2},
    "rnn_scratch": {"hidden": 2, "epochs": 2},
    "diagnostics": {"seasonal_period": 20},
}
EXPERIMENTS = {  # name -> `-S` override (`+`: `sklearn.params` is an empty mapping to add a key to)
    "q-sklearn": "+sklearn.params.alphas=[1.0]",
    "q-arima": "arima.order=[1,1,0]",
    "q-split": "split.test_size=15",
}
MODELS = ("naive", "drift", "arima", "sklearn", "lstm", "rnn_scratch")
QUEUE_TIMEOUT = 600  # seconds for the three queued experiments (1-4 min on 2 busy cores)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real `mlflow server` (its own SQLite store and artifacts), stopped with its children."""
    with mlflow_server(tmp_path_factory.mktemp("queue-server")) as server:
        yield server


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def workers(repo: Path) -> list[psutil.Process]:
    """The repo's live queue workers, by the pid files DVC keeps for them."""
    found = []
    for pid_file in (repo / ".dvc/tmp/exps/celery").glob("dvc-exp-worker-*.pid"):
        try:
            process = psutil.Process(int(pid_file.read_text()))
            if "queue-worker" in process.cmdline():
                found.append(process)
        except (psutil.NoSuchProcess, ValueError):
            pass
    return found


def stop_workers(repo: Path, env: dict) -> None:
    """`dvc queue stop`, then SIGTERM (a celery warm shutdown) for a worker that stays: the first
    worker here often misses the shutdown DVC broadcasts when the queue empties, and lives on."""
    run_in(repo, "dvc", "queue", "stop", env=env, timeout=60)
    _, alive = psutil.wait_procs(workers(repo), timeout=2)
    for process in alive:
        process.terminate()
    _, alive = psutil.wait_procs(alive, timeout=20)
    assert not alive, f"queue workers left behind: {alive}"


def experiments(repo: Path, env: dict) -> dict[str, dict]:
    """`dvc exp show --json`'s experiments of the baseline commit, by name."""
    shown = json.loads(ok(run_in(repo, "dvc", "exp", "show", "--json", env=env, timeout=60)))
    baseline = next(entry for entry in shown if entry["rev"] != "workspace")
    return {exp["name"]: exp for exp in baseline.get("experiments") or []}


def git(repo: Path, *args: str) -> str:
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}  # as pipeline.scratch
    return subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True).stdout


def lock_md5(repo: Path, rev: str, stage: str, out: str) -> str:
    lock = yaml.safe_load(git(repo, "show", f"{rev}:dvc.lock"))
    return next(o["md5"] for o in lock["stages"][stage]["outs"] if o["path"] == out)


@pytest.fixture(scope="module")
def queued(tmp_path_factory, server):
    """The copy after the baseline, the three queued experiments and the three serial runs."""
    process, uri, log = server
    repo = copy_repo(tmp_path_factory.mktemp("queue"))
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for section, values in TINY.items():
        params[section].update(values)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git_init(repo)
    # An empty STOCKCAST_PIPELINE_RUN: each experiment's parent run is named DVC_EXP_NAME.
    env = {"MLFLOW_TRACKING_URI": uri, "STOCKCAST_TRACKING": "on", "STOCKCAST_PIPELINE_RUN": ""}

    ok(run_in(repo, "dvc", "repro", "evaluate", env=env))  # the server comes up meanwhile
    wait_healthy(process, uri, log)
    ok(run_in(repo, "dvc", "repro", env={**env, "STOCKCAST_PIPELINE_RUN": "baseline"}))
    git(repo, "add", "-A")  # the reports and dvc.lock, as the project commits them
    git(repo, *GIT_IDENTITY, "-c", "commit.gpgsign=false", "commit", "-q", "--no-verify", "-m", "baseline")

    for name, override in EXPERIMENTS.items():
        ok(run_in(repo, "dvc", "exp", "run", "--queue", "-n", name, "-S", override, env=env))
    started, polls, states = time.monotonic(), 0, {}
    try:
        # The workers it starts inherit its stdout and stderr: read through pipes (`run_in`), the
        # command would only return once the whole queue had run; the loop below is the wait.
        log = repo.parent / "queue-start.log"
        with log.open("w") as out:
            start = subprocess.run(
                ["dvc", "queue", "start", "-j", "2"], cwd=repo, env=stage_env(env), stdout=out, stderr=out, timeout=60
            )
        assert start.returncode == 0, log.read_text()
        while time.monotonic() - started < QUEUE_TIMEOUT:
            # A finished experiment is a git ref: a cheap poll. `dvc exp show` (a second of CPU) tells
            # success from failure, so it runs when every ref is there, or now and then.
            refs = git(repo, "for-each-ref", "--format=%(refname:lstrip=-1)", "refs/exps")
            polls += 1
            if set(EXPERIMENTS) <= set(refs.split()) or polls % 10 == 0:
                states = {name: (exp["executor"] or {}).get("state") for name, exp in experiments(repo, env).items()}
                if all(states.get(name) in ("success", "failed") for name in EXPERIMENTS):
                    break
            time.sleep(1)
        queue_seconds = time.monotonic() - started
        run_in(repo, "dvc", "queue", "stop", env=env, timeout=60)  # idle workers go while the serial runs run

        shutil.rmtree(repo / ".dvc/cache/runs")  # else DVC restores the queued runs' outputs instead of running
        for name, override in EXPERIMENTS.items():
            ok(run_in(repo, "dvc", "exp", "run", "--temp", "-n", f"serial-{name}", "-S", override, env=env))
    finally:
        stop_workers(repo, env)
    print(f"queue: 3 experiments in {queue_seconds:.0f} s")
    return repo, uri, experiments(repo, env), states


def test_every_queued_experiment_finished(queued):
    _, _, shown, states = queued
    assert states == dict.fromkeys(EXPERIMENTS, "success"), states
    assert all(f"serial-{name}" in shown for name in EXPERIMENTS)


def test_each_queued_experiment_equals_a_serial_run_byte_for_byte(queued):
    repo, _, shown, _ = queued
    for name in EXPERIMENTS:
        queued_rev, serial_rev = shown[name]["revs"][0]["rev"], shown[f"serial-{name}"]["revs"][0]["rev"]
        queued_metrics = git(repo, "show", f"{queued_rev}:reports/metrics.json")
        assert queued_metrics == git(repo, "show", f"{serial_rev}:reports/metrics.json"), name
        # Every file the experiment commits: dvc.lock (so every output's md5), the reports, the figures.
        assert git(repo, "diff", "--name-only", queued_rev, serial_rev) == "", name
        assert queued_metrics != git(repo, "show", "HEAD:reports/metrics.json"), f"{name} changed nothing"


def test_the_store_holds_each_experiments_runs_once(queued):
    repo, uri, shown, _ = queued
    client = mlflow.MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("stockcast").experiment_id], max_results=1000)
    assert {run.info.status for run in runs} == {"FINISHED"}
    parents = Counter(run.info.run_name for run in runs if "mlflow.parentRunId" not in run.data.tags)
    assert parents == Counter(["baseline", *EXPERIMENTS, *(f"serial-{name}" for name in EXPERIMENTS)])

    # A model's outputs are logged once: unchanged outputs are linked, never logged again.
    model_runs = [run for run in runs if run.data.tags.get("model")]
    per_output = Counter((run.data.tags["model"], run.data.tags["output_md5"]) for run in model_runs)
    assert set(per_output.values()) == {1}, per_output
    # baseline; sklearn; arima; every model after the split change
    assert len(model_runs) == len(MODELS) + 1 + 1 + len(MODELS)

    by_id = {run.info.run_id: run for run in runs}
    for name in EXPERIMENTS:
        rev = shown[name]["revs"][0]["rev"]
        for prefix in ("", "serial-"):
            (parent,) = [run for run in runs if run.info.run_name == prefix + name]
            children = [run for run in runs if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
            assert sum(run.info.run_name == "comparison" for run in children) == 1
            for model in MODELS:  # the run linked for each model is the one of this experiment's outputs
                linked = by_id[parent.data.tags[f"run.{model}"]]
                stage = {"drift": "naive", "lstm": "lstm@lstm"}.get(model, model)  # dvc.lock's stage names
                expected = lock_md5(repo, rev, stage, f"data/predictions/{model}.parquet")
                assert linked.data.tags["model"] == model and linked.data.tags["output_md5"] == expected
            if prefix:
                assert not [run for run in children if run.data.tags.get("model")], "a serial run logged a model again"
