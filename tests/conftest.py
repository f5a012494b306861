"""Shared fixtures for tests that run stages as subprocesses in a throwaway copy of the repo.

Stages write to `data/` and `reports/` relative to the working directory, so end-to-end tests
never run in the checkout: they copy the project as a clean clone holds it (`pipeline.scratch`:
git's files minus the outputs `dvc.yaml` declares) into a temporary directory and run there.
`python -m pipeline.*` then imports the copy's `pipeline/`, because the working directory comes
first on `sys.path`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pipeline.scratch import copy_project, make_git_repo

ROOT = Path(__file__).resolve().parent.parent
# The venv's executables (dvc, python) first on PATH, whichever way pytest was started.
BIN = Path(sys.executable).parent


def copy_repo(dest: Path) -> Path:
    """Copy the project into `dest` as a clean clone holds it, without the outputs `dvc.yaml` declares."""
    return copy_project(ROOT, dest)


def stage_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment stages run with: venv first on PATH, no DVC analytics, MLflow's local
    store (no `MLFLOW_TRACKING_URI`), plus `extra` (e.g. `STOCKCAST_TRACKING=off`)."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["DVC_NO_ANALYTICS"] = "1"
    return {**env, **(extra or {})}


def run_in(
    repo: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run a command in `repo` with `stage_env(env)`; `python` means this venv's Python."""
    argv = [sys.executable if args[0] == "python" else args[0], *args[1:]]
    return subprocess.run(argv, cwd=repo, env=stage_env(env), capture_output=True, text=True, timeout=timeout)


def git_init(repo: Path) -> None:
    """Make `repo` a git repository with one commit, as DVC expects."""
    make_git_repo(repo)


# What the stages import; a warm runner pays for these once instead of once per stage run.
PRELOAD = ("numpy", "pandas", "pyarrow.parquet", "yaml", "joblib", "threadpoolctl", "sklearn.model_selection", "mlflow")

# The warm runner's loop: one request per line, each run in a forked child exactly as
# `python -m` runs a module (runpy, as __main__, with sys.argv set), exit status included.
_SERVER = r"""
import json, os, runpy, sys, traceback
for name in sys.argv[1:]:
    __import__(name)
for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        os.environ.update(request["env"])
        for fd, name, flags in (
            (0, os.devnull, os.O_RDONLY),
            (1, request["stdout"], os.O_WRONLY),
            (2, request["stderr"], os.O_WRONLY),
        ):
            os.dup2(os.open(name, flags), fd)
        sys.argv = [request["module"], *request["args"]]
        code = 0
        try:
            runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
        except SystemExit as exit:
            code = 0 if exit.code is None else exit.code
            if not isinstance(code, int):
                print(code, file=sys.stderr)
                code = 1
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    print(json.dumps(os.waitstatus_to_exitcode(status)), flush=True)
"""


class WarmRunner:
    """Runs `python -m <module> args...` in `repo`, each run in its own process, without the
    seconds of imports per run: every run is a child forked from one interpreter that has
    already imported `PRELOAD` (the stage modules themselves are imported fresh in each child).

    Calling it returns a `CompletedProcess` (returncode negative when killed by a signal).
    `env` (constructor: every run; call: that run) is added to `stage_env()`.
    """

    def __init__(self, repo: Path, env: dict[str, str] | None = None, preload: tuple[str, ...] = PRELOAD):
        self.server = subprocess.Popen(
            [sys.executable, "-c", _SERVER, *preload],
            cwd=repo,
            env=stage_env(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.scratch = Path(tempfile.mkdtemp(prefix="warm-runner-"))

    def __call__(self, module: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        out, err = self.scratch / "stdout", self.scratch / "stderr"
        out.write_bytes(b"")
        err.write_bytes(b"")
        request = {"module": module, "args": list(args), "env": env or {}, "stdout": str(out), "stderr": str(err)}
        self.server.stdin.write(json.dumps(request) + "\n")
        self.server.stdin.flush()
        reply = self.server.stdout.readline()
        if not reply:
            raise RuntimeError(f"warm runner died (exit status {self.server.wait()})")
        returncode = json.loads(reply)
        return subprocess.CompletedProcess(
            ["python", "-m", module, *args], returncode, out.read_text(), err.read_text()
        )

    def close(self) -> None:
        self.server.stdin.close()
        self.server.wait(timeout=30)
        shutil.rmtree(self.scratch, ignore_errors=True)

    def __enter__(self) -> WarmRunner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def sample_csv(n_rows: int = 200) -> str:
    """A Yahoo-style price file: `n_rows` business days from 2020-01-01 of a seeded random walk."""
    import numpy as np
    import pandas as pd

    close = 100 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.01, n_rows)))
    days = pd.bdate_range("2020-01-01", periods=n_rows).strftime("%Y-%m-%d")
    lines = ["Date,Open,High,Low,Close,Adj Close,Volume"]
    lines += [
        f"{d},{c:.4f},{c * 1.01:.4f},{c * 0.99:.4f},{c:.4f},{c:.4f},{1000 + i}"
        for i, (d, c) in enumerate(zip(days, close, strict=True))
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A fresh copy of the project (without the outputs `dvc.yaml` declares) for one test."""
    return copy_repo(tmp_path / "repo")


# ---------------------------------------------------------------- a real MLflow server on 127.0.0.1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(root: Path, port: int) -> subprocess.Popen:
    """Start a real `mlflow server` on 127.0.0.1:`port` with its SQLite store (`root/db`) and
    proxied artifacts under `root`, in a process group of its own, logging to `root/server.log`
    (appended: a restart on the same store keeps the earlier log). It answers some seconds later."""
    argv = [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{root}/db"]
    argv += ["--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--workers", "1"]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    with open(root / "server.log", "ab") as log:
        return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_healthy(process: subprocess.Popen, uri: str, log: Path, timeout: float = 120) -> None:
    """Wait until the server `process` at `uri` answers its /health."""
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


@contextmanager
def mlflow_server(root: Path) -> Iterator[tuple[subprocess.Popen, str, Path]]:
    """A real `mlflow server` on a free port (`start_server`): yields (process, URI, log), and
    on exit stops it and checks that none of its processes is left behind. It answers some
    seconds after it starts: `wait_healthy` waits for that."""
    import psutil

    port = free_port()
    process = start_server(root, port)
    try:
        yield process, f"http://127.0.0.1:{port}", root / "server.log"
    finally:
        children = psutil.Process(process.pid).children(recursive=True)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        _, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, f"server processes left behind: {alive}"
