"""The evaluate stage: scores from small hand-made tables, the metrics.json contract, the
leaderboard, and byte-identical reruns of the stage."""

import hashlib
import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import run_in

from pipeline import diagnostics, evaluate, io, leaderboard, plots, scoring
from pipeline.cli import UserError

N_DAYS, TEST_SIZE = 120, 20  # two folds of 20 test days per series


def make_prices() -> pd.DataFrame:
    """Two seeded random walks (one with an unchanged day in its last fold) and a constant series."""
    rng = np.random.default_rng(7)
    ds = pd.bdate_range("2020-01-01", periods=N_DAYS)
    walk_a = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, N_DAYS)))
    walk_b = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, N_DAYS)))
    walk_b[-5] = walk_b[-6]  # a day without a move
    frames = [
        pd.DataFrame({"unique_id": uid, "ds": ds, "close": price})
        for uid, price in (("AAA", walk_a), ("BBB", walk_b), ("FLAT", np.full(N_DAYS, 10.0)))
    ]
    return pd.concat(frames, ignore_index=True).astype({"unique_id": "str"})


def make_folds(prices: pd.DataFrame) -> dict:
    folds = {}
    for uid, rows in prices.groupby("unique_id", sort=True):
        days = rows["ds"].dt.strftime("%Y-%m-%d").tolist()
        folds[uid] = []
        for k in range(2):
            test_start = N_DAYS - (2 - k) * TEST_SIZE
            folds[uid].append(
                {
                    "fold": k,
                    "history_start": days[0],
                    "train_start": days[1],
                    "train_end": days[test_start - 1],
                    "test_start": days[test_start],
                    "test_end": days[test_start + TEST_SIZE - 1],
                }
            )
    return folds


def make_tables(prices: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """`naive`, a drifting model with intervals (`mymodel`) and one that peeks at the answer (`oracle`)."""
    frames = []
    for uid, rows in prices.groupby("unique_id", sort=True):
        price = rows["close"].to_numpy()
        start = N_DAYS - 2 * TEST_SIZE
        frames.append(
            pd.DataFrame(
                {
                    "unique_id": uid,
                    "ds": rows["ds"].to_numpy()[start:],
                    "fold": np.repeat([0, 1], TEST_SIZE),
                    "y": price[start:],
                    "y_prev": price[start - 1 : -1],
                }
            )
        )
    base = pd.concat(frames, ignore_index=True).astype({"unique_id": "str"})
    naive = base.assign(y_hat=base["y_prev"])
    drift = base.assign(y_hat=base["y_prev"] * 1.001, y_lo=base["y_prev"] * 0.98, y_hi=base["y_prev"] * 1.02)
    oracle = base.assign(y_hat=base["y_prev"] + 0.5 * (base["y"] - base["y_prev"]))
    columns = ["unique_id", "ds", "fold", "y", "y_hat"]
    return {"naive": naive[columns], "mymodel": drift[columns + ["y_lo", "y_hi"]], "oracle": oracle[columns]}


MYMODEL_METADATA = {
    "model": "mymodel",
    "stage": "test",
    "n_params": 1313,
    "parameter_counts": {"lstm W_xh": 128, "lstm W_hh": 1024, "lstm b": 128, "dense W_hy": 32, "dense b": 1},
}


@pytest.fixture(scope="module")
def inputs():
    prices = make_prices()
    folds = make_folds(prices)
    context = scoring.price_context(prices)
    return prices, folds, context, scoring.fold_scales(context, folds)


@pytest.fixture(scope="module")
def rows(inputs):
    prices, _, context, scales = inputs
    return scoring.forecast_rows(make_tables(prices), context, scales)


def test_metrics_report_has_the_contract_shape_and_valid_json(rows):
    report = evaluate.metrics_report(rows)
    assert list(report) == ["models", "series"]
    assert list(report["models"]) == ["mymodel", "naive", "oracle"]
    assert list(report["series"]) == ["AAA", "BBB", "FLAT"]
    for scores in [
        *report["models"].values(),
        *(s for by_model in report["series"].values() for s in by_model.values()),
    ]:
        assert tuple(scores) == scoring.METRIC_KEYS
        assert all(v is None or type(v) is float for k, v in scores.items() if k != "n_forecasts")
        assert type(scores["n_forecasts"]) is int
    json.dumps(report, allow_nan=False)  # no NaN or inf anywhere


def test_rmse_and_mae_recomputed_with_numpy_agree(rows, inputs):
    report = evaluate.metrics_report(rows)
    for model, table in make_tables(inputs[0]).items():
        error = table["y"].to_numpy() - table["y_hat"].to_numpy()
        assert report["models"][model]["rmse"] == pytest.approx(math.sqrt(np.mean(error**2)), rel=1e-12)
        assert report["models"][model]["mae"] == pytest.approx(np.mean(np.abs(error)), rel=1e-12)
        assert report["models"][model]["n_forecasts"] == len(table)
        for uid, part in table.groupby("unique_id"):
            e = part["y"].to_numpy() - part["y_hat"].to_numpy()
            assert report["series"][uid][model]["rmse"] == pytest.approx(math.sqrt(np.mean(e**2)), rel=1e-12)


def test_scores_against_the_baseline(rows):
    report = evaluate.metrics_report(rows)
    naive, oracle = report["models"]["naive"], report["models"]["oracle"]
    assert naive["rmse_vs_naive"] == 1.0 and naive["dm_stat_vs_naive"] is None and naive["dm_pvalue_vs_naive"] is None
    assert naive["directional_accuracy"] == 0.0  # no change forecast: no direction called
    # Halving every error quarters every squared error: RMSE ratio 0.5 on the moving series.
    assert report["series"]["AAA"]["oracle"]["rmse_vs_naive"] == pytest.approx(0.5)
    assert oracle["directional_accuracy"] == 1.0
    assert oracle["dm_stat_vs_naive"] < 0 and oracle["dm_pvalue_vs_naive"] < 0.05


def test_mase_uses_each_folds_train_part(rows, inputs):
    prices = inputs[0]
    price = prices.loc[prices["unique_id"] == "AAA", "close"].to_numpy()
    start = N_DAYS - 2 * TEST_SIZE
    scales = [np.mean(np.abs(np.diff(price[:start]))), np.mean(np.abs(np.diff(price[: start + TEST_SIZE])))]
    naive_errors = np.abs(np.diff(price[start - 1 :]))
    expected = np.mean(np.concatenate([naive_errors[:TEST_SIZE] / scales[0], naive_errors[TEST_SIZE:] / scales[1]]))
    assert evaluate.metrics_report(rows)["series"]["AAA"]["naive"]["mase"] == pytest.approx(expected, rel=1e-12)


def test_a_constant_series_gives_nulls_not_nan(rows):
    flat = evaluate.metrics_report(rows)["series"]["FLAT"]
    assert flat["mymodel"]["mase"] is None  # no price change in the train part
    assert flat["mymodel"]["directional_accuracy"] is None  # no day moved
    assert flat["mymodel"]["rmse_vs_naive"] is None  # the naive forecast is exact
    assert flat["mymodel"]["dm_stat_vs_naive"] is None  # constant loss differential
    assert flat["mymodel"]["rmse"] == pytest.approx(0.01)
    # A pooled MASE over a constant fold is undefined as well.
    assert evaluate.metrics_report(rows)["models"]["mymodel"]["mase"] is None


def test_unchanged_days_are_excluded_and_counted(rows):
    details = evaluate.model_details(rows, {"mymodel": MYMODEL_METADATA})
    # FLAT: 40 unchanged test days; BBB: 1.
    assert details["mymodel"]["direction_days_unchanged"] == 41
    assert details["mymodel"]["direction_days_scored"] == 3 * 2 * TEST_SIZE - 41
    assert details["mymodel"]["n_params"] == 1313 and details["naive"]["n_params"] is None
    assert details["mymodel"]["interval_coverage"] is not None and details["naive"]["interval_coverage"] is None


def test_pairwise_dm_is_antisymmetric(rows):
    pairs = evaluate.pairwise_dm(rows)
    assert sorted(pairs) == ["mymodel", "naive", "oracle"]
    assert pairs["oracle"]["naive"]["dm_stat"] == pytest.approx(-pairs["naive"]["oracle"]["dm_stat"])
    assert pairs["oracle"]["naive"]["dm_pvalue"] == pytest.approx(pairs["naive"]["oracle"]["dm_pvalue"])
    assert pairs["oracle"]["naive"]["dm_stat"] == pytest.approx(
        evaluate.metrics_report(rows)["models"]["oracle"]["dm_stat_vs_naive"]
    )


def test_leaderboard_names_every_model_and_says_who_beats_naive(rows, inputs):
    _, folds, context, _ = inputs
    report = evaluate.metrics_report(rows)
    stats = {
        uid: diagnostics.series_stats(g["ds"].to_numpy(), np.log(g["price"].to_numpy()), 10)[0]
        for uid, g in context.groupby("unique_id")
    }
    diagnosed = {"seasonal_period": 10, "series": stats}
    details = {
        "baseline": "naive",
        "alpha": 0.05,
        "models": evaluate.model_details(rows, {"mymodel": MYMODEL_METADATA}),
        "folds": evaluate.fold_report(rows),
        "dm_pairwise": evaluate.pairwise_dm(rows),
    }
    page = leaderboard.render(report, details, folds, [], diagnosed)
    assert "Beats the naive random walk at the 5% level: oracle" in page
    assert "| 1 | oracle |" in page  # ranked first by RMSE
    assert "| mymodel | 1,313 | lstm W_xh 128, lstm W_hh 1,024, lstm b 128, dense W_hy 32, dense b 1 |" in page
    assert "| mymodel | " in page.split("## Prediction intervals")[1]
    assert "| FLAT | 120 | constant | n/a | constant | n/a |" in page
    without_oracle = rows[rows["model"] != "oracle"]
    details["models"].pop("oracle")
    page = leaderboard.render(evaluate.metrics_report(without_oracle), details, folds, [], diagnosed)
    assert "**No model beats the naive random walk.**" in page
    assert "no evidence it beats naive" in page


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.assign(y_hat=t["y_hat"].where(t.index != 3, np.nan)), "column 'y_hat': 1 values are not finite"),
        (lambda t: t.assign(y=t["y"] * 1.01), "column 'y' differs from the target price"),
        (lambda t: t.assign(ds=t["ds"] + pd.Timedelta(days=365 * 30)), "forecasts are for days not in"),
        (lambda t: pd.concat([t, t.iloc[:1]]), "more than one forecast for AAA"),
        (lambda t: t.assign(fold=t["fold"] + 5), "fold 5 of AAA is not in"),
        (lambda t: t.assign(y_lo=t["y"]), "'y_lo' needs its partner"),
    ],
)
def test_a_bad_table_is_a_user_error_naming_it(inputs, change, message):
    prices, _, context, scales = inputs
    tables = make_tables(prices)
    tables["broken"] = change(tables["naive"])
    with pytest.raises(UserError, match="broken.parquet") as err:
        scoring.forecast_rows(tables, context, scales)
    assert message in str(err.value)


def test_reading_predictions_needs_a_table_and_keeps_the_plot_label_free(tmp_path):
    with pytest.raises(UserError, match="no predictions tables"):
        evaluate.read_predictions(tmp_path)
    tables = make_tables(make_prices())
    io.write_table(tables["naive"], tmp_path / "actual.parquet")
    with pytest.raises(UserError, match="'actual' is reserved"):
        evaluate.read_predictions(tmp_path)


def _write_inputs(repo):
    prices = make_prices()
    io.write_table(prices, repo / "data/prices.parquet")
    io.write_json(make_folds(prices), repo / "data/folds.json")
    for model, table in make_tables(prices).items():
        io.write_table(
            table, repo / f"data/predictions/{model}.parquet", metadata=MYMODEL_METADATA if model == "mymodel" else None
        )
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["evaluate"] = {"zoom_days": 10}
    params["diagnostics"] = {"seasonal_period": 10}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _digests(root):
    return {
        p.relative_to(root).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_the_stage_writes_every_report_and_a_rerun_is_byte_identical(repo_copy, monkeypatch):
    _write_inputs(repo_copy)
    assert run_in(repo_copy, "python", "-m", "pipeline.diagnostics").returncode == 0
    (repo_copy / "reports/plots/images").mkdir(parents=True, exist_ok=True)
    (repo_copy / "reports/plots/images/forecast_GONE.png").write_bytes(b"stale")
    result = run_in(repo_copy, "python", "-m", "pipeline.evaluate")
    assert result.returncode == 0, result.stderr
    first = _digests(repo_copy / "reports")
    assert {
        "metrics.json",
        "evaluation.json",
        "leaderboard.md",
        "plots/rmse_by_fold.csv",
        "plots/forecast/AAA.csv",
        "plots/cumulative/BBB.csv",
        "plots/images/zoom_FLAT.png",
        "diagnostics/decomposition_AAA.png",
    } <= set(first)
    assert "plots/images/forecast_GONE.png" not in first  # stale figures are removed
    metrics = json.loads((repo_copy / "reports/metrics.json").read_text())
    assert list(metrics["models"]) == ["mymodel", "naive", "oracle"]
    page = (repo_copy / "reports/leaderboard.md").read_text()
    assert all(f"| {model} |" in page for model in ("mymodel", "naive", "oracle"))
    assert "(plots/images/forecast_AAA.png)" in page and "(diagnostics/decomposition_AAA.png)" in page
    # The same inputs again, this time in this process, with the figures on parallel.n_jobs = 2
    # processes (13 figures are too few by default): the same bytes.
    monkeypatch.chdir(repo_copy)
    monkeypatch.setattr(plots, "MIN_TASKS_PER_PROCESS", 1)
    evaluate.main()
    diagnostics.main()
    assert _digests(repo_copy / "reports") == first
