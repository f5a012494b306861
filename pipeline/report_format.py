"""Formatting shared by the leaderboard's sections: its prose file and how numbers are written."""

from __future__ import annotations

import functools
from pathlib import Path

import yaml


@functools.cache
def text() -> dict:
    """The page's prose paragraphs (`leaderboard_text.yaml` beside this module)."""
    return yaml.safe_load((Path(__file__).parent / "leaderboard_text.yaml").read_text(encoding="utf-8"))


def num(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def sig(value: float | None) -> str:
    """Four significant digits, trailing zeros kept (20.10, 0.05010); whole numbers from 1,000."""
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 1000 else format(value, "#.4g")


def pvalue(value: float | None) -> str:
    if value is None:
        return "n/a"
    return "<1e-4" if value < 1e-4 else f"{value:.4f}"
