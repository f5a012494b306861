"""Walk-forward folds: scikit-learn's TimeSeriesSplit, index for index, written as dates."""

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import TimeSeriesSplit

from pipeline.cli import UserError
from pipeline.params import SplitParams
from pipeline.split import fold_indices, make_folds


@pytest.mark.parametrize(
    "split",
    [
        SplitParams(n_windows=5, test_size=10),
        SplitParams(n_windows=3, test_size=7, gap=4),
        SplitParams(n_windows=4, test_size=5, max_train_size=30),
        SplitParams(n_windows=2, test_size=12, gap=2, max_train_size=25),
    ],
)
def test_fold_indices_match_time_series_split(split):
    n = 100
    reference = TimeSeriesSplit(
        n_splits=split.n_windows, test_size=split.test_size, gap=split.gap, max_train_size=split.max_train_size
    )
    ours = fold_indices(n, split)
    assert len(ours) == split.n_windows
    for (train, test), (ref_train, ref_test) in zip(ours, reference.split(np.arange(n)), strict=True):
        assert list(train) == ref_train.tolist()
        assert list(test) == ref_test.tolist()


def test_too_large_test_size_names_the_key():
    message = r"split.test_size: 5 folds x 30 test days \+ gap 0 \+ 20 train days need 170 days, the series has 100"
    with pytest.raises(UserError, match=message):
        fold_indices(100, SplitParams(n_windows=5, test_size=30))


def test_make_folds_gives_dates_of_the_price_calendar():
    days = pd.bdate_range("2021-01-01", periods=60).astype("datetime64[ns]")
    prices = pd.DataFrame({"unique_id": "X", "ds": days, "close": np.linspace(10, 20, 60)})
    folds = make_folds(prices, SplitParams(n_windows=2, test_size=5, max_train_size=30))
    assert list(folds) == ["X"]
    first, second = folds["X"]
    day = lambda i: days[i].strftime("%Y-%m-%d")  # noqa: E731
    # 60 days: test days 50..54 and 55..59; train the 30 days before each.
    assert first == {
        "fold": 0,
        "history_start": day(20),
        "train_end": day(49),
        "test_start": day(50),
        "test_end": day(54),
        "n_train": 30,
        "n_test": 5,
    }
    assert second["test_start"] == day(55) and second["test_end"] == day(59) and second["train_end"] == day(54)


def test_folds_do_not_depend_on_window_params():
    """The split reads the prices alone: no `features.*` param can move a fold."""
    import inspect

    assert list(inspect.signature(make_folds).parameters) == ["prices", "split"]


def test_series_of_different_lengths_each_get_the_same_test_days_at_their_own_end():
    """The rule for a long table of series that start (or end) on different days: every series gets
    the same number of folds and test days, counted back from its own last day, and its train part
    is whatever history it has (bokeh's GOOG starts four years after AAPL)."""
    days = pd.bdate_range("2021-01-01", periods=80).astype("datetime64[ns]")
    prices = pd.concat(
        [
            pd.DataFrame({"unique_id": "LONG", "ds": days, "close": 1.0}),
            pd.DataFrame({"unique_id": "SHORT", "ds": days[35:], "close": 1.0}),
            pd.DataFrame({"unique_id": "EARLY", "ds": days[:70], "close": 1.0}),
        ]
    )
    folds = make_folds(prices, SplitParams(n_windows=2, test_size=10))
    day = lambda i: days[i].strftime("%Y-%m-%d")  # noqa: E731
    assert [f["test_start"] for f in folds["LONG"]] == [day(60), day(70)]
    assert [f["test_start"] for f in folds["SHORT"]] == [day(60), day(70)]  # the same calendar days
    assert [f["test_end"] for f in folds["EARLY"]] == [day(59), day(69)]  # its own last day
    assert [f["n_train"] for f in folds["SHORT"]] == [25, 35] and [f["n_train"] for f in folds["LONG"]] == [60, 70]
    with pytest.raises(UserError, match=r"series SHORT"):  # too short for the folds: named
        make_folds(prices, SplitParams(n_windows=2, test_size=20))
