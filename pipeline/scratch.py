"""Scratch copies of the project (what a clean clone holds), and how a copy's outputs compare.

    from pipeline.scratch import copy_project, make_git_repo
    repo = make_git_repo(copy_project(ROOT, tmp / "repo"))

A copy holds the files git lists (tracked, and untracked files git does not ignore) minus exactly
the outputs `dvc.yaml` declares, so `dvc repro` in it runs every stage cold. Tracked files that
are no output (`data/.gitignore`, `reports/bench.json`) are copied like any other file.
`compare_output` and `compare_committed` say whether the files a copy reproduced match the committed
ones within tolerance (for the reproducibility check, `.ci/reproduce.py`).

Used by tests, benchmarks and CI; not a pipeline stage, and no stage imports it. Standard library
and yaml only (`pipeline.cli`, for `UserError`, imports only `sys`), so importing it is cheap.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import posixpath
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from pipeline.cli import UserError

OUTPUT_KINDS = ("outs", "metrics", "plots")  # the stage keys whose entries are files a stage writes
# Who commits in a scratch repository: DVC only needs a commit to exist, so any fixed identity.
GIT_IDENTITY = ("-c", "user.name=stockcast-scratch", "-c", "user.email=scratch@localhost")
REL_TOL = 1e-6  # results from another machine may differ in the last bits of floating point
ABS_TOL = 1e-12  # for values that should be zero
# A printed number: sign, digits, fraction, exponent. Tried before words, so "0.57" is one token
# and "-0.50" keeps its sign; a word that starts with a letter ("SP500", "lstm_1") stays whole.
NUMBER = r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
TOKEN = re.compile(rf"{NUMBER}|\w+|\S")
TOLERANCE = f"rel. tol. {REL_TOL:g}; in CSV and text, plus one unit in a rounded number's last printed digit"
SHOWN = 20  # differences listed in a failure message


def declared_outputs(dvc_yaml: dict, kinds: tuple[str, ...] = OUTPUT_KINDS, params: dict | None = None) -> list[str]:
    """The paths (relative to the project root) that `dvc.yaml`'s stages declare under `kinds`,
    in file order. A `foreach` stage is expanded over its items, a list or `${section.key}` of
    `params` (params.yaml's content), with `${item}` substituted. Raises UserError for any other
    template (`${...}` left in a path, `matrix`, dict items), which this reader does not expand:
    better a loud failure than a copy that holds stale outputs."""
    paths = []
    for name, stage in (dvc_yaml or {}).get("stages", {}).items():
        if "matrix" in stage:
            raise UserError(f"dvc.yaml: stage {name}: matrix stages are not supported by pipeline.scratch")
        expanded = [(item, stage["do"]) for item in _foreach_items(name, stage, params or {})] if "do" in stage else []
        for item, body in expanded or [(None, stage)]:
            wdir = body.get("wdir", ".")
            for kind in kinds:
                for entry in body.get(kind, []):
                    path = str(next(iter(entry)) if isinstance(entry, dict) else entry)
                    path = path if item is None else path.replace("${item}", str(item))
                    if "${" in path or "${" in str(wdir):
                        raise UserError(f"dvc.yaml: stage {name}: {kind} {path}: templated paths are not supported")
                    paths.append(posixpath.normpath(posixpath.join(wdir, path)))
    return paths


def _foreach_items(name: str, stage: dict, params: dict) -> list:
    """The items of a `foreach` stage: its list, or the params list `${section.key}` names."""
    items = stage.get("foreach")
    reference = re.fullmatch(r"\$\{([\w.]+)\}", items) if isinstance(items, str) else None
    if reference is not None:
        items = params
        for key in reference.group(1).split("."):
            items = items.get(key) if isinstance(items, dict) else None
    if not isinstance(items, list) or not all(isinstance(item, (str, int)) for item in items):
        raise UserError(
            f"dvc.yaml: stage {name}: foreach {stage.get('foreach')!r}: only a list of names, or ${{section.key}} "
            "of one in params.yaml, is supported by pipeline.scratch"
        )
    return items


def project_outputs(root: Path, kinds: tuple[str, ...] = OUTPUT_KINDS) -> list[str]:
    """`declared_outputs` of the project at `root` (its dvc.yaml, foreach stages expanded by its
    params.yaml); `[]` without a dvc.yaml."""
    root = Path(root)
    if not (root / "dvc.yaml").exists():
        return []
    params = yaml.safe_load((root / "params.yaml").read_text()) if (root / "params.yaml").exists() else {}
    return declared_outputs(yaml.safe_load((root / "dvc.yaml").read_text()), kinds, params)


def is_under(path: str, roots: list[str]) -> bool:
    """Whether `path` is one of `roots` or inside one of them (posix paths, relative)."""
    return any(path == root.rstrip("/") or path.startswith(root.rstrip("/") + "/") for root in roots)


def listed_files(source_root: Path) -> list[str]:
    """What a clean clone of `source_root` would hold: `git ls-files` of tracked files and of
    untracked files git does not ignore (so a new module is copied before it is committed)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=source_root,
        check=True,
        capture_output=True,
    )
    return sorted({name for name in listed.stdout.decode().split("\0") if name})


def copy_project(source_root: Path, dest: Path, *, keep_outputs: bool = False) -> Path:
    """Copy the project at `source_root` into `dest` (created if missing) and return `dest`: every
    file `listed_files` names, minus the outputs `dvc.yaml` declares unless `keep_outputs`.
    Files deleted from the worktree but still tracked are skipped; symlinks stay symlinks."""
    source_root, dest = Path(source_root), Path(dest)
    outputs = project_outputs(source_root)
    dest.mkdir(parents=True, exist_ok=True)
    for name in listed_files(source_root):
        source, target = source_root / name, dest / name
        if (not keep_outputs and is_under(name, outputs)) or not (source.is_file() or source.is_symlink()):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():  # as git checks it out: the link, not what it points at
            os.symlink(os.readlink(source), target)
        else:
            shutil.copy2(source, target)
    return dest


def make_git_repo(dest: Path) -> Path:
    """Make `dest` a git repository with everything in it in one commit (DVC wants a repository
    and a HEAD); return `dest`. Fixed identity, no signing and no hooks, whatever the user's git
    configuration says, so it works the same on any machine."""
    # GIT_DIR, GIT_INDEX_FILE (set when run from a git hook) would point git at another repository.
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    for argv in (
        ["git", "-c", "init.defaultBranch=main", "init", "-q"],
        ["git", "add", "-A"],
        ["git", *GIT_IDENTITY, "-c", "commit.gpgsign=false", "commit", "-q", "--no-verify", "-m", "scratch copy"],
    ):
        subprocess.run(argv, cwd=dest, env=env, check=True, capture_output=True)
    return Path(dest)


def printed_close(a: str, b: str) -> bool:
    """Whether two printed numbers agree: within REL_TOL, plus one unit in the last printed digit
    of the coarser one when they are printed with a fraction or an exponent. Why the unit: a page
    prints rounded values ("18.93"), and a 1e-6 relative move of the value underneath can round
    to the neighbouring digit. Integers get no unit: they are counts and ranks, which must match."""
    x, y = float(a), float(b)
    unit = max(_last_digit(a), _last_digit(b))
    return abs(x - y) <= max(REL_TOL * max(abs(x), abs(y)), ABS_TOL) + unit


def _last_digit(number: str) -> float:
    mantissa, _, exponent = number.lower().partition("e")
    if "." not in mantissa and not exponent:
        return 0.0
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (int(exponent or 0) - decimals)


def json_close(a, b, where: str = "") -> list[str]:
    """Where two parsed JSON documents differ beyond the tolerance (empty: they agree)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{where or '/'}: keys {sorted(a.keys() ^ b.keys())} differ"]
        return [d for key in a for d in json_close(a[key], b[key], f"{where}/{key}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} items vs {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in json_close(x, y, f"{where}/{i}")]
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b)):
        if math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL) or (math.isnan(a) and math.isnan(b)):
            return []
    elif type(a) is type(b) and a == b:  # true is not 1 in JSON
        return []
    return [f"{where or '/'}: {a!r} vs {b!r}"]


def cells_close(a: list[str], b: list[str], where: str) -> list[str]:
    """Differences between two rows of cells or tokens: numbers by `printed_close`, text exactly."""
    if len(a) != len(b):
        return [f"{where}: {len(a)} values vs {len(b)}"]
    numeric = re.compile(NUMBER)
    return [
        f"{where}: {x!r} vs {y!r}"
        for x, y in zip(a, b, strict=True)
        if x != y and not (numeric.fullmatch(x) and numeric.fullmatch(y) and printed_close(x, y))
    ]


def rows_close(a: list[list[str]], b: list[list[str]], what: str) -> list[str]:
    """Differences between two tables of rows (CSV rows, or lines of tokens), `what` naming a row."""
    if len(a) != len(b):
        return [f": {len(a)} {what}s vs {len(b)}"]
    return [d for i, (x, y) in enumerate(zip(a, b, strict=True), 1) for d in cells_close(x, y, f":{what} {i}")]


def compare_output(path: str, committed: bytes, reproduced: bytes) -> tuple[str, list[str]]:
    """How the reproduced file `path` compares with the committed one: "identical"; "close"
    (every number within tolerance, everything else equal); "binary" (other bytes of a file that
    is not text: a figure drawn from values that moved 1e-9 can change antialiased pixels, so its
    bytes prove nothing; the numbers it draws are checked in the JSON and CSV files); or "far",
    with the differences, each prefixed with `path`."""
    if committed == reproduced:
        return "identical", []
    try:
        old, new = committed.decode("utf-8"), reproduced.decode("utf-8")
    except UnicodeDecodeError:
        return "binary", []
    if path.endswith(".json"):
        try:
            far = [path + d for d in json_close(json.loads(old), json.loads(new))]
        except ValueError as err:
            far = [f"{path}: not valid JSON ({err})"]
    elif path.endswith(".csv"):
        far = [
            path + d for d in rows_close(list(csv.reader(io.StringIO(old))), list(csv.reader(io.StringIO(new))), "row")
        ]
    else:
        tokens = [[TOKEN.findall(line) for line in text.splitlines()] for text in (old, new)]
        far = [path + d for d in rows_close(*tokens, "line")]
    return ("far", far) if far else ("close", [])


def compare_committed(committed: dict[str, bytes], reproduced: dict[str, bytes]) -> tuple[list[str], list[str]]:
    """(problems, summary lines) from the committed output files and the reproduced ones (path to
    bytes): a file on one side only or a number beyond tolerance is a problem; binary files with
    other bytes are only reported, as `compare_output` explains."""
    problems, summary = [], []
    unmatched = [f"{p} (committed, not reproduced)" for p in committed if p not in reproduced]
    unmatched += [f"{p} (reproduced, not committed)" for p in reproduced if p not in committed]
    if unmatched:
        problems.append(
            f"committed outputs are not the reproduced files: {', '.join(unmatched)}"
            " (commit the results of `dvc repro`)"
        )
    verdicts = {
        path: compare_output(path, committed[path], reproduced[path]) for path in committed if path in reproduced
    }
    kinds = {
        kind: [path for path, (k, _) in verdicts.items() if k == kind] for kind in ("identical", "close", "binary")
    }
    far = [d for _, differences in verdicts.values() for d in differences]
    if far:
        more = f" (and {len(far) - SHOWN} more)" if len(far) > SHOWN else ""
        problems.append(f"committed outputs differ beyond tolerance ({TOLERANCE}): {'; '.join(far[:SHOWN])}{more}")
    elif kinds["close"]:
        summary.append(
            f"committed outputs not bitwise identical, every number within {TOLERANCE}: {', '.join(kinds['close'])}"
        )
    if kinds["binary"]:
        summary.append(
            "binary files with other bytes, not failed (figures of the numbers compared above; values that move 1e-9"
            f" can shift antialiased pixels): {', '.join(kinds['binary'])}"
        )
    if not problems and len(kinds["identical"]) == len(committed):
        summary.append(f"committed outputs: {len(committed)} files bitwise identical")
    return problems, summary
