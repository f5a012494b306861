"""Kill safety: a stage SIGKILLed mid-write loses nothing, and `dvc repro` recovers byte for byte.

Each kill is placed exactly: a small harness wraps `pipeline.io.atomic_path` (the only way the
stages write) so that the stage kills itself with SIGKILL at one point of one output's write:
`empty-temp` (temp file created, nothing written), `full-temp` (temp file written, not yet
renamed) or `renamed` (this output in place, later ones not). Nothing else is changed.

A killed write leaves its temp file (`.<name>.<random>.tmp`) beside the output; `.dvcignore`
and `.gitignore` ignore that pattern, so neither DVC's hashes (of the `data/predictions`
directory evaluate reads, of the `reports/plots` directory it writes) nor `git status` see it.

`track` killed mid-logging, and a real `mlflow server` killed while `track` logs to it: the next
`track` marks the killed runs FAILED, and each model's outputs end in exactly one FINISHED run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import time
from collections import defaultdict
from contextlib import closing
from pathlib import Path

import pytest
import yaml
from conftest import WarmRunner, copy_repo, free_port, git_init, run_in, sample_csv, start_server, wait_healthy

PARAMS = {
    "data": {"source": "csv", "path": "input/acme.csv"},
    "features": {"n_lags": 5},
    "forecast": {"horizons": [1, 5]},  # the default 20 days need a longer test part
    "split": {"n_windows": 2, "test_size": 10},
    "parallel": {"n_jobs": 1},  # tasks in the stage's own process, where the harness kills
    "lstm": {"units": [2], "epochs": 2},
    "rnn_scratch": {"hidden": 2, "epochs": 2},
    "diagnostics": {"seasonal_period": 20},
}
ENV = {"STOCKCAST_TRACKING": "off"}  # tracking writes nothing DVC tracks; it only costs time here

HARNESS = '''"""python -m kill_harness TARGET POINT MODULE [ARGS...]: run MODULE, SIGKILL it at POINT of TARGET.

TARGET is an output path (POINT: empty-temp, full-temp or renamed, of its atomic write) or a
function `module:name` (POINT: N, its N-th call, killed as the call starts). With
KILL_HARNESS_GROUP set, the N-th call kills that process group (a server) and goes on.
"""
import contextlib, functools, importlib, os, runpy, signal, sys

from pipeline import io

target, point, module = sys.argv[1:4]
atomic_path = io.atomic_path


def die(path, here):
    if str(path) == target and point == here:
        os.kill(os.getpid(), signal.SIGKILL)


@contextlib.contextmanager
def killing_atomic_path(path):
    with atomic_path(path) as tmp:
        die(path, "empty-temp")
        yield tmp
        die(path, "full-temp")
    die(path, "renamed")


io.atomic_path = killing_atomic_path
if ":" in target:
    owner, name = target.split(":")
    owner = importlib.import_module(owner)
    original, calls = getattr(owner, name), [0]
    group = os.environ.get("KILL_HARNESS_GROUP")

    @functools.wraps(original)
    def counting(*args, **kwargs):
        calls[0] += 1
        if calls[0] == int(point):
            if group:
                os.killpg(int(group), signal.SIGKILL)
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kwargs)

    setattr(owner, name, counting)
sys.argv = [module, *sys.argv[4:]]
runpy.run_module(module, run_name="__main__", alter_sys=True)
'''

# (stage command, output whose write is interrupted, point)
KILLS = [
    (("pipeline.ingest",), "data/prices.parquet", "empty-temp"),
    (("pipeline.ingest",), "data/prices.parquet", "full-temp"),
    (("pipeline.diagnostics",), "reports/diagnostics/decomposition_ACME.png", "full-temp"),  # inside its figure
    (("pipeline.diagnostics",), "reports/diagnostics/diagnostics.json", "empty-temp"),  # the figure in place
    (("pipeline.features",), "data/windows.parquet", "full-temp"),
    (("pipeline.split",), "data/folds.json", "full-temp"),
    (("pipeline.train", "naive"), "data/predictions/naive.parquet", "full-temp"),
    (("pipeline.train", "naive"), "data/predictions/naive.parquet", "renamed"),  # between its two outputs
    (("pipeline.train", "naive"), "pipeline.models.base:write_state", "1"),  # inside models/naive's temp directory
    (("pipeline.train", "naive"), "pipeline.models.store:write", "2"),  # models/naive in place, models/drift not
    (("pipeline.train", "arima"), "pipeline.walkforward:forecast_fold", "2"),  # mid walk-forward
    (("pipeline.train", "sklearn"), "pipeline.walkforward:forecast_fold", "2"),
    (("pipeline.train", "lstm", "lstm"), "pipeline.walkforward:forecast_fold", "2"),  # the stage lstm@lstm
    (("pipeline.train", "rnn_scratch"), "pipeline.walkforward:forecast_fold", "2"),
    (("pipeline.track",), "pipeline.tracking.flavours:log_forecaster", "2"),  # mid logging, tracking on
    (("pipeline.evaluate",), "reports/plots/images/rmse_by_fold.png", "full-temp"),  # inside a directory output
    (("pipeline.evaluate",), "reports/metrics.json", "empty-temp"),
]


def lock_outputs(repo: Path) -> list[str]:
    """Every output path `dvc.lock` records."""
    stages = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    return sorted(out["path"] for stage in stages.values() for out in stage.get("outs", []))


def snapshot(repo: Path, outputs: list[str]) -> dict[str, bytes]:
    """`dvc.lock` and every file of `outputs` that exists, temp files of atomic writes left out."""
    files = {"dvc.lock": (repo / "dvc.lock").read_bytes()}
    for out in outputs:
        path = repo / out
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if file.is_file() and not is_temp(file):
                files[file.relative_to(repo).as_posix()] = file.read_bytes()
    return files


def is_temp(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith(".tmp")


def temps(repo: Path) -> list[str]:
    return sorted(p.relative_to(repo).as_posix() for p in repo.rglob(".*.tmp") if ".dvc" not in p.parts)


def dvc(repo: Path, *args: str):
    result = run_in(repo, "dvc", *args, env=ENV, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real `mlflow server`, started with the module: it comes up while the pipeline runs.

    Yields its directory, port and processes (a list: a test kills it and starts another).
    """
    root, port = tmp_path_factory.mktemp("server"), free_port()
    processes = [start_server(root, port)]
    yield root, port, processes
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, server):
    """A git + DVC copy of the repo on a tiny config, after one uninterrupted `dvc repro`.

    Yields the copy, a warm runner in it and the reference snapshot of that run.
    """
    repo = copy_repo(tmp_path_factory.mktemp("kill"))
    (repo / "dvc.lock").unlink(missing_ok=True)
    params = yaml.safe_load((repo / "params.yaml").read_text())  # DVC wants every key a stage lists
    for section, keys in PARAMS.items():
        params[section].update(keys)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (repo / "input").mkdir()
    (repo / "input/acme.csv").write_text(sample_csv())
    (repo / "kill_harness.py").write_text(HARNESS)
    git_init(repo)
    dvc(repo, "repro")
    with WarmRunner(
        repo,
        env=ENV,
        preload=(
            "numpy",
            "pandas",
            "pyarrow.parquet",
            "yaml",
            "joblib",
            "sklearn.model_selection",
            "mlflow",
            "matplotlib.figure",
            "statsmodels.tsa.seasonal",
        ),
    ) as runner:
        yield repo, runner, snapshot(repo, lock_outputs(repo))


TRACKING_ON = {"STOCKCAST_TRACKING": "on"}  # the track stage's kills log to the copy's local store


def kill(runner: WarmRunner, stage: tuple[str, ...], output: str, point: str) -> None:
    env = TRACKING_ON if stage == ("pipeline.track",) else None
    result = runner("kill_harness", output, point, *stage, env=env)
    assert result.returncode == -9, (
        f"{stage} was not killed at {point} of {output}: {result.returncode} {result.stderr}"
    )


def test_a_kill_while_rewriting_keeps_every_output_and_dvc_sees_no_change(pipeline):
    repo, runner, reference = pipeline
    for stage, output, point in KILLS:
        kill(runner, stage, output, point)
        assert snapshot(repo, lock_outputs(repo)) == reference, f"outputs changed by a kill at {point} of {output}"
        if point in ("empty-temp", "full-temp"):
            assert any(
                Path(t).parent == Path(output).parent and Path(t).name.startswith(f".{Path(output).name}.")
                for t in temps(repo)
            )
    left = temps(repo)
    assert any(t.startswith("data/predictions/") for t in left) and any(t.startswith("reports/plots/") for t in left), (
        left
    )
    # The leftovers sit in a directory evaluate reads and one it writes; DVC and git ignore them.
    assert dvc(repo, "status", "--json").stdout.strip() == "{}"
    assert [line for line in run_in(repo, "git", "status", "--porcelain").stdout.splitlines() if ".tmp" in line] == []
    assert any(t.startswith("models/") for t in left), left  # a killed model directory's temp directory
    for path in left:  # the next scenario starts clean
        shutil.rmtree(repo / path) if (repo / path).is_dir() else (repo / path).unlink()


@pytest.mark.parametrize(
    ("stage", "output", "point", "removed"),
    [
        # a first run killed with its output complete but not yet in place: the whole chain reruns
        (("pipeline.ingest",), "data/prices.parquet", "full-temp", ["data", "reports"]),
        # one output of two in place: naive and evaluate rerun
        (("pipeline.train", "naive"), "data/predictions/naive.parquet", "renamed", ["data/predictions", "reports"]),
        # the figure in place, its JSON not: diagnostics and track rerun
        (("pipeline.diagnostics",), "reports/diagnostics/diagnostics.json", "full-temp", ["reports/diagnostics"]),
        # killed mid walk-forward: nothing of the stage's is written; it and what follows rerun
        (("pipeline.train", "arima"), "pipeline.walkforward:forecast_fold", "2", ["data/predictions/arima.parquet"]),
        # killed while logging: no receipt, so track alone reruns
        (("pipeline.track",), "pipeline.tracking.flavours:log_forecaster", "2", ["data/tracked.json"]),
    ],
    ids=["ingest", "naive", "diagnostics", "arima", "track"],
)
def test_dvc_repro_after_a_killed_first_run_gives_the_same_bytes(pipeline, stage, output, point, removed):
    repo, runner, reference = pipeline
    for path in removed:
        shutil.rmtree(repo / path) if (repo / path).is_dir() else (repo / path).unlink()
    tracked = [p for p in removed if (repo / p).is_dir() or not (repo / p).suffix]
    if tracked:
        run_in(repo, "git", "checkout", "--", *tracked)  # the tracked files in them (.gitignore), as a clone has them
    kill(runner, stage, output, point)
    survivors = snapshot(repo, lock_outputs(repo))
    assert all(data == reference[name] for name, data in survivors.items()), "a half-written output"
    assert (output in survivors) == (point == "renamed")
    if ":" in output:  # killed inside a stage's work: none of its outputs was written
        assert not any(name.startswith(tuple(removed)) for name in survivors)
    if stage != ("pipeline.track",):  # the cache holds every stage output but the receipt
        shutil.rmtree(repo / ".dvc/cache")  # nothing to check out: the killed stage must run again
    log = dvc(repo, "repro").stdout
    assert f"Running stage '{stage[-1].removeprefix('pipeline.')}'" in log
    if stage == ("pipeline.track",):
        assert log.count("Running stage") == 1, log
    assert snapshot(repo, lock_outputs(repo)) == reference


# ---------------------------------------------------------------- the MLflow store after a killed `track`


def tracked_runs(db: Path) -> list[dict]:
    """The runs `track` logged in a SQLite MLflow store (those with a `pipeline_run` tag): name,
    status, tags. Read with sqlite3: MLflow's `runs` and `tags` tables, no mlflow import here."""
    with closing(sqlite3.connect(db)) as con:
        tags = defaultdict(dict)
        for run, key, value in con.execute("SELECT run_uuid, key, value FROM tags"):
            tags[run][key] = value
        rows = con.execute("SELECT run_uuid, name, status FROM runs").fetchall()
    return [
        {"name": name, "status": status, "tags": tags[run]} for run, name, status in rows if "pipeline_run" in tags[run]
    ]


def assert_each_model_logged_once(runs: list[dict], receipt: dict) -> None:
    """No run RUNNING, a FAILED one (the killed `track`'s), and each model's outputs (the
    receipt's md5s) in exactly one FINISHED model run."""
    assert {run["status"] for run in runs} == {"FINISHED", "FAILED"}, sorted((r["name"], r["status"]) for r in runs)
    for model, md5s in receipt["models"].items():
        finished = [
            run
            for run in runs
            if run["status"] == "FINISHED"
            and run["tags"].get("model") == model
            and run["tags"].get("output_md5") == md5s["predictions_md5"]
            and run["tags"].get("model_md5") == md5s["model_md5"]
        ]
        assert len(finished) == 1, (model, len(finished))


def test_the_next_track_marks_a_killed_tracks_runs_failed_and_logs_each_model_once(pipeline):
    repo, runner, reference = pipeline
    track = ("pipeline.track",)
    kill(runner, track, "pipeline.tracking.flavours:log_forecaster", "2")
    assert "RUNNING" in {run["status"] for run in tracked_runs(repo / "mlflow.db")}  # the parent, at least
    result = runner(*track, env=TRACKING_ON)
    assert result.returncode == 0, result.stderr
    assert_each_model_logged_once(tracked_runs(repo / "mlflow.db"), json.loads(reference["data/tracked.json"]))
    assert "runs that a killed track left RUNNING" in result.stdout
    (repo / "data/tracked.json").write_bytes(reference["data/tracked.json"])  # as the module's run (tracking off)


def test_a_server_killed_during_track_fails_it_in_one_line_and_dvc_repro_logs_each_model_once(pipeline, server):
    repo, runner, reference = pipeline
    root, port, processes = server
    uri = f"http://127.0.0.1:{port}"
    wait_healthy(processes[-1], uri, root / "server.log")
    (repo / "data/tracked.json").unlink()  # these outputs not yet tracked, as in a first run: DVC runs `track`
    on = {"STOCKCAST_TRACKING": "on", "MLFLOW_TRACKING_URI": uri}
    left = temps(repo)
    started = time.monotonic()
    # the server's process group is killed as the second model's pyfunc is logged
    result = runner(
        "kill_harness",
        "pipeline.tracking.flavours:log_forecaster",
        "2",
        "pipeline.track",
        env={**on, "KILL_HARNESS_GROUP": str(processes[-1].pid)},
    )
    elapsed = time.monotonic() - started
    assert processes[-1].wait(timeout=10) == -9
    expected = (
        f"error: MLFLOW_TRACKING_URI: lost the MLflow tracking server at {uri} ([Errno 111] Connection refused); "
        "run `dvc repro` once it is back"
    )
    assert (result.returncode, result.stderr.splitlines()) == (2, [expected]), result.stderr
    assert elapsed < 30, elapsed
    assert snapshot(repo, lock_outputs(repo)) == {k: v for k, v in reference.items() if k != "data/tracked.json"}
    assert temps(repo) == left  # not even a temp receipt

    processes.append(start_server(root, port))  # the same store, the same port
    wait_healthy(processes[-1], uri, root / "server.log")
    result = run_in(repo, "dvc", "repro", env=on, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("Running stage") == 1 and "Running stage 'track'" in result.stdout, result.stdout
    receipt = json.loads((repo / "data/tracked.json").read_text())
    assert receipt == {**json.loads(reference["data/tracked.json"]), "tracking": "on"}
    assert_each_model_logged_once(tracked_runs(root / "db"), receipt)
    for name in ("data/tracked.json", "dvc.lock"):  # back to the module's run (tracking off)
        (repo / name).write_bytes(reference[name])
