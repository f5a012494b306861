"""Benchmark: what the NumPy RNN's stage (`rnn_scratch`) adds to the whole default pipeline.

    python -m benchmarks lecture

The default pipeline (A) against the same without the `rnn_scratch` stage (B, left out of
dvc.yaml), timed alternately (`benchmarks.alternate`). The issue's bound: it stays in the default
pipeline if it adds at most `TARGET_SECONDS`.
"""

from __future__ import annotations

from benchmarks.alternate import compare
from benchmarks.report import Result
from benchmarks.repro import TOTAL_STAGE
from pipeline.params import Params

TARGET_SECONDS = 5.0
PAIRS = 3  # about 60 s a run: 8 runs with the uncounted first pair


def run(params: Params) -> Result:
    result = compare(
        "The lecture's NumPy RNN: forced `dvc repro` with the rnn_scratch stage (A) and without it (B)",
        ("with rnn_scratch", {}),
        ("without", {}, ("rnn_scratch",)),
        target=None,  # the bound is in seconds, below
        pairs=PAIRS,
    )
    rows = {row[0]: row for row in result.rows}
    stage, added = rows["rnn_scratch"][1], rows[TOTAL_STAGE][1] - rows[TOTAL_STAGE][2]
    result.notes.append(
        f"rnn_scratch stage: median {stage:.1f} s; the whole pipeline's medians differ by {added:.1f} s "
        f"(bound {TARGET_SECONDS:.0f} s)"
    )
    return result
