"""Reading and writing the pipeline's files: atomic writes and clear errors on bad inputs.

Every output is written to a temporary file beside its destination and renamed into place, so
a failed or killed stage leaves the previous output intact (or absent), never half-written.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from pipeline.cli import UserError

PRICE_COLUMNS = ("open", "high", "low", "close", "adj_close")
# The forecast target: the adjusted close where the source has one, else the first of these present.
TARGET_PREFERENCE = ("adj_close", "close", "open", "high", "low")


def target_column(columns: Sequence[str]) -> str:
    """The price column every model forecasts, given a prices table's columns."""
    for name in TARGET_PREFERENCE:
        if name in columns:
            return name
    raise UserError(f"prices: no price column among {list(columns)}")


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise UserError(f"{path}: cannot write ({err.strerror})") from None
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as err:  # disk full, file size limit, output path taken by a directory
        raise UserError(f"{path}: cannot write ({err.strerror or err})") from None
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_directory(path: Path | str) -> Iterator[Path]:
    """Yield an empty temporary directory beside `path`; put it in place of `path` only if the
    block succeeds (the previous directory is moved aside first, then removed)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    except OSError as err:
        raise UserError(f"{path}: cannot write ({err.strerror})") from None
    old = tmp.with_name(tmp.name[: -len(".tmp")] + ".old.tmp")
    try:
        yield tmp
        for directory in [tmp, *tmp.rglob("*")]:
            os.chmod(directory, 0o755 if directory.is_dir() else 0o644)
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
    except OSError as err:
        raise UserError(f"{path}: cannot write ({err.strerror or err})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


TABLE_METADATA_KEY = b"stockcast"


def write_table(frame: pd.DataFrame, path: Path | str, metadata: dict | None = None) -> None:
    """Write a frame as Parquet, atomically and byte-for-byte reproducibly (no index).

    `metadata` (JSON-serialisable, deterministic) is stored in the file's schema under
    `stockcast`; `read_table_metadata` returns it.
    """
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if metadata is not None:
        extra = {TABLE_METADATA_KEY: json.dumps(metadata, sort_keys=True).encode()}
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **extra})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def write_json(obj: Any, path: Path | str) -> None:
    """Write JSON with a trailing newline, keys in the order given, atomically."""
    write_text(json.dumps(obj, indent=2, allow_nan=False) + "\n", path)


def write_text(text: str, path: Path | str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def repair(path: Path | str, dvc_yaml: Path | str = "dvc.yaml") -> str:
    """How to get a damaged output back, the end of its error line, from its entry in `dvc.yaml`:

        restore it with `dvc checkout --force <output>` or rebuild it with `dvc repro <stage>`

    only the rebuild for an output DVC does not cache; plain `dvc repro` for a file no stage declares.
    """
    path = Path(path)
    try:
        stages = yaml.safe_load(Path(dvc_yaml).read_text())["stages"]
        for name, stage in stages.items():
            for entry in [*stage.get("outs", []), *stage.get("metrics", []), *stage.get("plots", [])]:
                out, options = (entry, {}) if isinstance(entry, str) else next(iter(entry.items()))
                if path == Path(out) or Path(out) in path.parents:
                    rebuild = f"rebuild it with `dvc repro {name}`"
                    cached = (options or {}).get("cache", True)
                    # --force: without it, checkout asks before it replaces a file it has no copy of.
                    return f"restore it with `dvc checkout --force {out}` or {rebuild}" if cached else rebuild
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError, StopIteration):
        pass  # no readable dvc.yaml: the general advice
    return "rebuild it with `dvc repro`"


def read_table(path: Path | str, columns: Sequence[str] = ()) -> pd.DataFrame:
    """Read a Parquet table the pipeline wrote, checking that `columns` are present."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: file not found (run `dvc repro` to create it)")
    try:
        frame = pq.read_table(path).to_pandas()
    except (pa.ArrowInvalid, OSError) as err:
        raise UserError(f"{path}: not a readable Parquet file ({err}); {repair(path)}") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UserError(f"{path}: missing column {missing[0]!r}; {repair(path)}")
    return frame


def read_table_metadata(path: Path | str) -> dict:
    """The `metadata` a table was written with (empty if none)."""
    schema = pq.read_schema(path)
    raw = (schema.metadata or {}).get(TABLE_METADATA_KEY)
    return json.loads(raw) if raw else {}


def read_json(path: Path | str) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: file not found (run `dvc repro` to create it)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid JSON ({err}); {repair(path)}") from None
