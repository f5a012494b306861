"""Every file the pipeline reads or writes, in one place (relative to the project root)."""

from pathlib import Path

PARAMS = Path("params.yaml")
DATA = Path("data")
REPORTS = Path("reports")

PRICES = DATA / "prices.parquet"
WINDOWS = DATA / "windows.parquet"
FOLDS = DATA / "folds.json"
PREDICTIONS = DATA / "predictions"

METRICS = REPORTS / "metrics.json"
LEADERBOARD = REPORTS / "leaderboard.md"
EVALUATION = REPORTS / "evaluation.json"  # evaluate's scores beyond the metrics.json contract
PLOTS = REPORTS / "plots"


def predictions(model: str) -> Path:
    """The predictions table a model writes; its file stem is the model's name everywhere."""
    return PREDICTIONS / f"{model}.parquet"
