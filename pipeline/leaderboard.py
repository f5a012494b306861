"""`reports/leaderboard.md`: the evaluate stage's scores as a page a person reads.

`render` is a pure function of the two reports the stage writes (`metrics.json`'s contents and
`evaluation.json`'s), the folds and the figure paths; it names no model but the baseline the
reports name.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import yaml

from pipeline import scoring


@functools.cache
def text() -> dict:
    """The page's prose paragraphs (`leaderboard_text.yaml` beside this module)."""
    return yaml.safe_load((Path(__file__).parent / "leaderboard_text.yaml").read_text(encoding="utf-8"))


def render(report: dict, details: dict, folds: dict[str, list[dict]], images: Sequence[Path], diagnostics: dict) -> str:
    """The whole leaderboard page, ending with a newline; `diagnostics` is the diagnostics
    stage's report (ADF tests and seasonal strength per series)."""
    baseline, alpha = details["baseline"], details["alpha"]
    models = report["models"]
    ranked = sorted(models, key=lambda m: (models[m]["rmse"], m))
    lines = ["# Leaderboard", "", headline(models, baseline, alpha), ""]
    n_folds = sorted({len(entries) for entries in folds.values()})
    n_forecasts = sorted({s["n_forecasts"] for s in models.values()})
    lines += [
        f"One-step-ahead walk-forward forecasts of {len(report['series'])} series ({', '.join(report['series'])}), "
        f"{_join(n_folds)} folds per series, {_join(n_forecasts)} forecasts per model. Ranked by RMSE pooled over "
        f"every fold and series; `RMSE / {baseline}` below 1 means smaller errors than the {baseline} random walk "
        "on the same days.",
        "",
    ]
    lines += _score_table(ranked, models, details, baseline, alpha, with_params=True)
    lines += ["", *_notes(details, baseline, alpha), ""]
    lines += _parameters(ranked, details)
    lines += _intervals(ranked, details)
    lines += ["## By series", ""]
    chosen = scoring.champions(report)
    for uid, by_model in report["series"].items():
        order = sorted(by_model, key=lambda m: (by_model[m]["rmse"], m))
        lines += [
            f"### {uid}",
            "",
            champion_sentence(uid, chosen[uid], baseline),
            "",
            *_score_table(order, by_model, details, baseline, alpha, with_params=False),
            "",
        ]
    lines += _by_fold(ranked, details, baseline)
    lines += _pairwise(ranked, details, alpha)
    lines += _stationarity(diagnostics, alpha)
    lines += ["## Plots", "", *[f"- [{path.stem}]({path.as_posix()})" for path in images], ""]
    return "\n".join(lines)


def champion_sentence(uid: str, champion: str, baseline: str) -> str:
    """Which model the registry serves for `uid` (`stockcast-<uid>@champion`), in plain words."""
    key = "champion_baseline" if champion == baseline else "champion_model"
    return text()[key].format(champion=champion, baseline=baseline, uid=uid)


def verdict(scores: dict, baseline: str, alpha: float, model: str) -> str:
    """The DM test against the baseline in plain words."""
    if model == baseline:
        return "the baseline"
    p, stat = scores["dm_pvalue_vs_naive"], scores["dm_stat_vs_naive"]
    if p is None:
        return "no test (no common days or identical errors)"
    if p < alpha:
        return f"beats {baseline} (p<{alpha:g})" if stat < 0 else f"worse than {baseline} (p<{alpha:g})"
    return f"no evidence it beats {baseline}"


def headline(models: dict, baseline: str, alpha: float) -> str:
    """The sentence at the top: does anything beat the baseline?"""
    if baseline not in models:
        return f"**There is no `{baseline}` predictions table, so nothing is compared with the random walk.**"
    winners = [m for m, s in models.items() if m != baseline and scoring.beats_baseline(s)]
    if winners:
        named = ", ".join(
            f"{m} (RMSE / {baseline} {_num(models[m]['rmse_vs_naive'], '.4f')}, "
            f"p={_p(models[m]['dm_pvalue_vs_naive'])})"
            for m in winners
        )
        return f"**Beats the {baseline} random walk at the {alpha:.0%} level: {named}.**"
    return text()["no_winner"].format(baseline=baseline, alpha_pct=f"{alpha:.0%}")


def _score_table(
    order: list[str], scores: dict, details: dict, baseline: str, alpha: float, with_params: bool
) -> list[str]:
    head = [
        "rank",
        "model",
        "RMSE",
        "MAE",
        "MAPE",
        "MASE",
        "direction",
        f"RMSE / {baseline}",
        "DM stat",
        "DM p",
        "verdict",
    ]
    if with_params:
        head.append("params")
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" if h in ("model", "verdict") else "---:" for h in head) + "|",
    ]
    for rank, model in enumerate(order, start=1):
        s = scores[model]
        cells = [
            str(rank),
            model,
            _sig(s["rmse"]),
            _sig(s["mae"]),
            _num(s["mape"], ".3%"),
            _num(s["mase"], ".4f"),
            _num(s["directional_accuracy"], ".1%"),
            _num(s["rmse_vs_naive"], ".4f"),
            _num(s["dm_stat_vs_naive"], ".3f"),
            _p(s["dm_pvalue_vs_naive"]),
            verdict(s, baseline, alpha, model),
        ]
        if with_params:
            n_params = details["models"][model]["n_params"]
            cells.append("n/a" if n_params is None else f"{n_params:,}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _notes(details: dict, baseline: str, alpha: float) -> list[str]:
    flat = _join(sorted({d["direction_days_unchanged"] for d in details["models"].values()}))
    values = {"baseline": baseline, "alpha_pct": f"{alpha:.0%}", "flat": flat}
    return ["How to read it:", *(f"- {note.format(**values)}" for note in text()["notes"])]


def _parameters(order: list[str], details: dict) -> list[str]:
    lines = [
        "## Trainable parameters",
        "",
        "Counted on the model fitted to the last fold; "
        "recurrent layers by weight block (input W_xh, recurrent W_hh, bias, output).",
        "",
    ]
    lines += ["| model | total | by block |", "|---|---:|---|"]
    for model in order:
        d = details["models"][model]
        blocks = ", ".join(f"{name} {count:,}" for name, count in d["parameter_counts"].items()) or "-"
        lines.append(f"| {model} | {'n/a' if d['n_params'] is None else format(d['n_params'], ',')} | {blocks} |")
    return lines + [""]


def _intervals(order: list[str], details: dict) -> list[str]:
    with_interval = [m for m in order if details["models"][m]["interval_coverage"] is not None]
    if not with_interval:
        return []
    lines = [
        "## Prediction intervals",
        "",
        "Share of actual prices inside the model's [y_lo, y_hi] and the interval's mean width.",
        "",
    ]
    lines += ["| model | coverage | mean width (price) |", "|---|---:|---:|"]
    for model in with_interval:
        d = details["models"][model]
        lines.append(f"| {model} | {_num(d['interval_coverage'], '.1%')} | {_sig(d['interval_mean_width'])} |")
    return lines + [""]


def _by_fold(order: list[str], details: dict, baseline: str) -> list[str]:
    folds = details["folds"]
    lines = ["## By fold", "", f"RMSE per walk-forward fold, pooled over series (`RMSE / {baseline}` in brackets).", ""]
    lines += ["| model | " + " | ".join(f"fold {k}" for k in folds) + " |", "|---|" + "---:|" * len(folds)]
    for model in order:
        cells = []
        for by_model in folds.values():
            s = by_model.get(model)
            cells.append("-" if s is None else f"{_sig(s['rmse'])} ({_num(s['rmse_vs_naive'], '.3f')})")
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return lines + [""]


def _pairwise(order: list[str], details: dict, alpha: float) -> list[str]:
    if len(order) < 2:
        return []
    pairs = details["dm_pairwise"]
    lines = [
        "## Pairwise Diebold-Mariano",
        "",
        "Row model against column model on the days both forecast: statistic (p-value); "
        "negative means the row model has smaller squared errors. Bold: significant at the "
        f"{alpha:.0%} level.",
        "",
    ]
    lines += ["| | " + " | ".join(order) + " |", "|---|" + "---:|" * len(order)]
    for a in order:
        cells = []
        for b in order:
            test = pairs[a].get(b)
            if test is None or test["dm_pvalue"] is None:
                cells.append("-")
                continue
            cell = f"{test['dm_stat']:.2f} ({_p(test['dm_pvalue'])})"
            cells.append(f"**{cell}**" if test["dm_pvalue"] < alpha else cell)
        lines.append(f"| {a} | " + " | ".join(cells) + " |")
    return lines + [""]


def _stationarity(diagnostics: dict, alpha: float) -> list[str]:
    series, period = diagnostics["series"], diagnostics["seasonal_period"]
    lines = [
        "## Trend, seasonality, and why the models work on returns",
        "",
        text()["stationarity_intro"].format(period=period),
        "",
    ]
    lines += [
        "| series | days | ADF log price | p | ADF log return | p | seasonal strength |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for uid, s in series.items():
        cells = [uid, f"{s['n_days']:,}"]
        for test in (s["adf_log_price"], s["adf_log_return"]):
            cells += ["constant", "n/a"] if test is None else [f"{test['statistic']:.3f}", _p(test["pvalue"])]
        cells.append(_num(s["seasonal_strength"], ".3f"))
        lines.append("| " + " | ".join(cells) + " |")
    wandering = [
        u for u, s in series.items() if s["adf_log_price"] is not None and s["adf_log_price"]["pvalue"] >= alpha
    ]
    settled = [
        u for u, s in series.items() if s["adf_log_return"] is not None and s["adf_log_return"]["pvalue"] < alpha
    ]
    if len(wandering) == len(series) and len(settled) == len(series):
        closing = text()["stationarity_all"].format(alpha=f"{alpha:g}")
    else:
        closing = text()["stationarity_some"].format(
            alpha=f"{alpha:g}", wandering=", ".join(wandering) or "none", settled=", ".join(settled) or "none"
        )
    return [*lines, "", closing, ""]


def _num(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _sig(value: float | None) -> str:
    """Four significant digits, trailing zeros kept (20.10, 0.05010); whole numbers from 1,000."""
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 1000 else format(value, "#.4g")


def _p(value: float | None) -> str:
    if value is None:
        return "n/a"
    return "<1e-4" if value < 1e-4 else f"{value:.4f}"


def _join(values: list) -> str:
    return " to ".join(f"{v:,}" for v in (values[0], values[-1])) if len(values) > 1 else f"{values[0]:,}"
