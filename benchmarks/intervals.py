"""Benchmark: what prediction intervals for every model cost, on the whole default pipeline.

    python -m benchmarks intervals

The project's `intervals.method` (A) against `intervals.method: none` (B), timed alternately
(`benchmarks.alternate`). Intervals cost one calibration fold per series and model (a fifth
more fits with 5 folds), the conformal or ACI half-widths, and their scores in evaluate.
"""

from __future__ import annotations

from benchmarks.alternate import compare
from benchmarks.report import Result
from pipeline.params import Params

TARGET = 1.3  # the bound on the pipeline's cost with intervals, as a ratio to none


def run(params: Params) -> Result:
    method = params.intervals.method
    return compare(
        f"Prediction intervals: forced `dvc repro` with intervals.method {method} (A) against none (B)",
        (method, {"intervals": {"method": method}}),
        ("none", {"intervals": {"method": "none"}}),
        TARGET,
    )
