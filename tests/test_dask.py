"""The walk-forward loop on a real Dask cluster (scheduler plus two worker processes on 127.0.0.1).

Predictions must equal the serial run's bytes, each series' arrays must reach the cluster once
(not once per task), and a scheduler that cannot be reached must be a quick, named error.
"""

from __future__ import annotations

import socket
import time

import joblib
import pytest
from dask.distributed import LocalCluster
from distributed.diagnostics.plugin import SchedulerPlugin

from pipeline import io
from pipeline.cli import UserError
from pipeline.ingest import synthetic_prices
from pipeline.models.arima import Arima
from pipeline.models.naive import Drift, Naive
from pipeline.parallel import parallel_backend
from pipeline.params import ParallelParams, SplitParams, parse_params
from pipeline.split import make_folds
from pipeline.walkforward import walk_forward

N_SERIES, N_FOLDS = 4, 3


MODELS = {"naive": Naive, "drift": Drift, "arima": lambda: Arima(order=[1, 1, 1])}  # fast models, fixed order


class KeysSeen(SchedulerPlugin):
    """Records every key the scheduler moves through a state: tasks and scattered data."""

    def __init__(self):
        self.keys: set[str] = set()

    def transition(self, key, start, finish, *args, **kwargs):
        self.keys.add(str(key))


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        scheduler_kwargs={"dashboard": False},
    ) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def data():
    prices = synthetic_prices(N_SERIES, 300, seed=3)
    folds = make_folds(prices, SplitParams(n_windows=N_FOLDS, test_size=30))
    return prices, folds


def _bytes(table, path) -> bytes:
    io.write_table(table, path)
    return path.read_bytes()


def _client():
    """The Dask client of the joblib backend in effect."""
    backend, _ = joblib.parallel.get_active_backend()
    return backend.client


@pytest.mark.parametrize("name", MODELS)
def test_cluster_predictions_are_the_serial_bytes_and_series_are_scattered_once(
    cluster, data, name, tmp_path, monkeypatch
):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    prices, folds = data
    model = MODELS[name]()
    serial, _ = walk_forward(model, prices, folds, n_jobs=1)
    seen = KeysSeen()
    cluster.scheduler.add_plugin(seen, name=f"keys-{name}")
    try:
        with parallel_backend(ParallelParams(backend="dask", scheduler_address=cluster.scheduler_address)):
            table, fitted = walk_forward(model, prices, folds, n_jobs=2)
        # The scheduler forgets the call's keys asynchronously; see all of them go.
        deadline = time.monotonic() + 10
        while cluster.scheduler.tasks and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        cluster.scheduler.remove_plugin(f"keys-{name}")
    assert _bytes(table, tmp_path / "dask.parquet") == _bytes(serial, tmp_path / "serial.parquet")
    assert len(fitted) == N_SERIES * N_FOLDS
    tasks = {k for k in seen.keys if k.startswith("batch_of__run_task")}
    scattered = {k for k in seen.keys if k.startswith("Series-")}
    assert len(tasks) >= 2, "the tasks ran on the cluster"
    assert len(scattered) == N_SERIES, "each series is sent to the cluster once, not with each of its folds"


def test_without_an_address_a_local_cluster_runs_the_tasks_and_is_closed(data, tmp_path, monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    prices, folds = data
    serial, _ = walk_forward(Drift(), prices, folds, n_jobs=1)
    with parallel_backend(ParallelParams(backend="dask", n_jobs=2)):
        client = _client()
        workers = client.scheduler_info()["workers"].values()
        table, _ = walk_forward(Drift(), prices, folds, n_jobs=2)
    assert sorted(w["nthreads"] for w in workers) == [1, 1]
    assert all(w["host"] == "127.0.0.1" for w in workers)
    assert client.status == "closed"
    assert _bytes(table, tmp_path / "dask.parquet") == _bytes(serial, tmp_path / "serial.parquet")


def test_the_address_comes_from_the_param_else_the_environment(cluster, monkeypatch):
    address = cluster.scheduler_address
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", address)
    with parallel_backend(ParallelParams(backend="dask")):
        assert _client().scheduler.address == address
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", f"tcp://127.0.0.1:{_closed_port()}")
    with parallel_backend(ParallelParams(backend="dask", scheduler_address=address)):
        assert _client().scheduler.address == address


def _closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("param", "env", "named"),
    [(True, False, "parallel.scheduler_address"), (False, True, "DASK_SCHEDULER_ADDRESS")],
)
def test_an_unreachable_scheduler_is_a_quick_error_naming_where_the_address_came_from(param, env, named, monkeypatch):
    address = f"tcp://127.0.0.1:{_closed_port()}"
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    if env:
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", address)
    start = time.perf_counter()
    with (
        pytest.raises(UserError, match=f"^{named}: cannot reach the Dask scheduler at {address}"),
        parallel_backend(ParallelParams(backend="dask", scheduler_address=address if param else None)),
    ):
        pass
    assert time.perf_counter() - start < 10


@pytest.mark.parametrize(
    ("address", "problem"), [("127.0.0.1", "missing port"), ("http://127.0.0.1:8786", "unknown scheme 'http'")]
)
def test_a_malformed_address_is_an_error_naming_the_key(address, problem):
    with (
        pytest.raises(
            UserError, match=f"^parallel.scheduler_address: not a Dask scheduler address: '{address}': {problem}"
        ),
        parallel_backend(ParallelParams(backend="dask", scheduler_address=address)),
    ):
        pass


def test_a_scheduler_address_without_the_dask_backend_is_a_params_error():
    with pytest.raises(UserError, match="parallel.scheduler_address: is used only with parallel.backend: dask"):
        parse_params({"parallel": {"backend": "loky", "scheduler_address": "tcp://127.0.0.1:8786"}})
