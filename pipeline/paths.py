"""Every file the pipeline reads or writes, in one place (relative to the project root)."""

from pathlib import Path

PARAMS = Path("params.yaml")
DATA = Path("data")
REPORTS = Path("reports")
MODELS = Path("models")

PRICES = DATA / "prices.parquet"
WINDOWS = DATA / "windows.parquet"
COVARIATES = DATA / "covariates.parquet"  # each series' covariate channels by day (features.covariates)
FOLDS = DATA / "folds.json"
PREDICTIONS = DATA / "predictions"

METRICS = REPORTS / "metrics.json"
LEADERBOARD = REPORTS / "leaderboard.md"
EVALUATION = REPORTS / "evaluation.json"  # evaluate's scores beyond the metrics.json contract
PLOTS = REPORTS / "plots"
DIAGNOSTICS = REPORTS / "diagnostics"  # per-series statistics and figures of the prices alone
DIAGNOSTICS_JSON = DIAGNOSTICS / "diagnostics.json"
TRACKED = DATA / "tracked.json"  # the tracking stage's receipt: what it logged (no run ids)


def predictions(model: str) -> Path:
    """The predictions table a model writes; its file stem is the model's name everywhere."""
    return PREDICTIONS / f"{model}.parquet"


def model_directory(model: str) -> Path:
    """Where a model stage saves the fitted `model` (`pipeline.models.store`)."""
    return MODELS / model


def decomposition(series: str) -> Path:
    """The diagnostics stage's STL figure of one series."""
    return DIAGNOSTICS / f"decomposition_{series}.png"


def decompositions(diagnostics: dict) -> list[Path]:
    """The STL figures a diagnostics report (`diagnostics.json`'s content) has, in series order:
    every series long enough for a decomposition (a seasonal strength that is not null)."""
    return [
        decomposition(uid) for uid, entry in diagnostics["series"].items() if entry["seasonal_strength"] is not None
    ]
