"""The model the registry serves: one series' fitted model as an MLflow pyfunc, logged as code.

MLflow's "models from code": `flavours.log_forecaster` logs this file (not a pickled object)
with the series' files from `models/<name>/` as artifacts. Loading the pyfunc runs this file,
whose `load_context` reads the files back with `pipeline.models.loader.load` (numbers and names
only). Its `predict` takes recent prices (`ds`, `price`) and returns the forecasts from their
last day at every horizon of the model, one row each (`pipeline.forecast.horizon_forecasts`).
It needs this project's `pipeline` package importable, as `make venv` installs it.
"""

from pathlib import Path

import mlflow
import pandas as pd


class Forecaster(mlflow.pyfunc.PythonModel):
    """The fitted model of the one series in artifact `model` (a `models/<name>/` of that series)."""

    def load_context(self, context) -> None:
        from pipeline.models import loader, store

        directory = Path(context.artifacts["model"])
        (series,) = store.read_manifest(directory)["series"]
        self.model = loader.load(directory, series)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        from pipeline.forecast import horizon_forecasts

        return horizon_forecasts(self.model, model_input)


mlflow.models.set_model(Forecaster())
