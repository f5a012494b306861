"""The model registry: each series' champion as `stockcast-<series>` with alias `champion`.

The `track` stage points the alias at the champion's served pyfunc (a new version only when the
champion's model changed); the forecast command loads it.
"""

from __future__ import annotations

import mlflow
from mlflow.exceptions import MlflowException

from pipeline.tracking import store
from pipeline.tracking.provenance import key_part

CHAMPION = "champion"  # the registry alias the forecast command loads


def registered_name(series: str) -> str:
    """The registry name of a series' champion."""
    return f"stockcast-{key_part(series)}"


def champion_version(client: mlflow.MlflowClient, name: str):
    """The model version alias `champion` of `name` points at, or `None`."""
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException as err:
        if err.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


def register(uid: str, model: str, run, scores: dict, pipeline_run: str):
    """Point `stockcast-<uid>@champion` at `run`'s served pyfunc for `uid`; return the version.

    A new version only when the champion's pyfunc is not the one the alias points at already.
    """
    client = mlflow.MlflowClient()
    name = registered_name(uid)
    uri = run.data.tags[f"forecaster.{key_part(uid)}"]
    current = champion_version(client, name)
    if current is not None and current.source == uri:
        return current
    tags = {"model": model, "series": uid, "pipeline_run": pipeline_run, "rmse": str(scores["rmse"])}
    version = mlflow.register_model(uri, name, tags=tags)
    client.set_registered_model_alias(name, CHAMPION, version.version)
    return version


def load_champion(series: str):
    """The registry champion of `series` as a pyfunc and its version's tags (plus `version`),
    or `None` if the store has none (a missing local store is not created)."""
    _, uri = store.connect()
    if not store.local_store_exists(uri):
        return None
    name = registered_name(series)
    with store.as_user_error(uri):
        version = champion_version(mlflow.MlflowClient(), name)
        if version is None:
            return None
        model = mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION}")
    return model, {**version.tags, "version": version.version}
