"""Stages `naive`, `arima`, `sklearn`, `lstm`: walk-forward forecasts of one model family.

    python -m pipeline.train naive     # -> data/predictions/naive.parquet and drift.parquet
    python -m pipeline.train arima     # params: arima.*            -> data/predictions/arima.parquet
    python -m pipeline.train sklearn   # params: sklearn.*, features.*
    python -m pipeline.train lstm      # params: lstm.*, features.*

Every family runs through the same loop (`pipeline.walkforward`) on the same folds and writes
the same table shape; the table's file stem is the model's name on the leaderboard.
"""

from __future__ import annotations

import sys
import time

from pipeline import io, paths, tracking
from pipeline.cli import UserError, run
from pipeline.params import Params, load_params
from pipeline.walkforward import parallel_backend, walk_forward

STAGES = ("naive", "arima", "sklearn", "lstm")


def build_models(stage: str, params: Params) -> dict:
    """The unfitted model(s) a stage runs, keyed by the name their table carries."""
    if stage == "naive":
        from pipeline.models.naive import Drift, Naive

        return {"naive": Naive(), "drift": Drift()}
    if stage == "arima":
        from pipeline.models.arima import Arima

        p = params.arima
        return {"arima": Arima(order=p.order, max_p=p.max_p, max_q=p.max_q, d=p.d, coverage=p.coverage)}
    if stage == "sklearn":
        from pipeline.models.regressor import Regressor, make_estimator

        p, f = params.sklearn, params.features
        return {"sklearn": Regressor(make_estimator(p.estimator, p.params, p.random_state), n_lags=f.n_lags, target=f.target)}
    from pipeline.models.recurrent import Recurrent

    p, f = params.lstm, params.features
    return {
        "lstm": Recurrent(
            cell=p.cell, units=tuple(p.units), dropout=p.dropout, epochs=p.epochs, batch_size=p.batch_size,
            learning_rate=p.learning_rate, patience=p.patience, validation_fraction=p.validation_fraction,
            seed=p.seed, warm_start=p.warm_start, n_lags=f.n_lags, target=f.target,
        )
    }  # fmt: skip


def describe(name: str, stage: str, fitted) -> dict:
    """What the leaderboard says of a model beside its scores, stored in its table's metadata.

    `parameter_counts` (optional in the model contract) maps weight blocks to sizes, e.g. a
    recurrent layer's W_xh, W_hh and bias; the total is the model's trainable parameters as
    fitted on the last fold.
    """
    counts = fitted.parameter_counts() if hasattr(fitted, "parameter_counts") else {}
    return {"model": name, "stage": stage, "n_params": int(sum(counts.values())), "parameter_counts": counts}


def main() -> None:
    if len(sys.argv) != 2 or sys.argv[1] not in STAGES:
        raise UserError(f"usage: python -m pipeline.train {{{'|'.join(STAGES)}}}")
    stage = sys.argv[1]
    params = load_params()
    tracker = tracking.start(params, stage)  # before any training: an unreachable server fails fast
    prices = io.read_table(paths.PRICES, ["unique_id", "ds"])
    folds = io.read_json(paths.FOLDS)
    with parallel_backend(params.parallel):  # one pool or cluster for all of the stage's models
        for name, model in build_models(stage, params).items():
            started = time.time()
            table, fitted = walk_forward(model, prices, folds, n_jobs=params.parallel.n_jobs, label=name)
            io.write_table(table, paths.predictions(name), metadata=describe(name, stage, fitted[-1]))
            if tracker:
                tracker.log_model_run(name, table, fitted, prices, folds, started)
            print(f"{stage}: {len(table)} forecasts -> {paths.predictions(name)}")


if __name__ == "__main__":
    run(main)
