"""The walk-forward loop: what each model sees, what it returns, in price units."""

import joblib
import numpy as np
import pandas as pd
import pytest

from pipeline.cli import UserError
from pipeline.models.base import Model, cutoff_values
from pipeline.models.naive import Drift, Naive
from pipeline.params import SplitParams
from pipeline.split import make_folds
from pipeline.walkforward import Intervals, walk_forward


def _inputs(gap=0, max_train_size=None, n=120, ids=("A", "B")):
    rng = np.random.default_rng(1)
    days = pd.bdate_range("2020-01-01", periods=n).astype("datetime64[ns]")
    prices = pd.concat(
        [
            pd.DataFrame({"unique_id": uid, "ds": days, "close": 50 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))})
            for uid in ids
        ],
        ignore_index=True,
    )
    folds = make_folds(prices, SplitParams(n_windows=3, test_size=10, gap=gap, max_train_size=max_train_size))
    return prices, folds


class Spy(Model):
    """Records the train part it was fitted on and the history it forecast from; has its own
    90% interval, exp(+-0.1) around its forecast."""

    own_intervals = True
    levels = (90,)

    def fit(self, y, X=None):
        self.train_ = y.copy()
        return self

    def predict(self, y, n, X=None):
        self.history_ = y.copy()
        return cutoff_values(y, n) + 0.01

    def predict_interval(self, y, n, X=None):
        last = cutoff_values(y, n)[..., None]  # (n, 1 horizon, 1 level)
        return np.stack([last - 0.1, last + 0.1], axis=-1)


def test_naive_forecast_is_exactly_yesterdays_price():
    prices, folds = _inputs()
    table, _ = walk_forward(Naive(), prices, folds)
    assert table.columns.tolist() == ["unique_id", "ds", "cutoff", "h", "fold", "y", "y_hat"]
    assert len(table) == 2 * 3 * 10
    for uid, rows in table.groupby("unique_id"):
        series = prices[prices.unique_id == uid].set_index("ds").close
        previous = series.shift(1).loc[rows.ds].to_numpy()
        assert np.array_equal(rows.y_hat.to_numpy(), previous)  # bit for bit, no exp(log()) rounding
        assert np.array_equal(rows.y.to_numpy(), series.loc[rows.ds].to_numpy())


@pytest.mark.parametrize(("gap", "max_train_size"), [(0, None), (3, None), (2, 40)])
def test_fit_sees_only_the_train_part_and_predict_the_history_before_each_day(gap, max_train_size):
    prices, folds = _inputs(gap=gap, max_train_size=max_train_size)
    table, fitted = walk_forward(Spy(), prices, folds, intervals=Intervals("model", (90,), 0.01))
    a = prices[prices.unique_id == "A"].reset_index(drop=True)
    log_a = np.log(a.close.to_numpy())
    for (uid, k, spy), fold in zip(fitted[:3], folds["A"], strict=True):
        assert (uid, k) == ("A", fold["fold"])
        day = {
            k: int(a.index[a.ds == pd.Timestamp(fold[k])][0])
            for k in ("history_start", "train_end", "test_start", "test_end")
        }
        assert np.array_equal(spy.train_, log_a[day["history_start"] : day["train_end"] + 1])
        assert np.array_equal(spy.history_, log_a[day["history_start"] : day["test_end"] + 1])
        assert day["test_start"] - day["train_end"] == gap + 1
    # Forecasts map back to prices relative to yesterday: exp(0.01) up, interval exp(+-0.1).
    rows = table[table.unique_id == "A"]
    previous = a.set_index("ds").close.shift(1).loc[rows.ds].to_numpy()
    assert np.allclose(rows.y_hat / previous, np.exp(0.01))
    assert np.allclose(rows.y_lo_90 / previous, np.exp(-0.1)) and np.allclose(rows.y_hi_90 / previous, np.exp(0.1))


def test_every_horizon_forecasts_the_test_days_from_cutoffs_h_days_before():
    prices, folds = _inputs()
    table, _ = walk_forward(Naive((1, 3, 9)), prices, folds)
    sizes = table.groupby(["unique_id", "fold", "h"]).size()
    assert sizes.groupby("h").unique().map(list).to_dict() == {1: [10], 3: [8], 9: [2]}  # 10 - h + 1 per fold
    sorted_rows = table.sort_values(["unique_id", "h", "ds"], kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(table, sorted_rows)
    for (uid, fold, h), rows in table.groupby(["unique_id", "fold", "h"]):
        series = prices[prices.unique_id == uid].reset_index(drop=True)
        entry = folds[uid][fold]
        position = {day: i for i, day in enumerate(series.ds)}
        target = np.array([position[d] for d in rows.ds])
        test_start, test_end = position[pd.Timestamp(entry["test_start"])], position[pd.Timestamp(entry["test_end"])]
        assert target[0] == test_start + h - 1 and target[-1] == test_end  # test days only, every one of them
        assert np.array_equal([position[c] for c in rows.cutoff], target - h)  # h trading days before
        assert np.array_equal(rows.y_hat.to_numpy(), series.close.to_numpy()[target - h])  # the cutoff's price


def test_each_fold_starts_from_an_unfitted_copy():
    prices, folds = _inputs()
    model = Drift()
    _, fitted = walk_forward(model, prices, folds)
    assert not hasattr(model, "drift_")
    assert len({id(m) for _, _, m in fitted}) == len(fitted) == 6


class CountingWarm(Model):
    warm_start = True

    def fit(self, y, X=None):
        self.fits_ = getattr(self, "fits_", 0) + 1
        return self

    def predict(self, y, n, X=None):
        return float(self.fits_) + cutoff_values(y, n)


def test_warm_start_models_carry_state_fold_to_fold():
    prices, folds = _inputs()
    table, fitted = walk_forward(CountingWarm(), prices, folds)
    assert [m.fits_ for _, _, m in fitted] == [3, 3, 3, 3, 3, 3]  # one object per series, fitted 3 times
    ratio = np.log(table.y_hat.to_numpy() / table.groupby("unique_id").y.shift(1).to_numpy())
    assert np.allclose(ratio[~np.isnan(ratio)][:9], 1.0)  # fold 0 of A: fitted once
    assert np.allclose(ratio[10:19], 2.0) and np.allclose(ratio[20:29], 3.0)


def test_parallel_equals_serial():
    prices, folds = _inputs(ids=("A", "B", "C"))
    serial, _ = walk_forward(Drift(), prices, folds, n_jobs=1)
    parallel, _ = walk_forward(Drift(), prices, folds, n_jobs=2)
    pd.testing.assert_frame_equal(serial, parallel, check_exact=True)


def test_folds_from_another_data_set_are_a_clear_error():
    prices, folds = _inputs()
    with pytest.raises(UserError, match="series Z is not in the prices table"):
        walk_forward(Naive(), prices, {"Z": folds["A"]})


def test_warm_up_runs_prepare_in_the_workers_and_the_loop_reuses_them():
    """The stage starts its workers first (they import the model libraries while it reads its
    inputs); the walk-forward then runs on those same processes."""
    import os

    from pipeline.parallel import parallel_backend, warm_up
    from pipeline.params import ParallelParams

    assert list(warm_up(os.getpid, 1)) == []  # in-process: nothing to start
    with parallel_backend(ParallelParams(backend="loky", n_jobs=2)):
        warmed = set(warm_up(os.getpid, 2))
        used = set(joblib.Parallel(n_jobs=2)(joblib.delayed(os.getpid)() for _ in range(8)))
    assert os.getpid() not in warmed and warmed <= used
