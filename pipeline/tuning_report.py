"""`reports/tuning/<model>.json`, its timings, and the leaderboard's tuning section.

A model stage writes both files (`pipeline.train`): the report, from its fitted `Tuned` models
(`pipeline.tuning`), holds per series and fold the chosen values, their inner score, the fits
and every trial, and nothing that varies run to run; the seconds are in the other file. An
untuned model's report says only that. Pure functions; the stages do the reading and writing.
"""

from __future__ import annotations

import importlib.metadata
import json

from pipeline.params import TuneParams


def untuned(name: str) -> dict:
    """The report (and the seconds file) of a model that was not tuned."""
    return {"model": name, "tuned": False}


def report(name: str, tune: TuneParams, space: dict, fitted: list[tuple[str, int, object]]) -> dict:
    """The tuning report of model `name` from `walk_forward`'s fitted `Tuned` models."""
    series: dict[str, dict] = {}
    for uid, fold, model in fitted:
        series.setdefault(uid, {})[str(fold)] = model.summary()
    return {
        "model": name,
        "tuned": True,
        "sampler": f"optuna {importlib.metadata.version('optuna')} TPESampler(seed={tune.seed})",
        "trials": tune.trials,
        "inner_windows": tune.inner_windows,
        "inner_test_size": tune.inner_test_size,
        "horizon": tune.horizon,
        "space": space,
        "fits": sum(entry["fits"] for by_fold in series.values() for entry in by_fold.values()),
        "series": series,
    }


def seconds(name: str, fitted: list[tuple[str, int, object]], stage_seconds: float) -> dict:
    """Wall-clock seconds of each (series, fold) study and its final fit, and of the whole
    stage (which also ran each series' calibration fold, tuned the same way)."""
    series: dict[str, dict] = {}
    for uid, fold, model in fitted:
        series.setdefault(uid, {})[str(fold)] = round(model.seconds_, 3)
    return {"model": name, "tuned": True, "stage_seconds": round(stage_seconds, 3), "series": series}


def values_text(values: dict) -> str:
    """Chosen values as a table cell: `units [32, 16], dropout 0.12, learning_rate 0.0031`."""
    return ", ".join(f"{key} {_value(v)}" for key, v in values.items())


def _value(value) -> str:
    if isinstance(value, float):
        return format(value, ".3g")
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return str(value)


def section(reports: dict[str, dict], timings: dict[str, dict], words: dict) -> list[str]:
    """The leaderboard's `## Tuning` lines for the tuned models' reports (and their seconds,
    where a seconds file is there); nothing when no model was tuned. `words` is the section's
    prose (`leaderboard_text.yaml`, `tuning`)."""
    tuned = {name: r for name, r in reports.items() if r.get("tuned")}
    if not tuned:
        return []
    lines = ["## Tuning", ""]
    for name, r in tuned.items():
        clock = timings.get(name, {})
        lines += [words["intro"].format(model=name, **{k: r[k] for k in ("trials", "inner_windows", "horizon")})]
        lines += ["", f"Inner folds of {r['inner_test_size']} days; sampler {r['sampler']}.", ""]
        lines += ["| series | fold | chosen | inner RMSE / naive | fits | seconds |", "|---|---:|---|---:|---:|---:|"]
        for uid, by_fold in r["series"].items():
            for fold, entry in by_fold.items():
                spent = clock.get("series", {}).get(uid, {}).get(fold)
                cells = [uid, fold, values_text(entry["chosen"]), f"{entry['score']:.4f}", str(entry["fits"])]
                lines.append("| " + " | ".join([*cells, "n/a" if spent is None else f"{spent:.0f}"]) + " |")
        total = clock.get("stage_seconds")
        cost = words["cost"].format(model=name, fits=f"{r['fits']:,}")
        lines += ["", cost + ("" if total is None else " " + words["stage"].format(seconds=f"{total:,.0f}")), ""]
    return lines


def trials_table(report: dict) -> list[dict]:
    """Every trial of every (series, fold) study of a tuned model's report, one row each: the
    table the tracking stage logs to the model's MLflow run."""
    return [
        {
            "series": uid,
            "fold": int(fold),
            "trial": t["number"],
            "score": t["score"],
            "state": t["state"],
            **{key: _value(value) for key, value in t["values"].items()},
        }
        for uid, by_fold in report["series"].items()
        for fold, entry in by_fold.items()
        for t in entry["trials"]
    ]


def chosen_params(report: dict, part=str) -> dict[str, str]:
    """The chosen values as MLflow params, `tuned.<series>.fold_<k>.<key>` (the series id as
    `part` writes it in a key), values as JSON (every digit of a float)."""
    return {
        f"tuned.{part(uid)}.fold_{fold}.{key}": json.dumps(value)
        for uid, by_fold in report["series"].items()
        for fold, entry in by_fold.items()
        for key, value in entry["chosen"].items()
    }
