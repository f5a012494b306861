"""Where runs go, and the connection to it.

`MLFLOW_TRACKING_URI` if set (e.g. a team server, `http://host:5000`), else
`sqlite:///<project root>/mlflow.db` with artifacts in `<project root>/mlruns`: no server
needed. `STOCKCAST_TRACKING=off` turns tracking off.

mlflow is imported in `connect`, after an http(s) server has been checked: `import mlflow`
takes seconds, and an unreachable server should fail in less.
"""

from __future__ import annotations

import logging
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from pipeline.cli import UserError

SWITCH_ENV = "STOCKCAST_TRACKING"  # "off" turns tracking off
REACH_TIMEOUT = 3.0  # seconds to wait for a tracking server's /health before giving up
# The user's own settings win over these. An MLflow client retries a failing request 7 times
# with backoff (minutes); a stage that lost its server should fail in seconds. MLflow's usage
# telemetry would send data off the machine, and its progress bars fill a stage's log.
MLFLOW_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}
# The experiment tag that marks an experiment as model training, not GenAI: what the UI's kind
# selector writes. MLflow 3.17's UI also has a per-browser switch, "GenAI | Model training", that
# wins over the tag and starts on GenAI; `ui_link` opens the model-training view regardless.
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")


def enabled(environ: dict | None = None) -> bool:
    """Whether tracking is on (`STOCKCAST_TRACKING` is not `off`, `0`, `false` or `no`)."""
    environ = os.environ if environ is None else environ
    return environ.get(SWITCH_ENV, "").strip().lower() not in ("off", "0", "false", "no")


def project_root(cwd: Path | None = None, environ: dict | None = None) -> Path:
    """The project's root, as an absolute path.

    DVC sets `DVC_ROOT` for every stage command (the main repository's root, even when
    `dvc exp run --temp` runs the stage in a copy under `.dvc/tmp/exps`); without it, the
    nearest directory at or above `cwd` that holds `dvc.yaml` and is not inside `.dvc/`.
    """
    environ = os.environ if environ is None else environ
    if environ.get("DVC_ROOT"):
        return Path(environ["DVC_ROOT"]).resolve()
    cwd = (cwd or Path.cwd()).resolve()
    for directory in (cwd, *cwd.parents):
        if (directory / "dvc.yaml").is_file() and ".dvc" not in directory.parts:
            return directory
    raise UserError(f"dvc.yaml: not found in {cwd} or above (run from the project)")


def tracking_uri(root: Path, environ: dict | None = None) -> str:
    """`MLFLOW_TRACKING_URI` if set, else the SQLite store in the project root."""
    environ = os.environ if environ is None else environ
    return environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{root / 'mlflow.db'}"


def is_server(uri: str) -> bool:
    return urlsplit(uri).scheme in ("http", "https")


def artifact_location(root: Path, uri: str) -> str | None:
    """Where a new experiment keeps artifacts: `<root>/mlruns` with a local store.

    MLflow's own default is `./mlruns` in the working directory, which under
    `dvc exp run --temp` is a copy that is deleted. A server chooses for itself (its
    `--default-artifact-root`), so this is `None` there.
    """
    return None if is_server(uri) else (root / "mlruns").as_uri()


def ui_link(uri: str, experiment_id: str) -> str:
    """The experiment's page in the MLflow UI, in its model-training view: on the server, or
    on `mlflow ui` for a local store (its default address)."""
    base = uri.rstrip("/") if is_server(uri) else "http://127.0.0.1:5000"
    return f"{base}/#/experiments/{experiment_id}?workflowType=machine_learning"


def local_store_exists(uri: str) -> bool:
    """False only for a SQLite store whose file is missing (asking it would create it)."""
    parts = urlsplit(uri)
    return parts.scheme != "sqlite" or Path(parts.path[1:]).exists()


def check_reachable(uri: str, timeout: float = REACH_TIMEOUT) -> None:
    """Fail within about `timeout` seconds if an http(s) tracking server does not answer.

    Any HTTP answer counts as reachable (a server behind a login answers 401); only a refused
    connection, a timeout or an unknown host is an error. Other URIs are local stores.
    """
    reason = unreachable(uri, timeout)
    if reason is not None:
        raise UserError(f"MLFLOW_TRACKING_URI: cannot reach the MLflow tracking server at {uri} ({reason})")


def unreachable(uri: str, timeout: float = REACH_TIMEOUT) -> str | None:
    """Why an http(s) tracking server does not answer its /health within about `timeout` seconds,
    or `None` if it answers (or `uri` is a local store). The request runs in a thread, so a name
    lookup that hangs cannot hold the stage either."""
    if not is_server(uri):
        return None
    outcome: list[BaseException | None] = []

    def ask() -> None:
        try:
            urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout).close()
            outcome.append(None)
        except urllib.error.HTTPError:
            outcome.append(None)
        except (urllib.error.URLError, OSError, ValueError) as err:
            outcome.append(err)

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    error = outcome[0] if outcome else TimeoutError(f"no answer in {timeout:g} s")
    return None if error is None else str(getattr(error, "reason", error))


@contextmanager
def as_user_error(uri: str, retry: str = "try again") -> Iterator[None]:
    """Turn an MLflow or connection failure into a `UserError` naming the store: a server that
    no longer answers (it died mid-run) as `MLFLOW_TRACKING_URI` and its URI, in place of the
    client's last retry, with `retry` (what to do once it is back)."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except (MlflowException, OSError) as err:
        reason = unreachable(uri)
        if reason is not None:
            raise UserError(
                f"MLFLOW_TRACKING_URI: lost the MLflow tracking server at {uri} ({reason}); {retry} once it is back"
            ) from None
        message = (str(getattr(err, "message", err)).strip().splitlines() or [type(err).__name__])[0]
        raise UserError(f"MLflow ({uri}): {message}") from None


def connect() -> tuple[Path, str]:
    """Point MLflow at the project's tracking store; return the project root and the URI.

    An unreachable server is a `UserError` naming `MLFLOW_TRACKING_URI` and the URI within seconds.
    """
    root = project_root()
    uri = tracking_uri(root)
    for key, value in MLFLOW_DEFAULTS.items():
        os.environ.setdefault(key, value)
    check_reachable(uri)
    import mlflow

    # MLflow's info chatter (table creation, migrations) stays out of the stage's output.
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    mlflow.set_tracking_uri(uri)
    return root, uri


def experiment(name: str, root: Path, uri: str) -> str:
    """The id of experiment `name`, created if new; marked for the UI's model-training view."""
    import mlflow

    client = mlflow.MlflowClient()
    found = client.get_experiment_by_name(name)
    if found is None:
        return client.create_experiment(
            name, artifact_location=artifact_location(root, uri), tags=dict([EXPERIMENT_KIND])
        )
    if found.lifecycle_stage == "deleted":
        raise UserError(
            f"mlflow.experiment: {name!r} is deleted in {uri} (restore it in the MLflow UI or choose another name)"
        )
    if EXPERIMENT_KIND[0] not in found.tags:  # an experiment made before; a kind chosen in the UI stays
        client.set_experiment_tag(found.experiment_id, *EXPERIMENT_KIND)
    return found.experiment_id
