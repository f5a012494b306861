"""pipeline.scratch: what a scratch copy holds, and how reproduced outputs compare with committed ones."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.cli import UserError
from pipeline.params import CELLS
from pipeline.scratch import (
    compare_committed,
    compare_output,
    copy_project,
    declared_outputs,
    is_under,
    json_close,
    make_git_repo,
    printed_close,
    project_outputs,
)

ROOT = Path(__file__).resolve().parent.parent
DVC_YAML = {
    "stages": {
        "make": {
            "cmd": "x",
            "outs": ["data/a.parquet", {"models/m": {"cache": True}}],
            "metrics": [{"out/m.json": {}}],
        },
        "report": {"cmd": "y", "wdir": "sub", "plots": ["plots/", {"../out/p.csv": {"cache": False}}]},
    },
    "plots": [{"out/p.csv": {"x": "a"}}],  # top level: points at outputs, declares none
}
PNG = b"\x89PNG\r\n\x1a\n\x00\x00"


def _reproduce():
    """`.ci/reproduce.py` as a module (it is a script, not in a package)."""
    spec = importlib.util.spec_from_file_location("reproduce", ROOT / ".ci/reproduce.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_declared_outputs_reads_every_stage_kind_and_wdir():
    assert declared_outputs(DVC_YAML) == ["data/a.parquet", "models/m", "out/m.json", "sub/plots", "out/p.csv"]
    assert declared_outputs(DVC_YAML, kinds=("metrics",)) == ["out/m.json"]
    assert declared_outputs({}) == [] and declared_outputs(None) == []


@pytest.mark.parametrize(
    ("stage", "message"),
    [
        ({"cmd": "x", "outs": ["data/${name}.parquet"]}, r"stage s: outs data/\$\{name\}.parquet: templated"),
        ({"matrix": {"a": [1]}, "cmd": "x", "outs": ["a"]}, "stage s: matrix stages"),
        ({"foreach": "${nowhere.cells}", "do": {"cmd": "x", "outs": ["a"]}}, r"stage s: foreach '\$\{nowhere"),
        ({"foreach": [{"a": 1}], "do": {"cmd": "x", "outs": ["a"]}}, "only a list of names"),
        ({"foreach": [1], "do": {"cmd": "x", "outs": ["${item.a}"]}}, "templated paths"),
    ],
)
def test_declared_outputs_refuses_what_it_cannot_expand(stage, message):
    with pytest.raises(UserError, match=message):
        declared_outputs({"stages": {"s": stage}})


def test_declared_outputs_expands_foreach_over_a_list_or_a_params_list():
    stage = {"do": {"cmd": "x ${item}", "outs": ["data/${item}.parquet", {"models/${item}": {}}]}}
    params = {"lstm": {"cells": ["lstm", "gru"]}}
    expected = ["data/lstm.parquet", "models/lstm", "data/gru.parquet", "models/gru"]
    assert declared_outputs({"stages": {"s": {"foreach": "${lstm.cells}", **stage}}}, params=params) == expected
    assert declared_outputs({"stages": {"s": {"foreach": ["lstm", "gru"], **stage}}}) == expected


def test_this_projects_lstm_stage_declares_one_table_per_cell():
    outputs = project_outputs(ROOT)
    cells = yaml.safe_load((ROOT / "params.yaml").read_text())["lstm"]["cells"]
    assert [out for out in outputs if out in (f"data/predictions/{c}.parquet" for c in CELLS)] == [
        f"data/predictions/{c}.parquet" for c in cells
    ]


def test_is_under():
    assert is_under("models/m/x.json", ["models/m"]) and is_under("models/m", ["models/m/"])
    assert not is_under("models/mm/x.json", ["models/m"]) and not is_under("a", [])


@pytest.fixture
def source(tmp_path):
    """A project in git: tracked code, a tracked non-output beside outputs, committed outputs."""
    root = tmp_path / "source"
    files = {
        "dvc.yaml": yaml.safe_dump(DVC_YAML),
        ".gitignore": "/ignored.txt\n",
        "code.py": "print(1)\n",
        "data/.gitignore": "/a.parquet\n",
        "out/m.json": "{}",
        "out/bench.json": "{}",
        "sub/plots/x.csv": "a\n1\n",
        "gone.py": "",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "link.py").symlink_to("code.py")
    make_git_repo(root)
    (root / "gone.py").unlink()  # deleted, still tracked
    (root / "new.py").write_text("")  # untracked, not ignored
    (root / "ignored.txt").write_text("")
    (root / "data/a.parquet").write_bytes(b"output")  # an output, ignored as DVC ignores it
    (root / "models/m").mkdir(parents=True)
    (root / "models/m/w.json").write_text("{}")  # an output git does not ignore: still not copied
    return root


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if ".git" not in p.parts and not p.is_dir()}


def test_copy_holds_what_git_lists_minus_exactly_the_declared_outputs(source, tmp_path):
    copy = copy_project(source, tmp_path / "a" / "copy")
    assert copy == tmp_path / "a" / "copy"
    assert _files(copy) == {
        "dvc.yaml",
        ".gitignore",
        "code.py",
        "link.py",
        "data/.gitignore",
        "out/bench.json",
        "new.py",
    }
    assert (copy / "link.py").is_symlink() and (copy / "link.py").read_text() == "print(1)\n"
    kept = copy_project(source, tmp_path / "kept", keep_outputs=True)
    assert _files(kept) - _files(copy) == {"out/m.json", "sub/plots/x.csv", "models/m/w.json"}


def test_make_git_repo_commits_everything_whatever_the_environment(source, tmp_path, monkeypatch):
    copy = copy_project(source, tmp_path / "copy")
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "elsewhere"))  # as inside a git hook
    assert make_git_repo(copy) == copy
    monkeypatch.delenv("GIT_DIR")

    def git(*argv: str) -> str:
        return subprocess.run(["git", *argv], cwd=copy, check=True, capture_output=True, text=True).stdout

    assert (
        git("status", "--porcelain") == ""
        and git("log", "--format=%an <%ae>") == "stockcast-scratch <scratch@localhost>\n"
    )
    assert not (tmp_path / "elsewhere").exists()


def test_a_copy_of_this_project_holds_none_of_its_declared_outputs(tmp_path):
    copy = copy_project(ROOT, tmp_path / "copy")
    outputs = project_outputs(ROOT)
    assert outputs and not [out for out in outputs if (copy / out).exists()]
    assert (copy / "dvc.yaml").is_file() and (copy / "pipeline/scratch.py").is_file()


def test_importing_it_is_cheap_and_no_stage_imports_it():
    heavy = "import sys, pipeline.scratch; print(sorted({'pandas', 'numpy', 'mlflow', 'dvc'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", heavy], check=True, capture_output=True, text=True).stdout == "[]\n"
    imports = re.compile(r"^\s*(from|import)\s.*\bscratch\b", re.MULTILINE)
    users = [
        p.name for p in (ROOT / "pipeline").rglob("*.py") if p.name != "scratch.py" and imports.search(p.read_text())
    ]
    assert users == []


@pytest.mark.parametrize(
    ("a", "b", "close"),
    [
        ("18.93", "18.93", True),
        ("18.93", "18.94", True),  # a 1e-6 move of the value underneath can round either way
        ("18.93", "18.95", False),
        ("0.574", "0.575", True),
        ("-0.000", "0.000", True),
        ("1.5e-05", "1.6e-05", True),
        ("1.5e-05", "1.7e-05", False),
        ("1250", "1251", False),  # integers are counts: no last-digit allowance
        ("14.303954734275324", "14.303954734275325", True),
        ("14.303954734275324", "14.30399", False),
    ],
)
def test_printed_close(a, b, close):
    assert printed_close(a, b) is close


def test_json_close_names_each_difference():
    old = {"models": {"arima": {"rmse": 18.92, "n": 4, "ok": True, "none": None, "nan": float("nan")}}, "list": [1, 2]}
    assert json_close(old, json.loads(json.dumps(old).replace("18.92", "18.920000001"))) == []
    new = {"models": {"arima": {"rmse": 18.93, "n": 4, "ok": 1, "none": None, "nan": float("nan")}}, "list": [1]}
    assert json_close(old, new) == [
        "/models/arima/rmse: 18.92 vs 18.93",
        "/models/arima/ok: True vs 1",
        "/list: 2 items vs 1",
    ]
    assert json_close({"a": 1}, {"b": 1}) == ["/: keys ['a', 'b'] differ"]


def test_compare_output_by_kind_of_file():
    assert compare_output("r/m.json", b'{"a": 1.0}', b'{"a": 1.0}') == ("identical", [])
    assert compare_output("r/m.json", b'{"a": 1.0}', b'{"a": 1.0000000001}') == ("close", [])
    assert compare_output("r/m.json", b'{"a": 1.0}', b'{"a": 1.1}') == ("far", ["r/m.json/a: 1.0 vs 1.1"])
    assert compare_output("r/m.json", b"{", b"{}")[1][0].startswith("r/m.json: not valid JSON")
    csv = b"ds,model,rmse\n2019-01-02,arima,14.303954734275324\n"
    assert compare_output("r/p.csv", csv, csv.replace(b"324\n", b"325\n")) == ("close", [])
    assert compare_output("r/p.csv", csv, csv.replace(b"arima", b"lstm")) == (
        "far",
        ["r/p.csv:row 2: 'arima' vs 'lstm'"],
    )
    assert compare_output("r/p.csv", csv, csv + b"x,y,1\n") == ("far", ["r/p.csv: 2 rows vs 3"])
    page = b"# Board\n\n| 1 | sklearn | 18.92 | 0.574% | 1,250 |\n"
    assert compare_output("r/l.md", page, page.replace(b"18.92", b"18.93")) == ("close", [])
    assert compare_output("r/l.md", page, page.replace(b"sklearn", b"drift")) == (
        "far",
        ["r/l.md:line 3: 'sklearn' vs 'drift'"],
    )
    assert compare_output("r/l.md", page, page.replace(b"1,250", b"1,251")) == (
        "far",
        ["r/l.md:line 3: '250' vs '251'"],
    )
    assert compare_output("r/l.md", page, page.replace(b"| 1 |", b"| 1 | 2 |"))[1] == ["r/l.md:line 3: 14 values vs 16"]
    assert compare_output("r/f.png", PNG, PNG + b"\x01") == ("binary", [])


def test_compare_committed_fails_on_numbers_and_files_not_on_figure_bytes():
    committed = {"r/m.json": b'{"a": 1.0}', "r/f.png": PNG}
    problems, summary = compare_committed(committed, {"r/m.json": b'{"a": 1.0000000001}', "r/f.png": PNG + b"\x01"})
    assert problems == [] and summary[0].startswith("committed outputs not bitwise identical, every number within")
    assert "r/m.json" in summary[0] and "antialiased" in summary[1] and summary[1].endswith(": r/f.png")
    problems, summary = compare_committed(committed, {"r/m.json": b'{"a": 2.0}', "r/f.png": PNG + b"\x01"})
    assert len(problems) == 1 and "r/m.json/a: 1.0 vs 2.0" in problems[0] and "r/f.png" in summary[0]
    problems, _ = compare_committed(committed, {"r/m.json": b'{"a": 1.0}', "r/new.csv": b""})
    unmatched = "r/f.png (committed, not reproduced), r/new.csv (reproduced, not committed)"
    assert problems == [
        f"committed outputs are not the reproduced files: {unmatched} (commit the results of `dvc repro`)"
    ]
    assert compare_committed(committed, dict(committed)) == ([], ["committed outputs: 2 files bitwise identical"])


def test_the_lock_comparison_ignores_hashes_of_what_stages_write():
    reproduce = _reproduce()
    lock = {
        "stages": {
            "a": {"cmd": "x", "deps": [{"path": "in.csv", "md5": "1"}], "outs": [{"path": "d/p", "md5": "2"}]},
            "b": {"cmd": "y", "deps": [{"path": "d/p/x", "md5": "3"}], "outs": [{"path": "r", "md5": "4"}]},
        }
    }
    assert reproduce.inputs_of(lock)["b"] == {"cmd": "y", "params": None, "deps": ["d/p/x"], "outs": ["r"]}
    assert reproduce.inputs_of(lock)["a"]["deps"] == [{"path": "in.csv", "md5": "1"}]  # a data input keeps its hash
    assert reproduce.output_md5s(lock) == {"d/p": "2", "r": "4"}
    assert reproduce.is_committed("r/plots", ["r/plots/a.csv"]) and not reproduce.is_committed(
        "r/plot", ["r/plots/a.csv"]
    )
