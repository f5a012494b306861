"""The model registry: each series' champions as versions of `stockcast-<series>`, one alias per horizon.

Alias `champion-h<h>` points at the champion of horizon h, and `champion` at the shortest
horizon's (h=1 by default). The `track` stage points each alias at its champion's served pyfunc,
which forecasts every horizon; a model that is the champion of several horizons is one version
with several aliases, and a new version is registered only for a pyfunc the registry does not
hold yet. The forecast command loads the alias of each horizon.
"""

from __future__ import annotations

import mlflow
from mlflow.exceptions import MlflowException

from pipeline.tracking import store
from pipeline.tracking.provenance import key_part

CHAMPION = "champion"  # the shortest horizon's champion (the one-step champion by default)
MISSING = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND")


def registered_name(series: str) -> str:
    """The registry name of a series' champions."""
    return f"stockcast-{key_part(series)}"


def alias(h: int | None) -> str:
    """The alias of horizon `h`'s champion; `None`: the shortest horizon's, `champion`."""
    return CHAMPION if h is None else f"{CHAMPION}-h{h}"


def aliased_version(client: mlflow.MlflowClient, name: str, label: str):
    """The model version alias `label` of `name` points at, or `None`."""
    try:
        return client.get_model_version_by_alias(name, label)
    except MlflowException as err:
        if err.error_code in MISSING:
            return None
        raise


def _version_of(client: mlflow.MlflowClient, name: str, uri: str, labels: list[str]):
    """The version of `name` whose source is `uri`: first among those `labels` point at, else any."""
    for label in labels:
        version = aliased_version(client, name, label)
        if version is not None and version.source == uri:
            return version
    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except MlflowException as err:
        if err.error_code in MISSING:
            return None
        raise
    return next((v for v in sorted(versions, key=lambda v: int(v.version)) if v.source == uri), None)


def register(uid: str, model: str, run, scores: dict, pipeline_run: str, horizons: list[int], shortest: bool):
    """Point the aliases of `horizons` of `stockcast-<uid>` (and `champion` where `shortest`)
    at `run`'s served pyfunc for `uid`; return the version.

    A new version only when no version of the model has that pyfunc as its source.
    """
    client = mlflow.MlflowClient()
    name = registered_name(uid)
    uri = run.data.tags[f"forecaster.{key_part(uid)}"]
    labels = [alias(h) for h in horizons] + ([CHAMPION] if shortest else [])
    version = _version_of(client, name, uri, labels)
    if version is None:
        tags = {"model": model, "series": uid, "pipeline_run": pipeline_run, "rmse": str(scores["rmse"])}
        version = mlflow.register_model(uri, name, tags=tags)
    for label in labels:
        client.set_registered_model_alias(name, label, version.version)
    return version


def load_champion(series: str, h: int | None = None):
    """The registry champion of `series` at horizon `h` (`None`: the shortest horizon's) as a
    pyfunc and its version's tags (plus `version`), or `None` if the store has none (a missing
    local store is not created)."""
    _, uri = store.connect()
    if not store.local_store_exists(uri):
        return None
    name, label = registered_name(series), alias(h)
    with store.as_user_error(uri):
        version = aliased_version(mlflow.MlflowClient(), name, label)
        if version is None:
            return None
        model = mlflow.pyfunc.load_model(f"models:/{name}@{label}")
    return model, {**version.tags, "version": version.version}
