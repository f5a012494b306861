"""Stage `track`, the last: log what the pipeline's outputs hold to MLflow.

    python -m pipeline.track    # params: mlflow.*  ->  data/tracked.json (and the MLflow store)

It reads the DVC outputs (prices, folds, each model's predictions table and `models/<name>/`,
the evaluate stage's reports) and logs one parent run per pipeline run with a child run per
model and a `comparison` child (`pipeline.tracking.runs`), then points each series' registry
aliases `champion-h<h>` (and `champion`, the shortest horizon's) at the champions
(`pipeline.tracking.registry`). It scores nothing itself.

`data/tracked.json` is its receipt: which outputs were tracked (their md5s) and the champions,
with no run ids, times or URIs, so the same outputs give the same bytes. It is written last: a
failed run leaves the previous receipt, and DVC runs `track` again. `STOCKCAST_TRACKING=off`
logs nothing and writes the receipt with `"tracking": "off"`.
"""

from __future__ import annotations

from pipeline import io, paths, scoring
from pipeline.cli import run
from pipeline.params import load_params
from pipeline.tracking import store
from pipeline.tracking.provenance import ModelOutputs, model_outputs

# The comparison run's artifacts.
REPORTS = (paths.METRICS, paths.EVALUATION, paths.LEADERBOARD, paths.PLOTS, paths.DIAGNOSTICS)


def receipt(experiment: str, tracking: bool, outputs: list[ModelOutputs], champions: dict[int, dict[str, str]]) -> dict:
    """`data/tracked.json`'s content: the tracked outputs' md5s and the champions, those of the
    shortest horizon as `champions` and every horizon's as `champions_by_horizon`."""
    models = {o.name: {"predictions_md5": o.predictions_md5, "model_md5": o.model_md5} for o in outputs}
    return {
        "experiment": experiment,
        "tracking": "on" if tracking else "off",
        "models": models,
        "champions": champions[min(champions)],
        "champions_by_horizon": {str(h): by_series for h, by_series in champions.items()},
    }


def main() -> None:
    params = load_params()
    on = store.enabled()
    if on:  # an unreachable server fails first, in about a second, before mlflow is imported
        root, uri = store.connect()
    report, evaluation = io.read_json(paths.METRICS), io.read_json(paths.EVALUATION)
    outputs = [model_outputs(name) for name in report["models"]]
    champions = {h: scoring.champions(report, h) for h in scoring.horizons(report)}
    if on:
        from pipeline.tracking import session

        session.log(root, uri, params, report, evaluation, outputs, champions, [p for p in REPORTS if p.exists()])
    else:
        print(f"track: {store.SWITCH_ENV}=off: nothing logged")
    io.write_json(receipt(params.mlflow.experiment, on, outputs, champions), paths.TRACKED)


if __name__ == "__main__":
    run(main)
