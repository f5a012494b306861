"""What a run is tagged with: the pipeline run it belongs to, the code's git state, the md5 of
the files it read and logged (as `dvc.lock` records them), and the params it ran with.

Pure functions and file reads; no mlflow.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pipeline import paths
from pipeline.cli import UserError
from pipeline.models import store
from pipeline.params import Params

PIPELINE_RUN_ENV = "STOCKCAST_PIPELINE_RUN"  # set it to name a pipeline run yourself
LEARNED_MAX = 100  # characters of one learned value in a `learned.<series>` tag (no weight arrays)


def pipeline_run_id(environ: dict | None = None, now: datetime | None = None) -> str:
    """The name of this pipeline run (its parent MLflow run, and every run's `pipeline_run` tag).

    In order: `STOCKCAST_PIPELINE_RUN` if set; under `dvc exp run`, the experiment's name
    (`DVC_EXP_NAME`, as `dvc exp show` lists it); else the UTC time, e.g. `20261201T093012Z`.
    """
    environ = os.environ if environ is None else environ
    for key in (PIPELINE_RUN_ENV, "DVC_EXP_NAME"):
        if environ.get(key):
            return environ[key]
    return f"{now or datetime.now(UTC):%Y%m%dT%H%M%SZ}"


def git_state(root: Path) -> dict[str, str]:
    """`git_commit` (HEAD) and `git_dirty` (uncommitted changes) of the project, or `unknown`.

    `dvc.lock` and `.gitignore` files are not counted: DVC rewrites them during a repro.
    """

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=10).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        changes = git("status", "--porcelain", "--", ".", ":(exclude)dvc.lock", ":(exclude,glob)**/.gitignore")
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": "unknown", "git_dirty": "unknown"}
    return {"git_commit": commit, "git_dirty": str(bool(changes.strip())).lower()}


def file_md5(path: Path | str) -> str:
    """A file's md5 as `dvc.lock` records it (DVC 3 hashes a file's bytes as they are)."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dvc_md5(path: Path | str) -> str:
    """A file's or directory's md5 as `dvc.lock` records it: a directory's is the md5 of DVC's
    listing of its files (sorted relative paths with their md5s) plus `.dir`."""
    path = Path(path)
    if not path.is_dir():
        return file_md5(path)
    listing = sorted(
        (
            {"md5": file_md5(file), "relpath": file.relative_to(path).as_posix()}
            for file in path.rglob("*")
            if file.is_file()
        ),
        key=lambda entry: entry["relpath"],
    )
    return hashlib.md5(json.dumps(listing, sort_keys=True).encode()).hexdigest() + ".dir"


def key_part(text: str) -> str:
    """`text` (e.g. a ticker like `^GSPC`) as a piece of an MLflow tag, metric or model name."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


def flat_params(params: Params, sections: Iterable[str]) -> dict[str, str]:
    """`section.key` (and `section.key.sub` for mappings) -> value, as MLflow params.

    Strings stay as they are; everything else is written as JSON (`null`, `[32]`, `true`).
    """
    out = {}
    for section in sections:
        for key, value in getattr(params, section).model_dump(mode="json").items():
            items = value.items() if isinstance(value, dict) else [(None, value)]
            for sub, v in items:
                name = f"{section}.{key}" if sub is None else f"{section}.{key}.{sub}"
                out[name] = v if isinstance(v, str) else json.dumps(v)
    return out


def learned_text(learned: dict) -> str:
    """A series' small learned values as one line, e.g. `order_=[1, 1, 1], drift_=0.0003`."""
    texts = ((key, json.dumps(value)) for key, value in learned.items())
    return ", ".join(f"{key}={text}" for key, text in texts if len(text) <= LEARNED_MAX)


@dataclass(frozen=True)
class ModelOutputs:
    """What one model's stage wrote: its predictions table and its models directory."""

    name: str
    predictions: Path
    directory: Path
    manifest: dict
    predictions_md5: str
    model_md5: str


def model_outputs(name: str) -> ModelOutputs:
    """Model `name`'s outputs with their md5s; a `UserError` naming a missing file."""
    table, directory = paths.predictions(name), paths.model_directory(name)
    if not table.is_file():
        raise UserError(f"{table}: file not found (run `dvc repro` to create it)")
    manifest = store.read_manifest(directory)
    return ModelOutputs(name, table, directory, manifest, file_md5(table), dvc_md5(directory))
