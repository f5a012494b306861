"""The hostile input catalogue: what users throw at the pipeline, one case per row.

Every failing case runs the real stage(s), each in its own process, in a copy of the repo that
already holds good outputs from a tiny valid config, breaks one thing (the CSV, params.yaml or
the environment), and checks the contract of `pipeline.cli`: exit status 2, exactly one line on
stderr naming the file or key and the problem, no traceback, and every output the failing stage
(and anything after it) would write left byte-identical, with no file created anywhere else.
Processes are forked from a warm interpreter (`conftest.WarmRunner`: the same `python -m` run
without seconds of imports each); the confined cases start a fresh one. The README's catalogue
table lists the same rows.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT, WarmRunner, copy_repo, sample_csv, stage_env

from pipeline.cli import UserError
from pipeline.ingest import validate_ticker

CSV = "input/acme.csv"  # the series id is the file stem: ACME
# Tiny but valid: 200 rows -> 194 windows of 5 lags; 2 folds of 10 test days need 40 days.
GOOD_PARAMS = {
    "data": {"source": "csv", "path": CSV},
    "features": {"n_lags": 5},
    "forecast": {"horizons": [1, 5]},  # the default 20 days need a longer test part
    "split": {"n_windows": 2, "test_size": 10},
    "parallel": {"n_jobs": 1},
    "diagnostics": {"seasonal_period": 20},
}
# The good outputs: the first stages, the naive models (models/naive, models/drift) and their
# reports, which `forecast` and `track` read.
CHAIN = (("ingest",), ("features",), ("split",), ("train", "naive"), ("diagnostics",), ("evaluate",))
OUTPUTS = ("data/", "models/", "reports/")  # where the stages write
NO_TRACKING = {"STOCKCAST_TRACKING": "off"}  # outputs are the same bytes with tracking on; it only costs time


def edit(row: int, column: str, value: str, text: str | None = None) -> str:
    """The good CSV with one cell replaced (`row` counts data rows from 1, as the errors do)."""
    lines = (text or sample_csv()).splitlines()
    header = lines[0].split(",")
    cells = lines[row].split(",")
    cells[header.index(column)] = value
    lines[row] = ",".join(cells)
    return "\n".join(lines) + "\n"


def drop_column(column: str) -> str:
    rows = [line.split(",") for line in sample_csv().splitlines()]
    i = rows[0].index(column)
    return "\n".join(",".join(r[:i] + r[i + 1 :]) for r in rows) + "\n"


def only_columns(*columns: str) -> str:
    rows = [line.split(",") for line in sample_csv().splitlines()]
    keep = [rows[0].index(c) for c in columns]
    return "\n".join(",".join(r[i] for i in keep) for r in rows) + "\n"


def long_file(ticker: str) -> str:
    """A long file (ticker column) holding one series under `ticker`."""
    rows = sample_csv().splitlines()
    return "\n".join([f"Ticker,{rows[0]}", *(f"{ticker},{r}" for r in rows[1:])]) + "\n"


def set_column(column: str, value: str) -> str:
    """The good CSV with every value of `column` replaced by `value`."""
    text = sample_csv()
    for row in range(1, len(text.splitlines())):
        text = edit(row, column, value, text)
    return text


def all_target_nan() -> str:
    rows = [line.split(",") for line in sample_csv().splitlines()]
    return "Date,Adj Close\n" + "".join(f"{r[0]},NaN\n" for r in rows[1:])


def read_only_data(repo: Path) -> None:
    (repo / "data").chmod(0o555)


def delete_prices(repo: Path) -> None:
    (repo / "data/prices.parquet").unlink()


def garble_prices(repo: Path) -> None:
    (repo / "data/prices.parquet").write_bytes(b"PAR1 this is not parquet")


def truncate_folds(repo: Path) -> None:
    path = repo / "data/folds.json"
    path.write_text(path.read_text()[:40])


def truncate_windows(repo: Path) -> None:
    path = repo / "data/windows.parquet"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def edit_folds(change: Callable[[list[dict]], None]) -> Callable[[Path], None]:
    """A setup that hand-edits data/folds.json: `change` gets series ACME's folds; valid JSON stays."""

    def setup(repo: Path) -> None:
        path = repo / "data/folds.json"
        folds = json.loads(path.read_text())
        change(folds["ACME"])
        path.write_text(json.dumps(folds, indent=2) + "\n")

    return setup


def delete_model_state(repo: Path) -> None:
    # The champion of the prepared reports (naive or drift; no other model ran): delete both.
    for name in ("naive", "drift"):
        (repo / f"models/{name}/ACME/state.json").unlink()


def garble_manifest(repo: Path) -> None:
    path = repo / "models/naive/model.json"
    path.write_text(path.read_text()[:50])


@dataclass(frozen=True)
class Case:
    id: str
    expect: tuple[str, ...]  # substrings of the one error line: the file or key, and the problem
    csv: str | bytes | None = None  # replaces the input file
    params: dict = field(default_factory=dict)  # merged over GOOD_PARAMS, section by section
    setup: Callable[[Path], None] | None = None  # breaks the environment
    stages: tuple[tuple[str, ...], ...] = (("ingest",),)  # all but the last must succeed
    env: dict = field(default_factory=dict)  # environment variables of the failing stage
    confine: str | None = None  # run the failing stage in a fresh, confined interpreter (see run_stage)


CASES = [
    # CSV content
    Case("empty-file", (CSV, "file is empty"), csv=""),
    Case("header-only", (CSV, "no data rows"), csv=sample_csv().splitlines()[0] + "\n"),
    Case("missing-date-column", (CSV, "missing date column"), csv=drop_column("Date")),
    Case("missing-price-column", (CSV, "missing price column"), csv=only_columns("Date", "Volume")),
    Case("unparseable-date", (CSV, "column 'ds'", "'2020-13-45' on row 7"), csv=edit(7, "Date", "2020-13-45")),
    Case(
        "mixed-date-formats",
        (CSV, "column 'ds'", "inconsistent date '01/13/2020' on row 9"),
        csv=edit(9, "Date", "01/13/2020"),
    ),
    Case(
        "non-numeric-price",
        (CSV, "column 'close'", "non-numeric value 'n/a!' on row 12"),
        csv=edit(12, "Close", "n/a!"),
    ),
    Case("negative-price", (CSV, "column 'adj_close'", "must be positive", "-3.5"), csv=edit(20, "Adj Close", "-3.5")),
    Case("huge-price", (CSV, "column 'close'", "below 1e+12", "1e+300"), csv=edit(30, "Close", "1e300")),
    Case("all-target-nan", (CSV, "column 'adj_close'", "no values"), csv=all_target_nan()),
    Case("duplicate-dates", (CSV, "duplicate date 2020-01-07 for series ACME"), csv=edit(6, "Date", "2020-01-07")),
    Case("single-row", (CSV, "series ACME has fewer than 2 rows"), csv="\n".join(sample_csv().splitlines()[:2]) + "\n"),
    Case(
        "too-few-rows-for-windows",
        ("features.n_lags", "series ACME has 5"),
        csv="\n".join(sample_csv().splitlines()[:6]) + "\n",
        stages=(("ingest",), ("features",)),
    ),
    Case(
        "too-few-rows-for-folds",
        ("split.test_size", "need 40 days", "has 30", "series ACME"),
        csv="\n".join(sample_csv().splitlines()[:31]) + "\n",
        stages=(("ingest",), ("features",), ("split",)),
    ),
    Case(
        "non-utf8-bytes",
        (CSV, "not UTF-8 text (byte 0xe9 on line 5)"),
        csv=edit(4, "Volume", "caf\udce9").encode("utf-8", "surrogateescape"),
    ),
    Case("ragged-row", (CSV, "malformed CSV"), csv=edit(8, "Volume", "1,2,3")),
    Case("ticker-with-slash", (CSV, "invalid ticker 'A/B'"), csv=long_file("A/B")),
    Case("ticker-with-dotdot", (CSV, "invalid ticker '../../etc'"), csv=long_file("../../etc")),
    # params
    Case(
        "unknown-key",
        ("params.yaml", "split.n_fold", "unknown key"),
        params={"split": {"n_fold": 3}},
        stages=(("split",),),
    ),
    Case(
        "wrong-type",
        ("params.yaml", "features.n_lags", "expected an integer", "'five'"),
        params={"features": {"n_lags": "five"}},
        stages=(("features",),),
    ),
    Case(
        "n-lags-zero",
        ("params.yaml", "features.n_lags", "must be >= 1, got 0"),
        params={"features": {"n_lags": 0}},
        stages=(("features",),),
    ),
    Case(
        "negative-folds",
        ("params.yaml", "split.n_windows", "must be >= 2, got -2"),
        params={"split": {"n_windows": -2}},
        stages=(("split",),),
    ),
    Case(
        "test-size-too-large",
        ("split.test_size", "2 folds x 100 test days", "the series has 200"),
        params={"split": {"test_size": 100}},
        stages=(("split",),),
    ),
    Case(
        "horizon-longer-than-the-test-part",
        ("params.yaml", "forecast.horizons", "20 must be shorter than split.test_size (10)"),
        params={"forecast": {"horizons": [1, 20]}},
        stages=(("train", "naive"),),
    ),
    Case(
        "too-short-to-calibrate",
        ("intervals.method", "first fold has 20 train days", "hold out 90 calibration days", "intervals.method: none"),
        params={"split": {"test_size": 90}},
        stages=(("split",), ("train", "naive")),
    ),
    Case(
        "levels-out-of-range",
        ("params.yaml", "forecast.levels", "between 0 and 100 (percent)"),
        params={"forecast": {"levels": [80, 100]}},
        stages=(("train", "naive"),),
    ),
    Case(
        "unknown-estimator",
        ("params.yaml", "sklearn.estimator", "expected one of ridge"),
        params={"sklearn": {"estimator": "xgboost"}},
        stages=(("train", "sklearn"),),
    ),
    Case(
        "unknown-cell",
        ("params.yaml", "lstm.cells", "expected a list of lstm"),
        params={"lstm": {"cells": ["transformer"]}},
        stages=(("train", "lstm"),),
    ),
    Case(
        "bad-arima-order",
        ("params.yaml", "arima.order", "three non-negative integers"),
        params={"arima": {"order": [1, 1]}},
        stages=(("train", "arima"),),
    ),
    Case(
        "ticker-in-params",
        ("data.tickers", "invalid ticker '../../x'"),
        params={"data": {"source": "yfinance", "tickers": ["../../x"]}},
    ),
    Case(
        "lstm-units-empty",
        ("params.yaml", "lstm.units", "at least one layer"),
        params={"lstm": {"units": []}},
        stages=(("train", "lstm"),),
    ),
    # covariates the data cannot give (features.covariates)
    Case(
        "volume-without-a-column",
        ("features.covariates", "volume needs the volume column", "data/prices.parquet"),
        csv=drop_column("Volume"),
        params={"features": {"covariates": ["volume"]}},
        stages=(("ingest",), ("features",)),
    ),
    Case(
        "covariate-series-not-in-the-prices",
        ("features.covariates", "'NASDAQ' is neither a covariate nor a series of data/prices.parquet"),
        params={"features": {"covariates": ["NASDAQ"]}},
        stages=(("features",),),
    ),
    Case(
        "volume-all-zero",
        ("features.covariates", "volume: series ACME has no value of it"),
        csv=set_column("Volume", "0"),
        params={"features": {"covariates": ["volume", "range"]}},
        stages=(("ingest",), ("features",)),
    ),
    Case(
        "volume-all-missing",
        ("features.covariates", "volume: series ACME has no value of it"),
        csv=set_column("Volume", ""),
        params={"features": {"covariates": ["volume"]}},
        stages=(("ingest",), ("features",)),
    ),
    Case(
        "negative-volume",
        ("features.covariates", "series ACME has a negative volume on 2020-01-14"),
        csv=edit(10, "Volume", "-5"),
        params={"features": {"covariates": ["volume"]}},
        stages=(("ingest",), ("features",)),
    ),
    Case(
        "recursive-with-covariates",
        ("params.yaml", "sklearn.strategy", "recursive cannot read features.covariates ['volume']"),
        params={"features": {"covariates": ["volume"]}, "sklearn": {"strategy": "recursive"}},
        stages=(("train", "sklearn"),),
    ),
    Case(
        "exog-without-covariates",
        ("params.yaml", "arima.exog", "needs at least one covariate"),
        params={"arima": {"exog": True}},
        stages=(("train", "arima"),),
    ),
    # environment
    Case("missing-input-file", ("input/nope.csv", "file not found"), params={"data": {"path": "input/nope.csv"}}),
    Case(
        "missing-upstream-output",
        ("data/prices.parquet", "file not found", "dvc repro"),
        setup=delete_prices,
        stages=(("features",),),
    ),
    Case(
        "corrupt-upstream-output",
        (
            "data/prices.parquet",
            "not a readable Parquet file",
            "restore it with `dvc checkout --force data/prices.parquet` or rebuild it with `dvc repro ingest`",
        ),
        setup=garble_prices,
        stages=(("features",),),
    ),
    Case(
        "truncated-folds",
        ("data/folds.json", "not valid JSON", "`dvc checkout --force data/folds.json`", "`dvc repro split`"),
        setup=truncate_folds,
        stages=(("train", "naive"),),
    ),
    # corrupted workspace files: each line names the file and the command that repairs it
    Case(
        "truncated-windows",
        ("data/windows.parquet", "not a readable Parquet file", "`dvc checkout --force data/windows.parquet`"),
        setup=truncate_windows,
        stages=(("train", "sklearn"),),
    ),
    Case(
        "folds-missing-key",
        ("data/folds.json", "ACME fold 1", "missing key 'train_end'", "`dvc repro split`"),
        setup=edit_folds(lambda folds: folds[1].pop("train_end")),
        stages=(("train", "naive"),),
    ),
    Case(
        "folds-weekend-date",
        ("data/folds.json", "ACME fold 0", "key 'test_start'", "2020-01-04 is not a trading day of ACME", "checkout"),
        setup=edit_folds(lambda folds: folds[0].update(test_start="2020-01-04")),  # a Saturday
        stages=(("train", "naive"),),
    ),
    Case(
        "folds-out-of-order",
        ("data/folds.json", "ACME fold 0", "dates out of order", "`dvc repro split`"),
        setup=edit_folds(lambda folds: folds[0].update(train_end=folds[0]["test_end"])),
        stages=(("train", "naive"),),
    ),
    Case(
        "model-file-missing",
        ("/ACME/state.json: file not found", "`dvc checkout --force models/", "`dvc repro naive`"),
        setup=delete_model_state,
        stages=(("forecast",),),
    ),
    Case(
        "model-manifest-corrupt",
        ("models/naive/model.json", "not valid JSON", "`dvc checkout --force models/naive`", "`dvc repro naive`"),
        setup=garble_manifest,
        stages=(("track",),),
    ),
    Case(
        "mlflow-server-down",
        ("MLFLOW_TRACKING_URI", "cannot reach", "127.0.0.1:9"),
        env={"STOCKCAST_TRACKING": "on", "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"},
        stages=(("track",),),
    ),
    Case(
        "read-only-output-dir",
        ("data/prices.parquet", "cannot write", "Permission denied"),
        setup=read_only_data,
        confine="read-only",
    ),
    Case(
        "disk-full",
        ("data/windows.parquet", "cannot write", "File too large"),
        stages=(("features",),),
        confine="disk-full",
    ),
]


def stage_outputs(repo: Path) -> dict[str, list[str]]:
    """Each stage's declared outputs, from the copy's dvc.yaml."""
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    return {name: [str(out) for out in stage.get("outs", [])] for name, stage in stages.items()}


def stage_name(stage: tuple[str, ...]) -> str:
    return stage[1] if stage[0] == "train" else stage[0]


def tree(repo: Path) -> dict[str, bytes | None]:
    """Every file in the copy: bytes under data/, models/ and reports/, presence elsewhere."""
    files = {}
    for path in sorted(repo.rglob("*")):
        rel = path.relative_to(repo).as_posix()
        if path.is_file() and "__pycache__" not in path.parts:
            files[rel] = path.read_bytes() if rel.startswith(OUTPUTS) else None
    return files


def write_params(repo: Path, overrides: dict) -> None:
    params = {section: dict(keys) for section, keys in GOOD_PARAMS.items()}
    for section, keys in overrides.items():
        params.setdefault(section, {}).update(keys)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def limit_file_size() -> None:
    """In the child before exec: files may grow to 4 KiB, then writes fail as on a full disk."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an error from write(), not a kill


def run_stage(
    repo: Path, stage: tuple[str, ...], runner: WarmRunner, env: dict | None = None, confine: str | None = None
) -> subprocess.CompletedProcess:
    """`python -m pipeline.<stage>` in `repo`: forked from `runner`, or, `confine`d
    (`read-only`: no write access to read-only directories, even for root; `disk-full`), in a
    fresh interpreter."""
    module = f"pipeline.{stage[0]}"
    if confine is None:
        return runner(module, *stage[1:], env=env)
    argv = [sys.executable, "-m", module, *stage[1:]]
    if confine == "read-only" and os.geteuid() == 0:
        # root writes into read-only directories; drop that capability so the test means something
        argv = [
            shutil.which("setpriv") or pytest.skip("running as root without setpriv"),
            "--bounding-set=-dac_override,-dac_read_search",
            "--",
            *argv,
        ]
    preexec = limit_file_size if confine == "disk-full" else None
    return subprocess.run(
        argv,
        cwd=repo,
        env=stage_env({**NO_TRACKING, **(env or {})}),
        capture_output=True,
        text=True,
        preexec_fn=preexec,
        timeout=300,
    )


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A copy of the repo with good outputs from the tiny config, and a warm runner in it."""
    repo = copy_repo(tmp_path_factory.mktemp("hostile"))
    (repo / CSV).parent.mkdir(parents=True, exist_ok=True)
    (repo / CSV).write_text(sample_csv())
    write_params(repo, {})
    with WarmRunner(repo, env=NO_TRACKING) as runner:
        for stage in CHAIN:
            result = run_stage(repo, stage, runner)
            assert result.returncode == 0, result.stderr
        yield repo, runner


@pytest.fixture
def workspace(prepared):
    """The prepared copy and its runner; whatever a test changes is put back afterwards."""
    prepared, runner = prepared
    snapshot = {rel: data for rel, data in tree(prepared).items() if rel.startswith(OUTPUTS)}
    yield prepared, runner
    (prepared / "data").chmod(0o755)
    for directory in OUTPUTS:
        shutil.rmtree(prepared / directory)
    for rel, data in snapshot.items():
        (prepared / rel).parent.mkdir(parents=True, exist_ok=True)
        (prepared / rel).write_bytes(data)
    (prepared / CSV).write_text(sample_csv())
    write_params(prepared, {})


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_hostile_input_fails_cleanly(workspace, case: Case):
    repo, runner = workspace
    write_params(repo, case.params)
    if case.csv is not None:
        (repo / CSV).write_bytes(case.csv if isinstance(case.csv, bytes) else case.csv.encode())
    if case.setup:
        case.setup(repo)
    before = tree(repo)

    *first, last = case.stages
    for stage in first:
        result = run_stage(repo, stage, runner)
        assert result.returncode == 0, f"{stage} should succeed before the failing stage: {result.stderr}"
    result = run_stage(repo, last, runner, env=case.env, confine=case.confine)

    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    for part in case.expect:
        assert part in lines[0], f"{part!r} not in {lines[0]!r}"
    # Only the stages that succeeded may have changed files, and only their declared outputs.
    outputs = stage_outputs(repo)
    rewritten = {out for stage in first for out in outputs[stage_name(stage)]}
    after = tree(repo)
    assert {k: v for k, v in after.items() if k not in rewritten} == {
        k: v for k, v in before.items() if k not in rewritten
    }


def test_nan_runs_are_dropped_with_a_logged_count(workspace):
    workspace, runner = workspace
    text = sample_csv()
    for row in range(40, 46):  # a run of six missing target prices
        text = edit(row, "Adj Close", "", text)
    text = edit(60, "Adj Close", "NaN", text)
    (workspace / CSV).write_text(text)
    result = run_stage(workspace, ("ingest",), runner)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [f"ingest: {CSV}: dropped 7 rows with no adj_close"]
    prices = pd.read_parquet(workspace / "data/prices.parquet")
    assert len(prices) == 193 and prices.adj_close.notna().all()


def test_unsorted_rows_are_sorted(workspace):
    workspace, runner = workspace
    header, *rows = sample_csv().splitlines()
    shuffled = [rows[i] for i in np.random.default_rng(1).permutation(len(rows))]
    expected = (workspace / "data/prices.parquet").read_bytes()
    (workspace / CSV).write_text("\n".join([header, *shuffled]) + "\n")
    result = run_stage(workspace, ("ingest",), runner)
    assert result.returncode == 0, result.stderr
    assert (workspace / "data/prices.parquet").read_bytes() == expected  # same bytes as sorted input


# Security basics ------------------------------------------------------------------------------

# Loading a file with these runs code from it; a server on 0.0.0.0 is reachable from elsewhere.
UNSAFE_LOADS = re.compile(
    r"pickle\.loads?\(|joblib\.load\(|yaml\.load\(|yaml\.unsafe_load|read_pickle\(|allow_pickle\s*=\s*True"
    r"|safe_mode\s*=\s*False|torch\.load\(|\beval\(|\bexec\("
)
OPEN_BIND = re.compile(r"0\.0\.0\.0|host\s*=\s*['\"]['\"]")


def offending_lines(pattern: re.Pattern, folders: tuple[str, ...]) -> list[str]:
    found = []
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.resolve() == Path(__file__).resolve():
                continue
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                if pattern.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    return found


def test_no_unsafe_deserialisation_in_the_pipeline():
    """No pickle/joblib loads of files, YAML through safe_load only, Keras models in safe mode."""
    assert offending_lines(UNSAFE_LOADS, ("pipeline", "benchmarks")) == []


def test_servers_bind_localhost_only():
    assert offending_lines(OPEN_BIND, ("pipeline", "tests", "benchmarks")) == []


@pytest.mark.parametrize(
    "ticker",
    [
        "BRK.B",
        "^GSPC",
        "EURUSD=X",
        "RDS-A",
        "..",
        "../x",
        "a/b",
        "/etc",
        "a\\b",
        "~root",
        "$HOME",
        "a\x00b",
        ".",
        ".git",
        "x" * 40,
        "A..B",
        "C:",
        "a b",
    ],
)
def test_a_ticker_never_leaves_its_directory(tmp_path: Path, ticker: str):
    """A ticker (a file name part in reports/plots) is rejected or names a file directly inside."""
    try:
        validate_ticker(ticker, "t")
    except UserError:
        return
    inside = tmp_path / "reports" / "plots"
    assert (inside / f"{ticker}.png").resolve().parent == inside.resolve()


def test_output_paths_stay_under_data_models_and_reports():
    from pipeline import paths

    outputs = [p for name, p in vars(paths).items() if isinstance(p, Path) and name != "PARAMS"]
    outputs.append(paths.predictions("naive"))
    for path in outputs:
        assert not path.is_absolute() and ".." not in path.parts and path.parts[0] in ("data", "models", "reports"), (
            path
        )
