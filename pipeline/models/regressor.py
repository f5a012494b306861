"""Any scikit-learn regressor on the lag windows (stage `sklearn`).

    python -m pipeline.train sklearn    # params: sklearn.*, features.*

The estimator sits in a `Pipeline` behind a `StandardScaler` of the lags, and the target is
standardised too (`TransformedTargetRegressor`); both scalers are fit on each fold's train
windows inside `fit`. Standardising the target changes nothing for ridge and the tree models
(their fits scale with it) and lets the MLP learn log returns of about 0.01 at its default
learning rate and regularisation.

`strategy: direct` fits one such pipeline per horizon, each on its h-day target (ridge then
chooses a penalty per horizon); `recursive` fits the one-step pipeline and feeds it its own
forecasts (`pipeline.models.windowed`). Covariates add their lags as more columns (each
standardised on its own, on the train windows).
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import RidgeCV
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from pipeline.cli import UserError
from pipeline.features import make_windows, transform
from pipeline.models.windowed import Windowed

ESTIMATOR_FILE = "estimator_h{h}.skops"  # one fitted pipeline per trained horizon

# The names `sklearn.estimator` accepts. Each keeps scikit-learn's defaults unless
# `sklearn.params` says otherwise (mlp: one hidden layer of 100 ReLU units, the seed's MLP),
# except ridge's penalty grid below.
ESTIMATORS = {
    "ridge": RidgeCV,
    "random_forest": RandomForestRegressor,
    "hist_gradient_boosting": HistGradientBoostingRegressor,
    "mlp": MLPRegressor,
}
# ridge chooses its penalty per fold on the train windows (efficient leave-one-out), from a grid
# wider than scikit-learn's (0.1, 1, 10): on 60 standardised lags of S&P 500 returns it picks
# about 3e4, and alpha=1 forecasts 1.2% worse than the random walk (0.06% better at 3e4).
# `sklearn.params.alphas` replaces the grid; `alphas: [1.0]` or `alpha: 1.0` is a plain
# Ridge(alpha=1) (`alpha` is what `tune.sklearn` searches on a log scale).
RIDGE_ALPHAS = tuple(float(a) for a in np.logspace(-1, 5, 13))


def make_estimator(name: str, kwargs: dict[str, Any], random_state: int):
    """An unfitted estimator `name` with keyword arguments `kwargs` (from `sklearn.params`).

    `random_state` is passed to every estimator that takes one. Unknown names, unknown keys and
    values scikit-learn rejects are `UserError`s naming the params key.
    """
    if name not in ESTIMATORS:
        raise UserError(f"sklearn.estimator: unknown estimator {name!r} (expected one of {', '.join(ESTIMATORS)})")
    cls = ESTIMATORS[name]
    if cls is RidgeCV and "alpha" in kwargs:
        if "alphas" in kwargs:
            raise UserError("sklearn.params.alpha: give ridge one of alpha (one penalty) and alphas (a grid)")
        kwargs = {**{k: v for k, v in kwargs.items() if k != "alpha"}, "alphas": [kwargs["alpha"]]}
    if cls is RidgeCV and "alphas" not in kwargs:
        kwargs = {**kwargs, "alphas": RIDGE_ALPHAS}
    accepted = cls().get_params()
    for key in kwargs:
        if key not in accepted:
            raise UserError(
                f"sklearn.params.{key}: not a parameter of {cls.__name__} "
                f"(expected one of {', '.join(sorted(accepted))})"
            )
    if "random_state" in accepted:
        kwargs = {**kwargs, "random_state": random_state}
    estimator = cls(**kwargs)
    try:
        # Checked here, in the stage's process, rather than at the first fit in a worker.
        estimator._validate_params()
    except InvalidParameterError as err:
        key = re.search(r"The '(\w+)' parameter", str(err))
        raise UserError(f"sklearn.params.{key.group(1) if key else ''}: {err}") from None
    return estimator


class Regressor(Windowed):
    """A scikit-learn regressor fit on `n_lags` lags of `target` (`log_return` or `price`)."""

    def __init__(
        self,
        estimator,
        n_lags: int = 60,
        target: str = "log_return",
        horizons: tuple[int, ...] = (1,),
        strategy: str = "direct",
        covariates: tuple[str, ...] = (),
    ):
        self.estimator = estimator
        self.n_lags = n_lags
        self.target = target
        self.horizons = horizons
        self.strategy = strategy
        self.covariates = covariates

    def config(self) -> dict:
        """The constructor's arguments as JSON: the estimator by class name and its params."""
        params = {k: v for k, v in self.estimator.get_params(deep=False).items()}
        return {
            "estimator": type(self.estimator).__name__,
            "estimator_params": _jsonable(params),
            "n_lags": self.n_lags,
            "target": self.target,
            "horizons": list(self.horizons),
            "strategy": self.strategy,
            "covariates": list(self.covariates),
        }

    def _fit_windows(self, X: np.ndarray, Y: np.ndarray) -> None:
        self.models_ = []
        for column in Y.T:  # one pipeline per trained horizon, on the windows that have its target
            has_target = np.isfinite(column)
            pipeline = Pipeline([("scale", StandardScaler()), ("model", clone(self.estimator))])
            regressor = TransformedTargetRegressor(regressor=pipeline, transformer=StandardScaler())
            self.models_.append(regressor.fit(X[has_target], column[has_target]))

    def _predict_windows(self, X: np.ndarray) -> np.ndarray:
        return np.column_stack([model.predict(X) for model in self.models_])

    def save(self, directory: Path) -> None:
        import skops.io

        for h, model in zip(self.steps(), self.models_, strict=True):
            data = _deterministic_skops(skops.io.dumps(model))
            (Path(directory) / ESTIMATOR_FILE.format(h=h)).write_bytes(data)

    @classmethod
    def load(cls, directory: Path, params: dict) -> Regressor:
        """The fitted regressor; skops loads only scikit-learn's and NumPy's own types, never
        code from the file, and refuses any other type it finds there."""
        import skops.io

        fitted = []
        kwargs = {k: params[k] for k in ("n_lags", "target", "horizons", "strategy")}
        covariates = tuple(params.get("covariates", ()))
        model = cls(None, **{**kwargs, "horizons": tuple(kwargs["horizons"]), "covariates": covariates})
        for h in model.steps():
            data = (Path(directory) / ESTIMATOR_FILE.format(h=h)).read_bytes()
            untrusted = skops.io.get_untrusted_types(data=data)
            trusted = [name for name in untrusted if name.startswith(("sklearn.", "numpy."))]
            fitted.append(skops.io.loads(data, trusted=trusted))
        model.estimator = clone(fitted[0].regressor_.named_steps["model"])
        model.models_ = fitted
        return model

    def native(self, y: np.ndarray, X: np.ndarray | None = None) -> tuple[str, object, np.ndarray]:
        """The fitted scikit-learn pipeline of the shortest horizon (`direct` fits one per
        horizon; the served pyfunc forecasts them all) and the last five input rows of `y`."""
        if X is None:
            X, _ = make_windows(transform(np.asarray(y, dtype="float64"), self.target), self.n_lags)
        return "sklearn", self.models_[0], np.asarray(X[-5:], dtype="float64")

    def lag_gradients(self, windows: np.ndarray) -> np.ndarray | None:
        """A linear estimator's (ridge's) derivative: the shortest horizon's coefficients on the
        standardised lags (the pipeline standardises lags and target), the same for every
        window (the price channel's, the first `n_lags` columns); `None` for trees and the MLP,
        whose forecast has no coefficient per lag."""
        estimator = self.models_[0].regressor_.named_steps["model"]
        if not hasattr(estimator, "coef_"):
            return None
        return np.tile(np.ravel(estimator.coef_)[: self.n_lags], (len(windows), 1))

    def parameter_counts(self) -> dict[str, int]:
        """What the fitted estimator learned, by block.

        Linear models: coefficients and intercept. Forests and boosting: tree nodes (split and
        leaf nodes, summed over trees). MLP: each layer's weight matrix and bias vector, named
        as in the seed lecture (W_xh input to hidden, W_hh hidden to hidden, W_hy to the output).
        The scalers' means and scales are not counted: they are computed, not learned. With one
        pipeline per horizon (`direct`), each block is counted per horizon, named `h<h> <block>`.
        """
        if len(self.models_) == 1:
            return _counts(self.models_[0].regressor_.named_steps["model"])
        return {
            f"h{h} {block}": count
            for h, model in zip(self.steps(), self.models_, strict=True)
            for block, count in _counts(model.regressor_.named_steps["model"]).items()
        }


def _counts(fitted) -> dict[str, int]:
    """One fitted estimator's learned values by block (see `Regressor.parameter_counts`)."""
    if hasattr(fitted, "coefs_"):
        counts = {}
        last = len(fitted.coefs_) - 1
        for i, (w, b) in enumerate(zip(fitted.coefs_, fitted.intercepts_, strict=True)):
            block = "W_hy" if i == last else ("W_xh" if i == 0 else f"W_hh{i}")
            counts[block] = int(w.size)
            counts[f"{block} bias"] = int(b.size)
        return counts
    if hasattr(fitted, "coef_"):
        return {"coef": int(np.size(fitted.coef_)), "intercept": int(np.size(fitted.intercept_))}
    if hasattr(fitted, "estimators_"):
        return {"tree nodes": int(sum(tree.tree_.node_count for tree in fitted.estimators_))}
    # Histogram gradient boosting keeps its trees (one per iteration) in `_predictors`.
    return {"tree nodes": int(sum(len(p.nodes) for trees in fitted._predictors for p in trees))}


def _jsonable(params: dict) -> dict:
    """Estimator params as JSON values (tuples as lists, anything else by its repr)."""
    out = {}
    for key, value in sorted(params.items()):
        if isinstance(value, (tuple, list)):
            value = [float(v) if isinstance(v, (float, np.floating)) else v for v in value]
        out[key] = value if isinstance(value, (str, int, float, bool, list, type(None))) else repr(value)
    return out


def _deterministic_skops(data: bytes) -> bytes:
    """The same skops archive with the same bytes run after run.

    skops names each array file and object reference by the object's memory address and stamps
    each archive entry with the current time (skops 0.16): both are replaced here by numbers in
    order of first appearance and a fixed date. Written by hand because skops has no option for
    it; `Regressor.load` reads the result like any skops file (tested).
    """
    archive = zipfile.ZipFile(io.BytesIO(data))
    schema = archive.read("schema.json").decode()
    ids: dict[str, str] = {}
    for match in re.finditer(r'"__id__": (\d+)|"(\d+)\.npy"', schema):
        ids.setdefault(match.group(1) or match.group(2), str(len(ids)))
    schema = re.sub(r'("__id__": )(\d+)', lambda m: m.group(1) + ids[m.group(2)], schema)
    schema = re.sub(r'"(\d+)\.npy"', lambda m: f'"{ids[m.group(1)]}.npy"', schema)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as target:
        names = sorted((n for n in archive.namelist() if n != "schema.json"), key=lambda n: int(ids[n[:-4]]))
        for name in names:
            target.writestr(
                zipfile.ZipInfo(f"{ids[name[:-4]]}.npy", date_time=(1980, 1, 1, 0, 0, 0)), archive.read(name)
            )
        target.writestr(zipfile.ZipInfo("schema.json", date_time=(1980, 1, 1, 0, 0, 0)), schema)
    return out.getvalue()
