"""One pipeline run's logging, in order: the runs a killed `track` left RUNNING marked FAILED,
the parent run, each model's run (or the earlier run of unchanged outputs), the comparison, the
registry's champions, then the parent's links to all."""

from __future__ import annotations

from pathlib import Path

from pipeline import io, paths
from pipeline.params import Params
from pipeline.tracking import provenance, registry, runs, store
from pipeline.tracking.provenance import ModelOutputs, key_part


def log(
    root: Path,
    uri: str,
    params: Params,
    report: dict,
    evaluation: dict,
    outputs: list[ModelOutputs],
    champions: dict[int, dict[str, str]],
    artifacts: list[Path],
) -> None:
    """Log the pipeline run to the store `connect` returned (`root`, `uri`); print what it did.

    `champions` maps each horizon, shortest first, to each series' champion at that horizon.
    """
    prices = io.read_table(paths.PRICES, ["unique_id", "ds"])
    inputs = {f"md5.{p.as_posix()}": provenance.file_md5(p) for p in (paths.PRICES, paths.FOLDS)}
    name = provenance.pipeline_run_id()
    tags = {"pipeline_run": name, runs.PROCESS_TAG: runs.process_tag(), **provenance.git_state(root), **inputs}
    with store.as_user_error(uri, retry="run `dvc repro`"):
        experiment_id = store.experiment(params.mlflow.experiment, root, uri)
        failed = runs.fail_leftovers(experiment_id)
        if failed:
            print(f"track: marked FAILED {len(failed)} runs that a killed track left RUNNING")
        with runs.PipelineRun.started(experiment_id, name, tags) as parent:
            logged, new = {}, []
            for entry in outputs:
                logged[entry.name] = parent.logged(entry)
                if logged[entry.name] is None:
                    metrics = runs.model_metrics(entry.name, report, evaluation, entry.manifest)
                    logged[entry.name] = parent.log_model(entry, params, metrics, prices, root / paths.PRICES)
                    new.append(entry.name)
            shortest = min(champions)
            links = {f"run.{model}": run.info.run_id for model, run in logged.items()}
            links.update({f"champion.{key_part(uid)}": model for uid, model in champions[shortest].items()})
            for h, by_series in champions.items():
                links.update({f"champion.h{h}.{key_part(uid)}": model for uid, model in by_series.items()})
            used = {section for o in outputs for section in o.manifest.get("params_sections", [])}
            sections = [s for s in type(params).model_fields if s in used]
            comparison = parent.log_comparison(report, params, [*sections, "evaluate"], links, artifacts)
            versions = {}  # (series, horizon) -> the version its alias points at
            for uid in champions[shortest]:
                by_model: dict[str, list[int]] = {}
                for h, by_series in champions.items():
                    by_model.setdefault(by_series[uid], []).append(h)
                for model, horizons in by_model.items():
                    scores = report["series"][uid][model]
                    version = registry.register(
                        uid, model, logged[model], scores, name, horizons, shortest=shortest in horizons
                    )
                    versions.update({(uid, h): version for h in horizons})
            parent.link({**links, "run.comparison": comparison})
    unchanged = len(outputs) - len(new)
    print(f"track: pipeline run '{name}': {len(new)} model runs logged, {unchanged} unchanged since logged, in {uri}")
    print(f"track: runs at {store.ui_link(uri, experiment_id)}")
    for h, by_series in champions.items():
        for uid, model in by_series.items():
            rmse = report["series"][uid][model]["by_horizon"][str(h)]["rmse"]
            print(
                f"track: {uid} h={h}: champion {model} (RMSE {rmse:.4g}) is "
                f"models:/{registry.registered_name(uid)}@{registry.alias(h)}, version {versions[uid, h].version}"
            )
