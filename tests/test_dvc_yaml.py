"""dvc.yaml lists, for every stage, exactly the code it runs: its module and what that imports.

A `foreach` stage (`lstm`: one per cell in `lstm.cells`) is checked by its `do:` template, the
same for every cell."""

import ast
from pathlib import Path

import pytest
import yaml

from pipeline.models.store import FAMILIES
from pipeline.params import LstmParams

ROOT = Path(__file__).resolve().parent.parent
# foreach stages by their `do:` template
STAGES = {
    name: stage.get("do", stage) for name, stage in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].items()
}
# `pipeline.train <family>` imports one model family's module (lazily, by family).
FAMILY = {
    "naive": "pipeline.models.naive",
    "arima": "pipeline.models.arima",
    "sklearn": "pipeline.models.regressor",
    "lstm": "pipeline.models.recurrent",
    "rnn_scratch": "pipeline.models.scratch_rnn",
}


def _imports(module: str) -> set[str]:
    """The `pipeline` modules `module` imports anywhere in its body (lazy imports included),
    plus the two ways code is loaded without an import statement: a sibling file named as a
    string (`"served.py"`, which MLflow runs as a model from code), and the model families the
    model loader imports by `pipeline.models.store.FAMILIES`."""
    path = ROOT / (module.replace(".", "/") + ".py")
    found = set()
    if module == "pipeline.models.loader":
        found |= {family_module for family_module, _ in FAMILIES.values()}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.endswith((".py", ".yaml")):
            sibling = path.with_name(node.value)
            if sibling.is_file() and sibling != path:
                found.add(_module_of(sibling))
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pipeline"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if (ROOT / (candidate.replace(".", "/") + ".py")).exists() else node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("pipeline.")}
    return {name for name in found if _file_of(name).exists()}


def _module_of(path: Path) -> str:
    """`pipeline/x.py` -> `pipeline.x`; a data file (`pipeline/text.yaml`) keeps its path."""
    relative = path.relative_to(ROOT).as_posix()
    return relative[: -len(".py")].replace("/", ".") if relative.endswith(".py") else relative


def _file_of(name: str) -> Path:
    return ROOT / name if "/" in name else ROOT / (name.replace(".", "/") + ".py")


def _closure(module: str, family: str | None) -> set[str]:
    seen, todo = set(), [module]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        if "/" in current:  # a data file: it imports nothing
            continue
        for name in _imports(current):
            other_family = family is not None and name in FAMILY.values() and name != family
            if not other_family:
                todo.append(name)
    return seen


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_lists_exactly_the_code_it_imports(stage):
    words = STAGES[stage]["cmd"].split()
    assert words[:2] == ["python", "-m"], STAGES[stage]["cmd"]
    module = words[2]
    family = FAMILY.get(words[3]) if len(words) > 3 else None
    expected = {_file_of(name).relative_to(ROOT).as_posix() for name in _closure(module, family)}
    expected -= {"pipeline/__init__.py"}
    listed = {dep for dep in STAGES[stage]["deps"] if dep.startswith("pipeline/")}
    assert listed == expected


def test_each_cell_is_its_own_stage_reading_every_lstm_key_but_the_list_of_cells():
    """Adding a cell to `lstm.cells` must not rerun the cells already there: their stages read
    every other `lstm` key, each by name."""
    raw = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["lstm"]
    assert raw["foreach"] == "${lstm.cells}"
    assert raw["do"]["cmd"] == "python -m pipeline.train lstm ${item}"
    outs = {out if isinstance(out, str) else next(iter(out)) for out in raw["do"]["outs"]}
    tuning = {"reports/tuning/${item}.json", "reports/tuning/${item}.seconds.json"}
    assert outs == {"data/predictions/${item}.parquet", "models/${item}", *tuning}
    listed = {key for key in raw["do"]["params"] if key.startswith("lstm")}
    assert listed == {f"lstm.{key}" for key in LstmParams.model_fields if key != "cells"}


def test_the_lock_has_exactly_the_stages_of_the_default_params():
    """DVC keeps a lock entry of a stage that no longer exists (a cell an experiment added, a
    renamed stage); the reproducibility check in CI would fail on it."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    expected = set()
    for name, stage in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].items():
        if "foreach" not in stage:
            expected.add(name)
            continue
        section, key = stage["foreach"].removeprefix("${").removesuffix("}").split(".")
        expected |= {f"{name}@{item}" for item in params[section][key]}
    assert set(yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"]) == expected


def test_the_stages_that_read_features_keys_list_them():
    """The features stage and the window models (their `pipeline.train.SECTIONS` include
    `features`) read every `features` key, `features.covariates` included; ARIMA reads
    `features.covariates` (with `arima.exog`, listed in its whole `arima` section); no other
    stage reads any, so a new covariate reruns exactly these."""
    from pipeline.params import ArimaParams, FeaturesParams
    from pipeline.train import SECTIONS

    every = {f"features.{key}" for key in FeaturesParams.model_fields}
    assert "features.covariates" in every and "exog" in ArimaParams.model_fields
    for name, stage in STAGES.items():
        listed = {str(key).split()[0] for key in stage.get("params", [])}
        features = {key for key in listed if key.startswith("features")}
        if name == "features" or "features" in SECTIONS.get(name, ()):
            assert features == every, name
        elif name == "arima":
            assert features == {"features.covariates"} and "arima" in listed
        else:
            assert not features, name
