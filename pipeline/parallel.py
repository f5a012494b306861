"""Where the walk-forward loop's (series, fold) tasks run: local processes (loky) or a Dask cluster.

`parallel_backend` sets joblib's backend for a stage from `parallel.*`; `warm_up` starts the
workers early. Nothing here changes what a task computes: predictions are the same bytes on
every backend (tests/test_dask.py), which is why `parallel.*` is no DVC dependency.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import joblib

from pipeline.cli import UserError
from pipeline.params import ParallelParams

DASK_CONNECT_TIMEOUT = 5  # seconds: an unreachable scheduler is an error, not a hang


@contextmanager
def parallel_backend(params: ParallelParams) -> Iterator[None]:
    """Run the loop's tasks where `parallel.backend` says: local processes (loky) or Dask.

    dask: tasks go to the distributed cluster at `parallel.scheduler_address` (else the
    `DASK_SCHEDULER_ADDRESS` environment variable); with neither set, a local cluster of
    `parallel.n_jobs` single-threaded worker processes on 127.0.0.1 is started here and closed
    on exit. Each series' arrays are scattered to the cluster once per model, not sent with
    every (series, fold) task (see `Series.__sizeof__`).
    """
    if params.backend == "loky":
        with joblib.parallel_config(backend="loky"):
            yield
        return
    with _dask_client(params) as client, joblib.parallel_config(backend="dask", client=client):
        yield


@contextmanager
def _dask_client(params: ParallelParams):
    from dask.distributed import Client, LocalCluster

    address, key = params.scheduler_address, "parallel.scheduler_address"
    if not address and os.environ.get("DASK_SCHEDULER_ADDRESS"):
        address, key = os.environ["DASK_SCHEDULER_ADDRESS"], "DASK_SCHEDULER_ADDRESS"
    if address:
        _check_reachable(address, key)
        try:
            client = Client(address, timeout=f"{DASK_CONNECT_TIMEOUT}s", set_as_default=False)
        except (OSError, ValueError, TypeError) as err:
            raise UserError(f"{key}: cannot reach the Dask scheduler at {address} ({err})") from None
        with client:
            yield client
        return
    n_workers = params.n_jobs if params.n_jobs >= 1 else os.cpu_count() or 1
    with (
        # The scheduler's HTTP server (health checks) on a free loopback port, without the dashboard.
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            scheduler_kwargs={"dashboard": False},
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield client


def _check_reachable(address: str, key: str) -> None:
    """A `UserError` naming `key` if `address` is malformed or nothing listens there.

    Checked with a plain connection first because a failed `Client(...)` leaves a half-built
    client whose clean-up holds the process for another 10 s after the error.
    """
    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.registry import backends

    example = "(expected e.g. tcp://scheduler-host:8786)"
    try:
        scheme, location = parse_address(address)
        host, port = parse_host_port(location) if scheme in ("tcp", "tls") else (None, None)
    except (ValueError, TypeError) as err:
        raise UserError(f"{key}: not a Dask scheduler address: {address!r}: {err} {example}") from None
    if scheme not in backends:
        raise UserError(f"{key}: not a Dask scheduler address: {address!r}: unknown scheme {scheme!r} {example}")
    if host is None:
        return
    try:
        socket.create_connection((host, port), timeout=DASK_CONNECT_TIMEOUT).close()
    except OSError as err:
        raise UserError(f"{key}: cannot reach the Dask scheduler at {address} ({err.strerror or err})") from None


def warm_up(prepare, n_jobs: int) -> Iterator:
    """Start the backend's workers now, each calling `prepare()` (which imports what the models
    need), while the stage goes on reading its inputs; iterate the result to wait for them.

    A worker's first task otherwise pays for its imports after the stage has paid for its own
    (scikit-learn or statsmodels about 1 s, Keras 2.5 s): started first, the two overlap.
    """
    if n_jobs == 1:
        return iter(())
    workers = os.cpu_count() or 1 if n_jobs == -1 else n_jobs
    return joblib.Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
        joblib.delayed(prepare)() for _ in range(workers)
    )
