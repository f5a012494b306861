"""`reports/leaderboard.md`: the evaluate stage's scores as a page a person reads.

`render` is a pure function of the two reports the stage writes (`metrics.json`'s contents and
`evaluation.json`'s), the folds and the figure paths; it names no model but the baseline the
reports name. Skill against the baseline is shown at every horizon; the other tables are at the
shortest horizon (one step by default) and say so. The headline (SPA and MCS per horizon), the
multiple-testing table, the summary across series and the economic value are
`pipeline.evidence_report`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pipeline import evidence_report, gradients, plots, scoring, tuning_report
from pipeline.report_format import num as _num
from pipeline.report_format import pvalue as _p
from pipeline.report_format import sig as _sig
from pipeline.report_format import text


def render(
    report: dict,
    details: dict,
    folds: dict[str, list[dict]],
    images: Sequence[Path],
    diagnostics: dict,
    tuning: dict[str, dict] | None = None,
    timings: dict[str, dict] | None = None,
) -> str:
    """The whole leaderboard page, ending with a newline; `diagnostics` is the diagnostics
    stage's report (ADF tests and seasonal strength per series); `tuning` the models' tuning
    reports and `timings` their seconds (`pipeline.tuning_report`), by model."""
    baseline, alpha, horizons = details["baseline"], details["alpha"], details["horizons"]
    step = step_label(horizons[0])
    models = report["models"]
    ranked = sorted(models, key=lambda m: (models[m]["rmse"], m))
    lines = ["# Leaderboard", "", *_headlines(report, horizons, baseline, alpha)]
    lines += [
        text()["intro"].format(
            n_series=len(report["series"]),
            series=", ".join(report["series"]),
            horizons=", ".join(map(str, horizons)),
            folds=_join(sorted({len(entries) for entries in folds.values()})),
            forecasts=_join(sorted({s["n_forecasts"] for s in models.values()})),
            step=step,
            baseline=baseline,
        ),
        "",
    ]
    lines += _score_table(ranked, models, details, baseline, alpha, with_params=True)
    lines += ["", *_notes(details, baseline, alpha), ""]
    lines += _skill(ranked, models, horizons, baseline, alpha, images)
    lines += evidence_report.multiple_testing(report, horizons, alpha) if baseline in models else []
    lines += evidence_report.across_series(report, horizons, baseline, alpha, images, details["max_series_figures"])
    lines += evidence_report.economic_value(report, details, images)
    lines += _parameters(ranked, details)
    lines += _intervals(ranked, models, details, horizons, images)
    lines += _gradients(details["gradient_by_lag"], list(report["series"]), images)
    lines += ["## By series", ""]
    chosen = {h: scoring.champions(report, h) for h in horizons}
    for uid, by_model in report["series"].items():
        order = sorted(by_model, key=lambda m: (by_model[m]["rmse"], m))
        lines += [f"### {uid}", "", champion_sentence(uid, chosen[horizons[0]][uid], baseline), ""]
        if len(horizons) > 1:
            named = ", ".join(f"h={h} **{chosen[h][uid]}**" for h in horizons)
            lines += [text()["champions_by_horizon"].format(champions=named), ""]
        fan = [path for path in images if path.stem == f"fan_{uid}"]
        lines += [f"![{uid}: the champion's {step} forecasts and intervals]({path.as_posix()})" for path in fan]
        lines += [""] if fan else []
        lines += [
            f"Scores at {step}:",
            "",
            *_score_table(order, by_model, details, baseline, alpha, with_params=False),
            "",
        ]
    lines += _by_fold(ranked, details, baseline, step)
    lines += tuning_report.section(tuning or {}, timings or {}, text()["tuning"])
    lines += _pairwise(ranked, details, alpha, step)
    lines += _stationarity(diagnostics, alpha)
    lines += ["## Plots", "", *[f"- [{path.stem}]({path.as_posix()})" for path in images], ""]
    return "\n".join(lines)


def step_label(horizon: int) -> str:
    """How the page and the figures name the horizon a one-horizon table or figure shows."""
    return "h=1 (one step)" if horizon == 1 else f"h={horizon}"


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


def _headlines(report: dict, horizons: list[int], baseline: str, alpha: float) -> list[str]:
    if baseline not in report["models"]:
        return [f"**There is no `{baseline}` predictions table, so nothing is compared with the random walk.**", ""]
    return evidence_report.headlines(report, horizons, baseline, alpha)


def mark(scores: dict, baseline: str, alpha: float, model: str) -> str:
    """`verdict` as a mark for a table cell: ✓ beats the baseline, ✗ worse, empty otherwise."""
    p, stat = scores["dm_pvalue_vs_naive"], scores["dm_stat_vs_naive"]
    if model == baseline or p is None or p >= alpha:
        return ""
    return " ✓" if stat < 0 else " ✗"


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


def _skill(
    order: list[str], models: dict, horizons: list[int], baseline: str, alpha: float, images: Sequence[Path]
) -> list[str]:
    if baseline not in models:
        return []
    lines = ["## Skill by horizon", "", text()["skill_intro"].format(baseline=baseline, alpha_pct=f"{alpha:.0%}"), ""]
    lines += ["| model | " + " | ".join(f"h={h}" for h in horizons) + " |", "|---|" + "---:|" * len(horizons)]
    for model in order:
        cells = []
        for h in horizons:
            s = models[model]["by_horizon"][str(h)]
            if model == baseline:
                cells.append("1 (baseline)")
            elif s["rmse_vs_naive"] is None:
                cells.append("n/a")
            else:
                cells.append(
                    f"{s['rmse_vs_naive']:.4f} (p={_p(s['dm_pvalue_vs_naive'])}){mark(s, baseline, alpha, model)}"
                )
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    figure = [path for path in images if path.stem == plots.SKILL_BY_HORIZON]
    lines += ["", *(f"![RMSE / {baseline} by horizon]({path.as_posix()})" for path in figure)]
    return lines + [""]


def _notes(details: dict, baseline: str, alpha: float) -> list[str]:
    flat = _join(sorted({d["direction_days_unchanged"] for d in details["models"].values()}))
    values = {"baseline": baseline, "alpha_pct": f"{alpha:.0%}", "flat": flat}
    return ["How to read it:", *(f"- {note.format(**values)}" for note in text()["notes"])]


def _parameters(order: list[str], details: dict) -> list[str]:
    lines = [
        "## Inputs and trainable parameters",
        "",
        "Covariates: what a model read beside the price (`features.covariates`). Parameters counted on "
        "the model fitted to the last fold; recurrent layers by weight block (input W_xh, recurrent W_hh, "
        "bias, output).",
        "",
    ]
    lines += ["| model | covariates | total | by block |", "|---|---|---:|---|"]
    for model in order:
        d = details["models"][model]
        blocks = ", ".join(f"{name} {count:,}" for name, count in d["parameter_counts"].items()) or "-"
        covariates = ", ".join(d.get("covariates") or []) or "none"
        total = "n/a" if d["n_params"] is None else format(d["n_params"], ",")
        lines.append(f"| {model} | {covariates} | {total} | {blocks} |")
    return lines + [""]


def _gradients(report: dict, series: list[str], images: Sequence[Path]) -> list[str]:
    """The gradient-by-lag section: the figure, a table of each model's profile and one sentence
    per model, from the numbers; nothing without a model that has a profile."""
    if not report:
        return []
    words = text()["gradients"]
    n_lags = max(len(entry["profile"]) for entry in report.values())
    pct = f"{gradients.VANISHED:.0%}"
    lags = sorted({int(k) for entry in report.values() for k in entry["at_lags"]})
    lines = ["## Gradients by lag", "", words["intro"].format(pct=pct, n_lags=n_lags), ""]
    figure = [path for path in images if path.stem == plots.GRADIENT_BY_LAG]
    lines += [f"![gradient of the forecast by lag]({path.as_posix()})" for path in figure]
    lines += [""] if figure else []
    lines += ["| model | below " + pct + " from lag | " + " | ".join(f"lag {k}" for k in lags) + " |"]
    lines += ["|---|---:|" + "---:|" * len(lags)]
    for model, entry in report.items():
        vanished = "-" if entry["vanishing_lag"] is None else str(entry["vanishing_lag"])
        values = " | ".join(_sig(entry["at_lags"].get(str(k))) for k in lags)
        lines.append(f"| {model} | {vanished} | {values} |")
    parts = []
    for model, entry in sorted(report.items(), key=lambda item: (item[1]["vanishing_lag"] or n_lags + 1, item[0])):
        profile = entry["profile"]
        if entry["vanishing_lag"] is None:
            parts.append(words["kept"].format(model=model, n_lags=len(profile), last=_sig(profile[-1])))
        else:
            parts.append(words["vanished"].format(model=model, pct=pct, lag=entry["vanishing_lag"]))
    lines += ["", words["finding"].format(series=", ".join(series), parts="; ".join(parts)), ""]
    return lines


def _intervals(order: list[str], models: dict, details: dict, horizons: list[int], images: Sequence[Path]) -> list[str]:
    levels = sorted({L for s in models.values() for L in scoring.scored_levels(s)}, key=float)
    if not levels:
        return []
    lines = ["## Prediction intervals", "", text()["intervals_intro"], ""]
    lines += ["| model | method | h | " + " | ".join(f"{L}% interval" for L in levels) + " |"]
    lines += ["|---|---|---:|" + "---|" * len(levels)]
    for model in [m for m in order if scoring.scored_levels(models[m])]:
        method = interval_method(details["models"][model])
        for h in horizons:
            s = models[model]["by_horizon"][str(h)]
            cells = [
                f"{L}%: {s[f'coverage_{L}']:.1%} covered, width {_sig(s[f'width_{L}'])}, "
                f"IS {_sig(s[f'interval_score_{L}'])}"
                if f"coverage_{L}" in s
                else "-"
                for L in levels
            ]
            lines.append(f"| {model} | {method} | {h} | " + " | ".join(cells) + " |")
    figure = [path for path in images if path.stem == plots.CALIBRATION]
    lines += ["", *(f"![Nominal against empirical coverage]({path.as_posix()})" for path in figure)]
    return lines + [""]


def interval_method(model_details: dict) -> str:
    """A model's interval method as a table cell: `aci (gamma 0.005)`, `conformal`, `gaussian`, or
    n/a where its table's metadata does not say."""
    method, gamma = model_details["interval_method"], model_details["interval_gamma"]
    if method is None:
        return "n/a"
    return f"{method} (gamma {gamma:g})" if gamma is not None else method


def _by_fold(order: list[str], details: dict, baseline: str, step: str) -> list[str]:
    folds = details["folds"]
    lines = [
        "## By fold",
        "",
        f"RMSE per walk-forward fold at {step}, pooled over series (`RMSE / {baseline}` in brackets).",
        "",
    ]
    lines += ["| model | " + " | ".join(f"fold {k}" for k in folds) + " |", "|---|" + "---:|" * len(folds)]
    for model in order:
        cells = []
        for by_model in folds.values():
            s = by_model.get(model)
            cells.append("-" if s is None else f"{_sig(s['rmse'])} ({_num(s['rmse_vs_naive'], '.3f')})")
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return lines + [""]


def _pairwise(order: list[str], details: dict, alpha: float, step: str) -> list[str]:
    if len(order) < 2:
        return []
    pairs = details["dm_pairwise"]
    lines = [
        "## Pairwise Diebold-Mariano",
        "",
        f"Row model against column model at {step} on the days both forecast: statistic (p-value); "
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


def _join(values: list) -> str:
    return " to ".join(f"{v:,}" for v in (values[0], values[-1])) if len(values) > 1 else f"{values[0]:,}"
