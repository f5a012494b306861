"""Logging one series' fitted model to the active run: the served pyfunc (`served.py`, logged
as code) and, where the model offers one, its native MLflow flavour.

Native flavours: scikit-learn (saved with skops, which loads without unpickling) and Keras
(its own `.keras` format). There is none for ARIMA: MLflow's statsmodels flavour pickles the
results object, and this project writes no pickle; its pyfunc forecasts all the same.
"""

from __future__ import annotations

import importlib
import json
import shutil
import tempfile
import warnings
from importlib import metadata
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature

from pipeline.covariates import channels
from pipeline.forecast import horizon_forecasts
from pipeline.models import loader, store
from pipeline.tracking.provenance import key_part

SERVED = Path(__file__).with_name("served.py")
EXAMPLE_DAYS = 300  # recent prices in the pyfunc's input example (more than any window needs)
# What a logged model needs to load, pinned to this environment's versions. Listing them saves
# MLflow from loading the model again to infer them. The pyfunc loads any family through the
# model store, so it needs every family's libraries.
SERVED_REQUIREMENTS = (
    *("mlflow", "numpy", "pandas", "pyarrow", "scipy", "statsmodels", "scikit-learn", "skops", "safetensors"),
    *("keras", "jax", "exchange-calendars"),
)
NATIVE_REQUIREMENTS = {
    "sklearn": ("mlflow", "numpy", "scikit-learn", "skops"),
    "keras": ("mlflow", "numpy", "keras", "jax"),
}
NATIVE_OPTIONS = {"sklearn": {"serialization_format": "skops"}, "keras": {}}


def requirements(names) -> list[str]:
    """`name==version` of each distribution, as installed here."""
    return [f"{name}=={metadata.version(name)}" for name in names]


def log_forecaster(directory: Path, manifest: dict, uid: str, prices: pd.DataFrame) -> str:
    """Log series `uid`'s model from `directory` (a `models/<name>/`) as the served pyfunc
    `forecaster-<series>`, with a signature and an input example of its last `EXAMPLE_DAYS`
    prices (`ds`, `price` and the model's covariate channels: `forecast.recent_prices`); and,
    where it has one, the native model as artifacts
    `<library>-<series>`. Returns the pyfunc's model URI."""
    model = loader.load(directory, uid)
    example = prices.tail(EXAMPLE_DAYS).reset_index(drop=True)
    with warnings.catch_warnings():
        # The output's horizon `h` is an integer column that is never missing: MLflow's hint
        # about integers and missing values does not apply to it.
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")
        signature = infer_signature(example, horizon_forecasts(model, example))
    with tempfile.TemporaryDirectory() as tmp:
        # The series' own files beside a manifest of that series alone: `served.py` loads the
        # one series it finds (a `model_config` would become a run param, one per series).
        staged = Path(tmp) / "model"
        entry = manifest["series"][uid]
        shutil.copytree(directory / entry["path"], staged / entry["path"])
        own = {
            **manifest,
            "series": {uid: entry},
            "history": {k: v for k, v in manifest.get("history", {}).items() if k == uid},
        }
        (staged / store.MANIFEST).write_text(json.dumps(own, indent=1, sort_keys=True) + "\n")
        info = mlflow.pyfunc.log_model(
            name=f"forecaster-{key_part(uid)}",
            python_model=str(SERVED),
            artifacts={"model": str(staged)},
            signature=signature,
            input_example=example,
            pip_requirements=requirements(SERVED_REQUIREMENTS),
        )
    y = np.log(prices["price"].to_numpy("float64"))
    names = channels(model.covariates)
    native = model.native(y, model.inputs(y, prices[names].to_numpy("float64") if names else None))
    if native is not None:
        _log_native(*native, uid)
    return info.model_uri


def _log_native(library: str, learned, example: np.ndarray, uid: str) -> None:
    output = learned.predict(example, verbose=0) if library == "keras" else learned.predict(example)
    with tempfile.TemporaryDirectory() as tmp:
        # Saved, then logged as run artifacts: `mlflow.keras.log_model` with an input example
        # fails in MLflow 3.17 (it writes the example before creating the model's directory),
        # while `save_model` into an existing empty directory works, for every flavour alike.
        path = Path(tmp) / f"{library}-{key_part(uid)}"
        path.mkdir()
        importlib.import_module(f"mlflow.{library}").save_model(
            learned,
            path=str(path),
            input_example=example,
            signature=infer_signature(example, np.asarray(output)),
            pip_requirements=requirements(NATIVE_REQUIREMENTS[library]),
            **NATIVE_OPTIONS[library],
        )
        mlflow.log_artifacts(str(path), artifact_path=path.name)
