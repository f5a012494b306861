"""The reproducibility check CI runs after the tests: two cold runs, same bytes, same as committed.

    .venv/bin/python .ci/reproduce.py

1. Copies the project as a clean clone holds it (tracked files, and untracked files git does
   not ignore, minus every output `dvc.yaml` declares) into a temporary directory, makes it a
   git repository with one commit, and runs `dvc repro` there: cold, with an empty DVC cache
   and MLflow's default local store in the copy (`MLFLOW_TRACKING_URI` unset).
2. `dvc status` must then report nothing changed.
3. Every output `dvc.lock` lists is removed and `dvc repro --force` runs every stage again;
   every output file must have the same md5 as after the first run.
4. The reproduced `dvc.lock` and metrics files are compared with the ones committed at HEAD
   of this clone: identical bytes, or (outputs only: the stages' commands, dependencies and params must match exactly)
   every number in the metrics within a relative tolerance of 1e-6, which is reported as such.

Stages are never named here: they come from `dvc.yaml` and `dvc.lock`. Exits 1 listing every
difference; the copy is kept for inspection on failure and removed on success.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
REL_TOL = 1e-6  # metrics from another machine may differ in the last bits of floating point
ABS_TOL = 1e-12  # for values that should be zero


def declared_outputs(dvc_yaml: dict) -> tuple[list[str], list[str]]:
    """(every output path, the metrics files among them) that `dvc.yaml`'s stages declare."""
    outputs, metrics = [], []
    for stage in dvc_yaml.get("stages", {}).values():
        for kind in ("outs", "metrics", "plots"):
            for entry in stage.get(kind, []):
                path = next(iter(entry)) if isinstance(entry, dict) else entry
                outputs.append(path)
                if kind == "metrics":
                    metrics.append(path)
    return outputs, metrics


def is_under(path: str, roots: list[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def copy_project(dest: Path, outputs: list[str]) -> None:
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT, check=True, capture_output=True)
    for name in listed.stdout.decode().split("\0"):
        if name and not is_under(name, outputs) and (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)


def lock_outputs(repo: Path) -> list[str]:
    stages = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    return sorted(out["path"] for stage in stages.values() for out in stage.get("outs", []))


def file_hashes(repo: Path, outputs: list[str]) -> dict[str, str]:
    """md5 of every file of every output (directories walked)."""
    hashes = {}
    for out in outputs:
        path = repo / out
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if file.is_file():
                hashes[file.relative_to(repo).as_posix()] = hashlib.md5(file.read_bytes()).hexdigest()
    return hashes


def numbers_close(a, b, where: str = "") -> list[str]:
    """Where two parsed JSON documents differ beyond the tolerance (empty: they agree)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{where or '/'}: keys {sorted(a.keys() ^ b.keys())} differ"]
        return [d for key in a for d in numbers_close(a[key], b[key], f"{where}/{key}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} items vs {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in numbers_close(x, y, f"{where}/{i}")]
    numeric = (int, float)
    if isinstance(a, numeric) and isinstance(b, numeric) and not isinstance(a, bool) and not isinstance(b, bool):
        return [] if math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL) else [f"{where}: {a!r} vs {b!r}"]
    return [] if a == b else [f"{where}: {a!r} vs {b!r}"]


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


def output_md5s(lock: dict) -> dict[str, str]:
    return {out["path"]: out.get("md5") for stage in lock.get("stages", {}).values() for out in stage.get("outs", [])}


class Check:
    def __init__(self, repo: Path, env: dict[str, str]):
        self.repo, self.env = repo, env
        self.problems: list[str] = []
        self.summary: list[str] = []

    def sh(self, *argv: str) -> subprocess.CompletedProcess:
        """Run a command in the copy, capturing its output."""
        return subprocess.run(argv, cwd=self.repo, env=self.env, text=True, capture_output=True)

    def repro(self, label: str, *args: str) -> dict[str, str]:
        print(f"--- {label}: dvc repro {' '.join(args)}", flush=True)
        started = time.monotonic()
        ran = []
        with subprocess.Popen(["dvc", "repro", *args], cwd=self.repo, env=self.env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as dvc:
            for line in dvc.stdout:  # the log as it comes: a long run shows progress in CI
                print(line, end="", flush=True)
                if line.startswith("Running stage '"):
                    ran.append(line.split("'")[1])
        if dvc.returncode != 0:
            raise SystemExit(f"reproducibility check: {label}: dvc repro failed (exit {dvc.returncode}); the copy is kept at {self.repo}")
        expected = sorted(yaml.safe_load((self.repo / "dvc.lock").read_text())["stages"])
        if sorted(ran) != expected:
            self.problems.append(f"{label}: ran {sorted(ran)}, expected every stage {expected}")
        self.summary.append(f"{label}: {len(ran)} stages ran in {time.monotonic() - started:.0f} s")
        return file_hashes(self.repo, lock_outputs(self.repo))

    def status_is_clean(self) -> None:
        result = self.sh("dvc", "status", "--json")
        if result.returncode != 0 or json.loads(result.stdout or "null") != {}:
            self.problems.append(f"dvc status after the cold run reports changes: {result.stdout.strip()} {result.stderr.strip()}")
        else:
            self.summary.append("dvc status after it: nothing changed")

    def same_hashes(self, first: dict[str, str], second: dict[str, str]) -> None:
        differ = sorted(path for path in first.keys() | second.keys() if first.get(path) != second.get(path))
        if differ:
            self.problems.append("outputs that differ between the two cold runs: " + ", ".join(differ))
        else:
            self.summary.append(f"outputs: {len(first)} files, byte-identical across the two runs")

    def same_as_committed(self, metrics: list[str]) -> None:
        """Compare the reproduced dvc.lock and metrics with those committed at HEAD of this clone."""
        committed = {path: committed_bytes(path) for path in ["dvc.lock", *metrics]}
        missing = [path for path, data in committed.items() if data is None]
        if missing:
            self.problems.append(f"not committed: {', '.join(missing)} (commit the results of `dvc repro`)")
            return
        if all((self.repo / path).read_bytes() == data for path, data in committed.items()):
            self.summary.append(f"committed results: {', '.join(committed)} bitwise identical")
            return
        old_lock, lock = yaml.safe_load(committed["dvc.lock"]), yaml.safe_load((self.repo / "dvc.lock").read_text())
        old_inputs, new_inputs = inputs_of(old_lock), inputs_of(lock)
        stale = sorted(name for name in old_inputs.keys() | new_inputs.keys() if old_inputs.get(name) != new_inputs.get(name))
        if stale:
            self.problems.append(f"dvc.lock: stages {', '.join(stale)}: commands, code or params differ from the committed lock (commit the dvc.lock `dvc repro` writes)")
            return
        far = [f"{path}{d}" for path in metrics for d in numbers_close(json.loads(committed[path]), json.loads((self.repo / path).read_text()))]
        if far:
            self.problems.append(f"metrics differ from the committed ones beyond rel. tol. {REL_TOL:g}: " + "; ".join(far[:20]))
        else:
            old, new = output_md5s(old_lock), output_md5s(lock)
            differ = sorted({path for path in new if old.get(path) != new[path]} | {path for path in metrics if (self.repo / path).read_bytes() != committed[path]})
            self.summary.append(f"committed results: not bitwise identical (outputs {', '.join(differ)}), metrics within rel. tol. {REL_TOL:g}")


def committed_bytes(path: str) -> bytes | None:
    """`path` as committed at HEAD of the clone under test, or None."""
    shown = subprocess.run(["git", "show", f"HEAD:{path}"], cwd=ROOT, capture_output=True)
    return shown.stdout if shown.returncode == 0 else None


def main() -> int:
    dvc_yaml = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    outputs, metrics = declared_outputs(dvc_yaml)
    work = Path(tempfile.mkdtemp(prefix="stockcast-repro-"))
    repo = work / "repo"
    repo.mkdir()
    copy_project(repo, outputs)
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "STOCKCAST_TRACKING")}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        DVC_NO_ANALYTICS="1",
        DVC_SITE_CACHE_DIR=str(work / "dvc-site-cache"),  # DVC writes nothing outside the copy
        GIT_AUTHOR_NAME="ci", GIT_AUTHOR_EMAIL="ci@localhost", GIT_COMMITTER_NAME="ci", GIT_COMMITTER_EMAIL="ci@localhost",
    )  # fmt: skip
    check = Check(repo, env)
    for argv in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "the tree under test"]):
        subprocess.run(argv, cwd=repo, env=env, check=True)

    started = time.monotonic()
    first = check.repro("run 1 (cold)")
    check.status_is_clean()
    for out in lock_outputs(repo):
        path = repo / out
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    second = check.repro("run 2 (outputs removed)", "--force")
    check.same_hashes(first, second)
    check.same_as_committed(metrics)

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
    sys.exit(main())
