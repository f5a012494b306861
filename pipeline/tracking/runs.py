"""The MLflow runs of one pipeline run: a parent, one child per model, one `comparison` child.

A model run holds its params (the `params.yaml` sections its stage read), tags saying what it is
and what it read and wrote, the evaluate stage's scores (the same keys for every model, overall
and `fold/<key>` with step = fold), its training curves, the prices as its dataset input, and
per series its fitted model (`flavours`). A model whose outputs are unchanged since they were
logged to this store is not logged again: the pipeline run links the earlier run.

Only FINISHED runs count as logged. A `track` that is killed leaves its runs RUNNING; each run
carries a `track_process` tag (host and process id) by which the next `track` on that host
marks them FAILED (`fail_leftovers`).
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.entities import Metric, Param, RunTag
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from pipeline import io, paths, tuning_report
from pipeline.forecast import recent_prices
from pipeline.params import Params
from pipeline.tracking import flavours, store
from pipeline.tracking.provenance import ModelOutputs, flat_params, key_part, learned_text

PROCESS_TAG = "track_process"  # `<host>:<pid>` of the `track` logging the run


def process_tag() -> str:
    """This process's `track_process` tag."""
    return f"{socket.gethostname()}:{os.getpid()}"


def fail_leftovers(experiment_id: str) -> list[str]:
    """Mark FAILED the runs of the experiment that a killed `track` on this host left RUNNING
    (their `track_process` is a process that is gone); return their ids.

    Not a run of a `track` still logging (a parallel experiment's, `dvc queue start -j 2`), nor
    one from another host, whose liveness this host cannot see: that host's next `track` marks it.
    """
    client, host = mlflow.MlflowClient(), socket.gethostname()
    running = client.search_runs(
        [experiment_id], f"attributes.status = 'RUNNING' and tags.{PROCESS_TAG} LIKE '{host}:%'", max_results=1000
    )
    gone = []
    for run in running:
        owner, _, pid = run.data.tags[PROCESS_TAG].rpartition(":")
        if owner == host and pid.isdigit() and int(pid) > 0 and not _alive(int(pid)):
            client.set_terminated(run.info.run_id, "FAILED")
            gone.append(run.info.run_id)
    return gone


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: no signal, only the check that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


@dataclass(frozen=True)
class PipelineRun:
    """The parent run of one pipeline run, and the tags each of its runs carries."""

    client: mlflow.MlflowClient
    experiment_id: str
    run_id: str
    tags: dict[str, str]  # pipeline_run, track_process, git_commit, git_dirty, md5 of the inputs

    @classmethod
    @contextmanager
    def started(cls, experiment_id: str, name: str, tags: dict[str, str]) -> Iterator[PipelineRun]:
        """The new parent run `name`, finished when the block ends (failed if it fails)."""
        client = mlflow.MlflowClient()
        parent = cls(
            client, experiment_id, client.create_run(experiment_id, run_name=name, tags=tags).info.run_id, tags
        )
        with _closing(client, parent.run_id):
            yield parent

    def link(self, tags: dict[str, str]) -> None:
        """Tag the parent: `run.<model>` with the run of each model, `champion.<series>`."""
        self.client.log_batch(self.run_id, tags=[RunTag(k, v) for k, v in tags.items()])

    def _child(self, name: str, tags: dict[str, str]) -> str:
        tags = {**self.tags, **tags, MLFLOW_PARENT_RUN_ID: self.run_id}
        return self.client.create_run(self.experiment_id, run_name=name, tags=tags).info.run_id

    def logged(self, outputs: ModelOutputs):
        """The latest finished run of this model with these outputs' md5s, or `None`."""
        found = self.client.search_runs(
            [self.experiment_id],
            f"tags.model = '{outputs.name}' and tags.output_md5 = '{outputs.predictions_md5}' "
            f"and tags.model_md5 = '{outputs.model_md5}' and attributes.status = 'FINISHED'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        return found[0] if found else None

    def log_model(
        self, outputs: ModelOutputs, params: Params, metrics: list[Metric], prices: pd.DataFrame, source: Path
    ):
        """Log one model's run (see the module docstring); return it as MLflow now has it.

        `metrics` are from `model_metrics`; `prices` is the prices table, `source` its path.
        """
        manifest = outputs.manifest
        tags = {
            "model": outputs.name,
            "stage": manifest.get("stage", outputs.name),
            "family": manifest.get("description", manifest["family"]),
            "series": ",".join(manifest["series"]),
            "output": outputs.predictions.as_posix(),
            "output_md5": outputs.predictions_md5,
            "models": outputs.directory.as_posix(),
            "model_md5": outputs.model_md5,
            **{f"learned.{key_part(uid)}": learned_text(e.get("learned", {})) for uid, e in manifest["series"].items()},
        }
        run_id = self._child(outputs.name, {k: v for k, v in tags.items() if v})
        # Params first: MLflow copies them into each model logged. Metrics last: it copies those
        # too, with one query per metric key and model.
        params = [Param(k, v) for k, v in flat_params(params, manifest.get("params_sections", [])).items()]
        # What the model read beside the prices (`features.covariates`, or none: ARIMA without exog)
        covariates = manifest["params"].get("covariates", [])
        params.append(Param("covariates", json.dumps(covariates)))
        tuning = io.read_json(paths.tuning(outputs.name)) if paths.tuning(outputs.name).is_file() else {}
        if tuning.get("tuned"):  # what each (series, fold) study chose
            params += [Param(k, v) for k, v in tuning_report.chosen_params(tuning, key_part).items()]
        self.client.log_batch(run_id, params=params)
        with mlflow.start_run(run_id=run_id):
            with warnings.catch_warnings():  # a local path matches two of MLflow's source types, both right
                warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
                dataset = mlflow.data.from_pandas(
                    prices, source=str(source), name="prices", digest=self.tags[f"md5.{paths.PRICES.as_posix()}"]
                )
            mlflow.log_input(dataset, context="training")
            if tuning.get("tuned"):  # every trial as a table, and the whole report
                mlflow.log_table(pd.DataFrame(tuning_report.trials_table(tuning)), artifact_file="tuning_trials.json")
                mlflow.log_dict(tuning, "tuning.json")
            uris = {}
            for uid in manifest["series"]:
                recent = recent_prices(prices, uid, covariates)
                uris[uid] = flavours.log_forecaster(outputs.directory, manifest, uid, recent)
            served = [RunTag(f"forecaster.{key_part(uid)}", uri) for uid, uri in uris.items()]
            self.client.log_batch(run_id, metrics=metrics, tags=served)
        return self.client.get_run(run_id)

    def log_comparison(
        self, report: dict, params: Params, sections: list[str], tags: dict, artifacts: list[Path]
    ) -> str:
        """The `comparison` run: every model's overall scores as `<model>.<key>` and
        `h<h>/<model>.<key>`, the tests and buy-and-hold (`tests_by_key`), the reports as
        artifacts, `tags` (`run.<model>`, `champion.<series>`, `champion.h<h>.<series>`); returns
        its id."""
        run_id = self._child("comparison", {"series": ",".join(report["series"]), **tags})
        now = _now()
        metrics = [
            Metric(key, value, now, 0)
            for model, scores in report["models"].items()
            for key, value in scores_by_key(scores, prefix=f"{model}.").items()
        ]
        metrics += [Metric(key, value, now, 0) for key, value in tests_by_key(report).items()]
        params = [Param(k, v) for k, v in flat_params(params, sections).items()]
        with _closing(self.client, run_id):
            self.client.log_batch(run_id, metrics=metrics, params=params)
            for path in artifacts:
                if path.is_dir():
                    self.client.log_artifacts(run_id, str(path), artifact_path=path.name)
                else:
                    self.client.log_artifact(run_id, str(path))
        return run_id


def scores_by_key(scores: dict, prefix: str = "") -> dict[str, float]:
    """One model's scores from `metrics.json` as MLflow keys: the shortest horizon's as
    `<prefix><key>` (as before horizons), every horizon's as `h<h>/<prefix><key>`, and nested
    scores flat (`<prefix>trading/sharpe`)."""
    out = flat_numbers({key: value for key, value in scores.items() if key != "by_horizon"}, prefix)
    for h, by_key in scores.get("by_horizon", {}).items():
        out.update(flat_numbers(by_key, f"h{h}/{prefix}"))
    return out


def tests_by_key(report: dict) -> dict[str, float]:
    """The comparison run's keys for what `metrics.json` holds beside the models: per horizon
    `h<h>/spa_pvalue`, `h<h>/<model>.in_mcs` (1 or 0), `h<h>/<model>.<cross-series key>`, and
    `buy_and_hold/<key>`."""
    out = flat_numbers(report["buy_and_hold"], "buy_and_hold/")
    tests = report["tests"]
    for h, spa in tests["spa"].items():
        out[f"h{h}/spa_pvalue"] = _number(spa and spa["pvalue"])
    for h, mcs in tests["mcs"].items():
        out.update({f"h{h}/{m}.in_mcs": float(mcs is not None and m in mcs["included"]) for m in report["models"]})
    for h, by_model in tests["cross_series"].items():
        for model, summary in by_model.items():
            out.update(flat_numbers(summary, f"h{h}/{model}."))
    return out


def flat_numbers(scores: dict, prefix: str = "") -> dict[str, float]:
    """`scores` as `<prefix><key>` numbers (null is NaN), nested mappings as `<key>/<inner key>`;
    lists (names, not scores) are left out."""
    out = {}
    for key, value in scores.items():
        if isinstance(value, dict):
            out.update(flat_numbers(value, f"{prefix}{key}/"))
        elif not isinstance(value, list):
            out[f"{prefix}{key}"] = _number(value)
    return out


def model_metrics(name: str, report: dict, evaluation: dict, manifest: dict) -> list[Metric]:
    """A model run's metrics: `reports/metrics.json`'s scores (null is NaN; `scores_by_key`),
    `fold/<key>` per fold (one step ahead) from `reports/evaluation.json` (step = fold) and the
    training curves in the model's manifest, `history/<series>/fold_<k>/<curve>` (step = epoch)."""
    now = _now()
    out = [Metric(key, value, now, 0) for key, value in scores_by_key(report["models"][name]).items()]
    for fold, by_model in evaluation["folds"].items():
        by_key = scores_by_key(by_model[name], prefix="fold/")
        out += [Metric(key, value, now, int(fold)) for key, value in by_key.items()]
    for uid, by_fold in manifest.get("history", {}).items():
        for fold, curves in by_fold.items():
            for curve, values in curves.items():
                key = f"history/{key_part(uid)}/fold_{fold}/{curve}"
                out += [Metric(key, _number(v), now, epoch) for epoch, v in enumerate(values)]
    return out


@contextmanager
def _closing(client: mlflow.MlflowClient, run_id: str) -> Iterator[None]:
    """Mark run `run_id` finished after the block, or failed if it fails (a killed process
    leaves it running: only finished runs count as logged). A server that is gone is not asked:
    the run stays RUNNING and the next `track` marks it (`fail_leftovers`)."""
    try:
        yield
    except BaseException:
        # The client's retries would take seconds (minutes if the server hangs); the probe 3 s at most.
        if store.unreachable(mlflow.get_tracking_uri()) is None:
            with suppress(Exception):  # the store may be what failed
                client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")


def _now() -> int:
    return int(time.time() * 1000)


def _number(value) -> float:
    return math.nan if value is None else float(value)
