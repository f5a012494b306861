"""Benchmark: what forecasting every horizon costs against one, on the whole default pipeline.

    python -m benchmarks horizons

The project's `forecast.horizons` (A) against `forecast.horizons: [1]` (B), timed alternately
(`benchmarks.alternate`).
"""

from __future__ import annotations

from benchmarks.alternate import compare
from benchmarks.report import Result
from pipeline.params import Params

TARGET = 1.25  # the bound on the pipeline's cost with every horizon, as a ratio to one horizon


def run(params: Params) -> Result:
    several = list(params.forecast.horizons)
    return compare(
        f"Forecast horizons: forced `dvc repro` with horizons {several} (A) against [1] (B)",
        (f"{several}", {"forecast": {"horizons": several}}),
        ("[1]", {"forecast": {"horizons": [1]}}),
        TARGET,
    )
