"""The baselines every model must beat: the random walk, with and without drift."""

from __future__ import annotations

import numpy as np

from pipeline.models.base import Model, cutoff_values


class Naive(Model):
    """Random walk: the price h days after the cutoff is the cutoff's price, at every horizon."""

    def __init__(self, horizons: tuple[int, ...] = (1,)):
        self.horizons = horizons

    def fit(self, y: np.ndarray, X: np.ndarray | None = None) -> Naive:
        return self

    def predict(self, y: np.ndarray, n: int, X: np.ndarray | None = None) -> np.ndarray:
        return np.repeat(cutoff_values(y, n), len(self.horizons), axis=1)


class Drift(Model):
    """Random walk with drift: the cutoff's log price plus h times the train part's mean daily log return."""

    def __init__(self, horizons: tuple[int, ...] = (1,)):
        self.horizons = horizons

    def fit(self, y: np.ndarray, X: np.ndarray | None = None) -> Drift:
        self.drift_ = float((y[-1] - y[0]) / (len(y) - 1))
        return self

    def predict(self, y: np.ndarray, n: int, X: np.ndarray | None = None) -> np.ndarray:
        return cutoff_values(y, n) + self.drift_ * np.asarray(self.horizons, dtype="float64")

    def learned(self) -> dict:
        return {"drift_": self.drift_}

    def parameter_counts(self) -> dict[str, int]:
        return {"drift": 1}
