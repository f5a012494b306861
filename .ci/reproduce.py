"""The reproducibility check CI runs after the tests: two cold runs, same bytes, same as committed.

    .venv/bin/python .ci/reproduce.py

1. Copies the project as a clean clone holds it (`pipeline.scratch.copy_project`: git's files
   minus every output `dvc.yaml` declares) into a temporary directory, makes it a git repository
   with one commit, and runs `dvc repro` there: cold, with an empty DVC cache and MLflow's
   default local store in the copy (`MLFLOW_TRACKING_URI` unset).
2. `dvc status` must then report nothing changed.
3. Every output `dvc.lock` lists is removed and `dvc repro --force` runs every stage again;
   every output file (the DVC-cached ones included) must have the same md5 as after run 1.
4. The reproduced `dvc.lock` and every committed declared output (the files git holds under
   `dvc.yaml`'s outputs) are compared with HEAD of this clone: identical bytes, or (the stages'
   commands, dependencies and params must match exactly) the same files with every number within
   tolerance: JSON value by value, CSV cell by cell, text token by token (words exact). Figures
   and other binary files with other bytes are reported, not failed (`pipeline.scratch.compare_output`).
   The DVC-cached outputs (git holds none of their files) are compared by step 3 only.

Stages and paths are never named here: they come from `dvc.yaml` and `dvc.lock`. Exits 1 listing
every difference; the copy is kept for inspection on failure and removed on success.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from pipeline.cli import UserError
from pipeline.scratch import compare_committed, copy_project, is_under, make_git_repo, project_outputs

ROOT = Path(__file__).resolve().parent.parent


def inputs_of(lock: dict) -> dict:
    """A parsed dvc.lock without the hashes of anything a stage writes (outputs, and the deps
    that are other stages' outputs): commands, code and data deps, and params remain."""
    outputs = [out["path"] for stage in lock.get("stages", {}).values() for out in stage.get("outs", [])]
    return {
        name: {
            "cmd": stage.get("cmd"),
            "params": stage.get("params"),
            "deps": [dep["path"] if is_under(dep["path"], outputs) else dep for dep in stage.get("deps", [])],
            "outs": [out["path"] for out in stage.get("outs", [])],
        }
        for name, stage in lock.get("stages", {}).items()
    }


def lock_outputs(repo: Path) -> list[str]:
    stages = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    return sorted(out["path"] for stage in stages.values() for out in stage.get("outs", []))


def files_under(repo: Path, outputs: list[str]) -> list[str]:
    """Every file of every output in `repo` (directories walked), as posix paths."""
    found = []
    for out in outputs:
        path = repo / out
        found += [
            f.relative_to(repo).as_posix()
            for f in (sorted(path.rglob("*")) if path.is_dir() else [path])
            if f.is_file()
        ]
    return found


def file_hashes(repo: Path, outputs: list[str]) -> dict[str, str]:
    return {name: hashlib.md5((repo / name).read_bytes()).hexdigest() for name in files_under(repo, outputs)}


def committed_files(outputs: list[str]) -> list[str]:
    """The files git holds at HEAD of this clone under `outputs`."""
    if not outputs:
        return []
    listed = subprocess.run(
        ["git", "ls-tree", "-r", "-z", "--name-only", "HEAD", "--", *outputs],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    return sorted(name for name in listed.stdout.decode().split("\0") if name)


def is_committed(output: str, committed: list[str]) -> bool:
    """Whether git holds `output` or files under it."""
    return any(is_under(path, [output]) for path in committed)


def committed_bytes(path: str) -> bytes | None:
    """`path` as committed at HEAD of the clone under test, or None."""
    shown = subprocess.run(["git", "show", f"HEAD:{path}"], cwd=ROOT, capture_output=True, check=False)
    return shown.stdout if shown.returncode == 0 else None


class Check:
    def __init__(self, repo: Path, env: dict[str, str]):
        self.repo, self.env = repo, env
        self.problems: list[str] = []
        self.summary: list[str] = []

    def repro(self, label: str, *args: str) -> dict[str, str]:
        print(f"--- {label}: dvc repro {' '.join(args)}", flush=True)
        started = time.monotonic()
        ran = []
        argv = ["dvc", "repro", *args]
        with subprocess.Popen(
            argv, cwd=self.repo, env=self.env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        ) as dvc:
            for line in dvc.stdout:  # the log as it comes: a long run shows progress in CI
                print(line, end="", flush=True)
                if line.startswith("Running stage '"):
                    ran.append(line.split("'")[1])
        if dvc.returncode != 0:
            raise SystemExit(
                f"reproducibility check: {label}: dvc repro failed (exit {dvc.returncode});"
                f" the copy is kept at {self.repo}"
            )
        expected = sorted(yaml.safe_load((self.repo / "dvc.lock").read_text())["stages"])
        if sorted(ran) != expected:
            self.problems.append(f"{label}: ran {sorted(ran)}, expected every stage {expected}")
        self.summary.append(f"{label}: {len(ran)} stages ran in {time.monotonic() - started:.0f} s")
        return file_hashes(self.repo, lock_outputs(self.repo))

    def status_is_clean(self) -> None:
        result = subprocess.run(
            ["dvc", "status", "--json"], cwd=self.repo, env=self.env, text=True, capture_output=True, check=False
        )
        if result.returncode != 0 or json.loads(result.stdout or "null") != {}:
            self.problems.append(
                f"dvc status after the cold run reports changes: {result.stdout.strip()} {result.stderr.strip()}"
            )
        else:
            self.summary.append("dvc status after it: nothing changed")

    def same_hashes(self, first: dict[str, str], second: dict[str, str]) -> None:
        differ = sorted(path for path in first.keys() | second.keys() if first.get(path) != second.get(path))
        if differ:
            self.problems.append("outputs that differ between the two cold runs: " + ", ".join(differ))
        else:
            self.summary.append(f"outputs: {len(first)} files, byte-identical across the two runs")

    def same_as_committed(self, outputs: list[str], metrics: list[str]) -> None:
        """Compare the reproduced dvc.lock and committed outputs with those at HEAD of this clone."""
        committed, old_lock = committed_files(outputs), committed_bytes("dvc.lock")
        missing = ["dvc.lock"] * (old_lock is None) + [m for m in metrics if not is_committed(m, committed)]
        if missing:
            self.problems.append(f"not committed: {', '.join(missing)} (commit the results of `dvc repro`)")
            return
        old, new = yaml.safe_load(old_lock), yaml.safe_load((self.repo / "dvc.lock").read_text())
        old_inputs, new_inputs = inputs_of(old), inputs_of(new)
        stale = sorted(
            name for name in old_inputs.keys() | new_inputs.keys() if old_inputs.get(name) != new_inputs.get(name)
        )
        if stale:
            self.problems.append(
                f"dvc.lock: stages {', '.join(stale)}: commands, code or params differ from the committed lock"
                " (commit the dvc.lock `dvc repro` writes)"
            )
            return
        old_md5s = output_md5s(old)
        hashes = ", ".join(path for path, md5 in output_md5s(new).items() if old_md5s.get(path) != md5)
        differ = f"; the output hashes of {hashes} differ" if hashes else " and output hashes"
        self.summary.append(f"dvc.lock: the committed commands, code, params{differ}")
        # Only outputs git holds files of: the others are DVC's to cache, compared across the two runs.
        roots = [out for out in outputs if is_committed(out, committed)]
        problems, summary = compare_committed(
            {path: committed_bytes(path) for path in committed},
            {path: (self.repo / path).read_bytes() for path in files_under(self.repo, roots)},
        )
        self.problems += problems
        self.summary += summary


def output_md5s(lock: dict) -> dict[str, str]:
    return {out["path"]: out.get("md5") for stage in lock.get("stages", {}).values() for out in stage.get("outs", [])}


def main() -> int:
    outputs, metrics = project_outputs(ROOT), project_outputs(ROOT, kinds=("metrics",))
    work = Path(tempfile.mkdtemp(prefix="stockcast-repro-"))
    repo = make_git_repo(copy_project(ROOT, work / "repo"))
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "STOCKCAST_TRACKING")}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        DVC_NO_ANALYTICS="1",
        DVC_SITE_CACHE_DIR=str(work / "dvc-site-cache"),  # DVC writes nothing outside the copy
    )
    check = Check(repo, env)

    started = time.monotonic()
    first = check.repro("run 1 (cold)")
    check.status_is_clean()
    for out in lock_outputs(repo):
        path = repo / out
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    second = check.repro("run 2 (outputs removed)", "--force")
    check.same_hashes(first, second)
    check.same_as_committed(outputs, metrics)

    print("=== reproducibility check")
    for line in check.summary:
        print(f"  {line}")
    for line in check.problems:
        print(f"  FAIL: {line}")
    print(f"  total {time.monotonic() - started:.0f} s")
    if check.problems:
        print(f"  the copy is kept at {repo}")
        return 1
    shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except UserError as err:
        sys.exit(f"reproducibility check: {err}")
