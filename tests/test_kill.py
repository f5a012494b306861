"""Kill safety: a stage SIGKILLed mid-write loses nothing, and `dvc repro` recovers byte for byte.

Each kill is placed exactly: a small harness wraps `pipeline.io.atomic_path` (the only way the
stages write) so that the stage kills itself with SIGKILL at one point of one output's write:
`empty-temp` (temp file created, nothing written), `full-temp` (temp file written, not yet
renamed) or `renamed` (this output in place, later ones not). Nothing else is changed.

A killed write leaves its temp file (`.<name>.<random>.tmp`) beside the output; `.dvcignore`
and `.gitignore` ignore that pattern, so neither DVC's hashes (of the `data/predictions`
directory evaluate reads, of the `reports/plots` directory it writes) nor `git status` see it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from conftest import WarmRunner, copy_repo, git_init, run_in, sample_csv

PARAMS = {
    "data": {"source": "csv", "path": "input/acme.csv"},
    "features": {"n_lags": 5},
    "split": {"n_windows": 2, "test_size": 10},
    "parallel": {"n_jobs": 1},  # tasks in the stage's own process, where the harness kills
    "lstm": {"units": [2], "epochs": 2},
    "diagnostics": {"seasonal_period": 20},
}
ENV = {"STOCKCAST_TRACKING": "off"}  # tracking writes nothing DVC tracks; it only costs time here

HARNESS = '''"""python -m kill_harness TARGET POINT MODULE [ARGS...]: run MODULE, SIGKILL it at POINT of TARGET.

TARGET is an output path (POINT: empty-temp, full-temp or renamed, of its atomic write) or a
function `module:name` (POINT: N, its N-th call, killed as the call starts).
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

    @functools.wraps(original)
    def counting(*args, **kwargs):
        calls[0] += 1
        if calls[0] == int(point):
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
    (("pipeline.features",), "data/windows.parquet", "full-temp"),
    (("pipeline.split",), "data/folds.json", "full-temp"),
    (("pipeline.train", "naive"), "data/predictions/naive.parquet", "full-temp"),
    (("pipeline.train", "naive"), "data/predictions/naive.parquet", "renamed"),  # between its two outputs
    (("pipeline.train", "naive"), "pipeline.models.base:write_state", "1"),  # inside models/naive's temp directory
    (("pipeline.train", "naive"), "pipeline.models.store:write", "2"),  # models/naive in place, models/drift not
    (("pipeline.train", "arima"), "pipeline.walkforward:forecast_fold", "2"),  # mid walk-forward
    (("pipeline.train", "sklearn"), "pipeline.walkforward:forecast_fold", "2"),
    (("pipeline.train", "lstm"), "pipeline.walkforward:forecast_fold", "2"),
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
def pipeline(tmp_path_factory):
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
        # killed mid walk-forward: nothing of the stage's is written; it and what follows rerun
        (("pipeline.train", "arima"), "pipeline.walkforward:forecast_fold", "2", ["data/predictions/arima.parquet"]),
        # killed while logging: no receipt, so track alone reruns
        (("pipeline.track",), "pipeline.tracking.flavours:log_forecaster", "2", ["data/tracked.json"]),
    ],
    ids=["ingest", "naive", "arima", "track"],
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
