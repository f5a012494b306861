"""The baselines every model must beat: the random walk, with and without drift."""

from __future__ import annotations

import numpy as np


class Naive:
    """Random walk: tomorrow's price is today's price."""

    def fit(self, y: np.ndarray) -> Naive:
        return self

    def predict(self, y: np.ndarray, n: int) -> np.ndarray:
        return y[len(y) - n - 1 : len(y) - 1].copy()


class Drift:
    """Random walk with drift: today's log price plus the train part's mean daily log return."""

    def fit(self, y: np.ndarray) -> Drift:
        self.drift_ = float((y[-1] - y[0]) / (len(y) - 1))
        return self

    def predict(self, y: np.ndarray, n: int) -> np.ndarray:
        return y[len(y) - n - 1 : len(y) - 1] + self.drift_

    def parameter_counts(self) -> dict[str, int]:
        return {"drift": 1}
