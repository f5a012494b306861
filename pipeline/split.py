"""Stage `split`: walk-forward folds per series, with scikit-learn's `TimeSeriesSplit` semantics.

    python -m pipeline.split       # params: split.*  ->  data/folds.json

Folds are dated on each series' own price calendar, exactly as `TimeSeriesSplit(n_splits=
n_windows, test_size, gap, max_train_size)` splits its trading days, so they do not depend on
any model's params: a change of `features.n_lags` moves no fold, and the naive and ARIMA
stages do not rerun. Each fold is written as dates so the file reads and diffs well:
`history_start`..`train_end` (the train part: every price the fold's models may learn from)
and `test_start`..`test_end` (the days forecast), all inclusive, with their day counts.

Series of different lengths (bokeh's GOOG starts four years after AAPL): every series gets the
same folds and test days counted back from its own last day, and trains on whatever history it
has before them; series that end on the same day are tested on the same dates. A series too
short for the folds is a `UserError` naming it.
"""

from __future__ import annotations

import pandas as pd
from sklearn.model_selection import TimeSeriesSplit

from pipeline import io, paths
from pipeline.cli import UserError, run
from pipeline.params import SplitParams, load_params

MIN_TRAIN_DAYS = 20  # fewer leaves a model nothing to learn from


def fold_indices(n_days: int, split: SplitParams) -> list[tuple[range, range]]:
    """(train days, test days) per fold over `n_days` trading days, via `TimeSeriesSplit`."""
    needed = split.n_windows * split.test_size + split.gap + MIN_TRAIN_DAYS
    if n_days < needed:
        raise UserError(
            f"split.test_size: {split.n_windows} folds x {split.test_size} test days + gap {split.gap} "
            f"+ {MIN_TRAIN_DAYS} train days need {needed} days, the series has {n_days}"
        )
    splitter = TimeSeriesSplit(
        n_splits=split.n_windows, test_size=split.test_size, gap=split.gap, max_train_size=split.max_train_size
    )
    return [
        (range(train[0], train[-1] + 1), range(test[0], test[-1] + 1)) for train, test in splitter.split(range(n_days))
    ]


def make_folds(prices: pd.DataFrame, split: SplitParams) -> dict[str, list[dict]]:
    """Folds over each series' trading days, as dates, keyed by `unique_id` in sorted order."""
    folds = {}
    for unique_id, rows in prices.groupby("unique_id", sort=True):
        days = rows["ds"].dt.strftime("%Y-%m-%d").tolist()
        try:
            indices = fold_indices(len(days), split)
        except UserError as err:
            raise UserError(f"{err} (series {unique_id})") from None
        folds[unique_id] = [
            {
                "fold": k,
                "history_start": days[train.start],
                "train_end": days[train.stop - 1],
                "test_start": days[test.start],
                "test_end": days[test.stop - 1],
                "n_train": len(train),
                "n_test": len(test),
            }
            for k, (train, test) in enumerate(indices)
        ]
    return folds


def main() -> None:
    prices = io.read_table(paths.PRICES, ["unique_id", "ds"])
    folds = make_folds(prices, load_params().split)
    io.write_json(folds, paths.FOLDS)
    n = sum(len(f) for f in folds.values())
    print(f"split: {n} folds over {len(folds)} series -> {paths.FOLDS}")


if __name__ == "__main__":
    run(main)
