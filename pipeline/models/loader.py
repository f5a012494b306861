"""Reading `models/<name>/` back into fitted models (the other side of `pipeline.models.store`).

`load` builds a model from its family's class, found by name in `store.FAMILIES` (a fixed table,
not a path read from the file), so a models directory cannot make this code import or run
anything else; each family's `load` reads numbers and names only.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from pipeline import io
from pipeline.cli import UserError
from pipeline.models.store import FAMILIES, MANIFEST, read_manifest


def family_class(name: str) -> type:
    """The class of family `name` (a key of `store.FAMILIES`), imported on first use."""
    if name not in FAMILIES:
        raise KeyError(name)
    module, cls = FAMILIES[name]
    return getattr(importlib.import_module(module), cls)


def load(directory: Path, uid: str):
    """The fitted model of series `uid` saved in `directory` (a `models/<name>/`), with the
    calibrated intervals the manifest holds for it, where it holds some."""
    content = read_manifest(directory)
    if uid not in content["series"]:
        raise UserError(
            f"{Path(directory) / MANIFEST}: no model for series {uid!r} (series: {', '.join(content['series'])})"
        )
    entry = content["series"][uid]
    where = Path(directory) / entry["path"]
    try:
        model = family_class(content["family"]).load(where, entry.get("params", content["params"]))
        if "intervals" in entry:  # calibrated by the walk-forward loop (`pipeline.models.calibrated`)
            from pipeline.models.calibrated import Calibrated

            calibration = entry["intervals"]
            return Calibrated(model, tuple(calibration["levels"]), calibration["half_widths"])
        return model
    except FileNotFoundError as err:  # a file of the model deleted: name that file
        missing = Path(err.filename or where)
        raise UserError(f"{missing}: file not found; {io.repair(missing)}") from None
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UserError(f"{where}: cannot load the {content['family']} model ({err}); {io.repair(where)}") from None
