"""A fitted model with calibrated prediction intervals: what `models/<name>/` serves.

The walk-forward loop calibrates every model's intervals on its own out-of-sample errors
(`pipeline.intervals`). For a forecast from a series' last day, the model store keeps the
half-widths (in log price, by horizon and level) that the last fold's errors give, and the loader
wraps the family's model in `Calibrated`: the same forecasts, with bounds y_hat * exp(-+q).
"""

from __future__ import annotations

import numpy as np

from pipeline.models.base import Model


class Calibrated:
    """`model`'s forecasts with fixed half-widths `half_widths[h][l]` (log price) at each level.

    A wrapper, not a `Model` subclass: everything but the intervals is the wrapped model's own
    (its parameter counts, native flavour, learned values), not the contract's defaults.
    """

    own_intervals = True

    def __init__(self, model: Model, levels: tuple[float, ...], half_widths: list[list[float]]):
        self.model = model
        self.levels = tuple(levels)
        self.half_widths = np.asarray(half_widths, dtype="float64")  # (horizons, levels)
        self.horizons = model.horizons

    def predict(self, y: np.ndarray, n: int, X: np.ndarray | None = None) -> np.ndarray:
        return self.model.predict(y, n, X)

    def predict_interval(self, y: np.ndarray, n: int, X: np.ndarray | None = None) -> np.ndarray:
        center = np.asarray(self.predict(y, n, X))[..., None]  # (n, H, 1)
        return np.stack([center - self.half_widths, center + self.half_widths], axis=-1)

    def __getattr__(self, name: str):
        if name == "model":  # not set yet (e.g. while unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.model, name)
