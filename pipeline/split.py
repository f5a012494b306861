"""Stage `split`: walk-forward folds per series, with scikit-learn's `TimeSeriesSplit` semantics.

    python -m pipeline.split       # params: split.*  ->  data/folds.json

Folds count lag windows (one per target date), exactly as `TimeSeriesSplit(n_splits=n_windows,
test_size, gap, max_train_size)` splits the rows of the windows table. Each fold is written as
dates so the file reads and diffs well: `history_start` (the first price the fold's models may
read: the train windows' lags reach back that far), `train_start`/`train_end` and
`test_start`/`test_end` (target dates, inclusive).
"""

from __future__ import annotations

import pandas as pd
from sklearn.model_selection import TimeSeriesSplit

from pipeline import io, paths
from pipeline.cli import UserError, run
from pipeline.params import SplitParams, load_params

MIN_TRAIN_WINDOWS = 20  # fewer leaves a model nothing to learn from


def fold_indices(n_windows: int, split: SplitParams) -> list[tuple[range, range]]:
    """(train rows, test rows) per fold over `n_windows` windows, via `TimeSeriesSplit`."""
    needed = split.n_windows * split.test_size + split.gap + MIN_TRAIN_WINDOWS
    if n_windows < needed:
        raise UserError(
            f"split.test_size: {split.n_windows} folds x {split.test_size} test days + gap {split.gap} "
            f"+ {MIN_TRAIN_WINDOWS} train windows need {needed} windows, the series has {n_windows}"
        )
    splitter = TimeSeriesSplit(n_splits=split.n_windows, test_size=split.test_size, gap=split.gap, max_train_size=split.max_train_size)
    folds = []
    for train, test in splitter.split(range(n_windows)):
        folds.append((range(train[0], train[-1] + 1), range(test[0], test[-1] + 1)))
    return folds


def make_folds(prices: pd.DataFrame, windows: pd.DataFrame, split: SplitParams) -> dict[str, list[dict]]:
    """Folds over each series' windows, as dates, keyed by `unique_id` in sorted order."""
    folds = {}
    for unique_id, rows in windows.groupby("unique_id", sort=True):
        targets = rows["ds"].dt.strftime("%Y-%m-%d").tolist()
        days = prices.loc[prices["unique_id"] == unique_id, "ds"].dt.strftime("%Y-%m-%d").tolist()
        try:
            indices = fold_indices(len(targets), split)
        except UserError as err:
            raise UserError(f"{err} (series {unique_id})") from None
        folds[unique_id] = [
            {
                "fold": k,
                # Window i's target is price i + L' (L' the lookback), its lags start at price i.
                "history_start": days[train.start],
                "train_start": targets[train.start],
                "train_end": targets[train.stop - 1],
                "test_start": targets[test.start],
                "test_end": targets[test.stop - 1],
                "n_train": len(train),
                "n_test": len(test),
            }
            for k, (train, test) in enumerate(indices)
        ]
    return folds


def main() -> None:
    prices = io.read_table(paths.PRICES, ["unique_id", "ds"])
    windows = io.read_table(paths.WINDOWS, ["unique_id", "ds"])
    folds = make_folds(prices, windows, load_params().split)
    io.write_json(folds, paths.FOLDS)
    n = sum(len(f) for f in folds.values())
    print(f"split: {n} folds over {len(folds)} series -> {paths.FOLDS}")


if __name__ == "__main__":
    run(main)
