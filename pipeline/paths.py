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
TUNING = REPORTS / "tuning"  # per model stage: what its studies chose and tried (`pipeline.tuning_report`)
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


def tuning(model: str) -> Path:
    """A model stage's tuning report: the chosen values and trials per (series, fold), no timings."""
    return TUNING / f"{model}.json"


def tuning_seconds(model: str) -> Path:
    """The same studies' wall-clock seconds: an output of its own, since they differ run to run
    (DVC does not cache it, git ignores it)."""
    return TUNING / f"{model}.seconds.json"
