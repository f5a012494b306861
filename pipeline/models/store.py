"""Fitted models as files: `models/<name>/`, what a forecast needs without MLflow.

    models/<name>/model.json     the manifest: family, constructor params, description, per series
                                 the directory and fold of its model and what it learned, and the
                                 training curves of every fold
    models/<name>/<series>/      the last fold's fitted model of that series, in the family's own
                                 files (JSON, safetensors, skops): no pickle, byte-identical reruns

`pipeline.models.loader.load` reads them back. This module is the writing side and the table
of families; it imports no model family itself.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pipeline import io
from pipeline.cli import UserError

MANIFEST = "model.json"
# family name in the manifest -> (module, class): the one table of families. The loader imports
# them by this table (tests/test_dvc_yaml.py reads it for the stages that load models).
FAMILIES = {
    "naive": ("pipeline.models.naive", "Naive"),
    "drift": ("pipeline.models.naive", "Drift"),
    "arima": ("pipeline.models.arima", "Arima"),
    "regressor": ("pipeline.models.regressor", "Regressor"),
    "recurrent": ("pipeline.models.recurrent", "Recurrent"),
    "scratch_rnn": ("pipeline.models.scratch_rnn", "ScratchRnn"),
}


def family_of(model) -> str:
    """The `FAMILIES` name of a model's class."""
    key = (type(model).__module__, type(model).__name__)
    for name, entry in FAMILIES.items():
        if entry == key:
            return name
    raise ValueError(f"{key} is not in pipeline.models.store.FAMILIES")


def series_directory(uid: str) -> str:
    """A series id (a ticker like `^GSPC` or `BRK.B`) as one safe directory name."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", uid)
    return safe if safe.strip("_") else "series"


def describe(model) -> str:
    """A model's class and constructor arguments on one line, e.g. `Arima(order='auto', ...)`."""
    args = ", ".join(f"{k}={' '.join(repr(v).split())}" for k, v in model.get_params().items())
    return f"{type(model).__name__}({args})"


def manifest(
    name: str,
    stage: str,
    sections: list[str],
    last: dict[str, tuple[int, object]],
    curves: dict,
    intervals: dict | None = None,
) -> dict:
    """The manifest of one model's directory.

    `last` maps each series to (fold, fitted model) of its last fold (a series whose model has
    other constructor params than the first's, as tuning chooses them, has its own `params`);
    `curves` maps series to
    fold to training curves (`Model.history()`); `intervals`, where the loop calibrated them,
    has the `method`, `levels` and `gamma` and per series (`half_widths`) the half-widths of a
    forecast from its last day, by horizon and level (`walkforward.next_half_widths`).
    """
    first = next(iter(last.values()))[1]
    counts = first.parameter_counts()
    names: dict[str, str] = {}
    series = {}
    for uid, (fold, model) in last.items():
        directory = series_directory(uid)
        while directory in names:  # two ids that differ only in unsafe characters
            directory += "_"
        names[directory] = uid
        series[uid] = {"path": directory, "fold": fold, "learned": model.learned()}
        if model.config() != first.config():  # tuned per series: its own constructor params
            series[uid]["params"] = model.config()
        if intervals is not None and uid in intervals.get("half_widths", {}):
            levels = list(intervals["levels"])
            series[uid]["intervals"] = {"levels": levels, "half_widths": intervals["half_widths"][uid]}
    return {
        "model": name,
        "stage": stage,
        "family": family_of(first),
        "params": first.config(),
        "description": describe(first),
        "params_sections": list(sections),
        "intervals": {k: v for k, v in (intervals or {}).items() if k != "half_widths"} or None,
        "n_params": int(sum(counts.values())),
        "parameter_counts": counts,
        "series": series,
        "history": {
            uid: {str(k): c for k, c in by_fold.items() if c}
            for uid, by_fold in curves.items()
            if any(by_fold.values())
        },
    }


def write(directory: Path, content: dict, last: dict[str, tuple[int, object]]) -> None:
    """Write `models/<name>/` atomically: the manifest and each series' fitted model."""
    with io.atomic_directory(directory) as tmp:
        for uid, entry in content["series"].items():
            (tmp / entry["path"]).mkdir()
            last[uid][1].save(tmp / entry["path"])
        (tmp / MANIFEST).write_text(json.dumps(content, indent=1, sort_keys=True, allow_nan=False) + "\n")


def read_manifest(directory: Path) -> dict:
    """A models directory's manifest; a `UserError` naming the file if it is missing or bad."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise UserError(f"{path}: file not found; {io.repair(path)}")
    content = io.read_json(path)
    series = content.get("series") if isinstance(content, dict) else None
    entries_ok = isinstance(series, dict) and all(
        isinstance(e, dict) and isinstance(e.get("path"), str) for e in series.values()
    )
    if not entries_ok or not {"family", "params"} <= set(content):
        raise UserError(f"{path}: not a model manifest; {io.repair(path)}")
    if not isinstance(content["family"], str) or content["family"] not in FAMILIES:
        raise UserError(
            f"{path}: unknown model family {content['family']!r} (expected one of {', '.join(FAMILIES)}); "
            f"{io.repair(path)}"
        )
    return content
