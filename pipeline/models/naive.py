"""The baselines every model must beat: the random walk, with and without drift."""

from __future__ import annotations

import numpy as np

from pipeline.models.base import Model


class Naive(Model):
    """Random walk: tomorrow's price is today's price."""

    def fit(self, y: np.ndarray, X: np.ndarray | None = None) -> Naive:
        return self

    def predict(self, y: np.ndarray, n: int, X: np.ndarray | None = None) -> np.ndarray:
        return y[len(y) - n - 1 : len(y) - 1].copy()


class Drift(Model):
    """Random walk with drift: today's log price plus the train part's mean daily log return."""

    def fit(self, y: np.ndarray, X: np.ndarray | None = None) -> Drift:
        self.drift_ = float((y[-1] - y[0]) / (len(y) - 1))
        return self

    def predict(self, y: np.ndarray, n: int, X: np.ndarray | None = None) -> np.ndarray:
        return y[len(y) - n - 1 : len(y) - 1] + self.drift_

    def learned(self) -> dict:
        return {"drift_": self.drift_}

    def parameter_counts(self) -> dict[str, int]:
        return {"drift": 1}
