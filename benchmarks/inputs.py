"""The benchmarks' inputs, built by the pipeline's own stage functions (no files read or written)."""

from __future__ import annotations

import pandas as pd

from pipeline.ingest import load_prices, synthetic_prices
from pipeline.params import Params
from pipeline.split import make_folds


def default_inputs(params: Params) -> tuple[pd.DataFrame, dict]:
    """The prices of `data.*` and their walk-forward folds, as `dvc repro` would make them."""
    return _with_folds(load_prices(params.data), params)


def synthetic_inputs(n_series: int, params: Params) -> tuple[pd.DataFrame, dict]:
    """`n_series` seeded random walks of `data.n_days` days (seed `data.seed`) and their folds."""
    return _with_folds(synthetic_prices(n_series, params.data.n_days, params.data.seed), params)


def _with_folds(prices: pd.DataFrame, params: Params) -> tuple[pd.DataFrame, dict]:
    return prices, make_folds(prices, params.split)
