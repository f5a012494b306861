"""Benchmark: what the NumPy RNN's stage (`rnn_scratch`) adds to the whole default pipeline.

    python -m benchmarks lecture

The default pipeline (A) against the same without the `rnn_scratch` stage (B, left out of
dvc.yaml), timed alternately (`benchmarks.alternate`). The issue's bound: it stays in the default
pipeline if it adds at most `TARGET_SECONDS`.
"""

from __future__ import annotations

from benchmarks.alternate import compare
from benchmarks.report import Result
from pipeline.params import Params

TARGET_SECONDS = 5.0
PAIRS = 2  # about 70 s a run: 6 runs with the uncounted first pair


def run(params: Params) -> Result:
    result = compare(
        "The lecture's NumPy RNN: forced `dvc repro` with the rnn_scratch stage (A) and without it (B)",
        ("with rnn_scratch", {}),
        ("without", {}, ("rnn_scratch",)),
        target=1.0 + TARGET_SECONDS / 60,  # the ratio a 5 s stage makes of a 60 s pipeline
        pairs=PAIRS,
    )
    stage = next(row[1] for row in result.rows if row[0] == "rnn_scratch")
    result.notes.append(f"rnn_scratch stage: median {stage:.1f} s (bound {TARGET_SECONDS:.0f} s)")
    return result
