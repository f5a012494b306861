"""The leaderboard's evidence sections: the SPA and MCS headline, the multiple-testing table,
the summary across series and the economic value of the forecasts.

Pure functions of `metrics.json`'s content (`tests`, `series`, `models.<name>.trading`,
`buy_and_hold`) and `evaluation.json`'s (`trading`, `max_series_figures`); the prose is
`leaderboard_text.yaml`'s `evidence` entry. `pipeline.leaderboard.render` places them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pipeline import evidence, plots, trading
from pipeline.report_format import num, pvalue, text


def headlines(report: dict, horizons: list[int], baseline: str, alpha: float) -> list[str]:
    """One bullet per horizon: Hansen's SPA verdict on "does any model beat the baseline", then
    the model confidence set."""
    words = text()["evidence"]
    n, lines = len(report["series"]), []
    for h in horizons:
        spa, mcs = report["tests"]["spa"].get(str(h)), report["tests"]["mcs"].get(str(h))
        if spa is None:
            sentence = words["spa_none"].format(h=h, baseline=baseline)
        else:
            key = "spa_beaten" if spa["pvalue"] < alpha else "spa_not_beaten"
            sentence = words[key].format(
                h=h,
                baseline=baseline,
                p=pvalue(spa["pvalue"]),
                alpha_pct=f"{alpha:.0%}",
                n_models=f"{len(report['models']) - 1} model{'' if len(report['models']) == 2 else 's'}",
                pooled=f"pooled over {n} series" if n > 1 else f"on {', '.join(report['series'])}",
            )
        if mcs is not None:
            sentence += " " + words["mcs"].format(size=f"{mcs['size']:.0%}", models=", ".join(mcs["included"]))
        lines.append(f"- {sentence}")
    return [*lines, ""]


def multiple_testing(report: dict, horizons: list[int], alpha: float) -> list[str]:
    """The SPA p-values (pooled and how many series reject) and the MCS p-values per horizon."""
    words = text()["evidence"]
    tests = report["tests"]
    lines = ["## Multiple testing: does any model beat the random walk?", "", words["tests_intro"], ""]
    lines += ["| h | SPA p (consistent) | lower | upper | series with SPA p < " + f"{alpha:g}" + " | MCS (p-values) |"]
    lines += ["|---:|---:|---:|---:|---:|---|"]
    for h in horizons:
        spa, mcs = tests["spa"].get(str(h)), tests["mcs"].get(str(h))
        cells = [str(h)]
        if spa is None:
            cells += ["n/a"] * 4
        else:
            by_series = [s for s in spa["series"].values() if s is not None]
            rejected = sum(s["pvalue"] < alpha for s in by_series)
            cells += [pvalue(spa["pvalue"]), pvalue(spa["pvalue_lower"]), pvalue(spa["pvalue_upper"])]
            cells.append(f"{rejected} of {len(by_series)}")
        if mcs is None:
            cells.append("n/a")
        else:
            inside = set(mcs["included"])
            cells.append(
                ", ".join(
                    f"**{m}** {pvalue(p)}" if m in inside else f"{m} {pvalue(p)}" for m, p in mcs["pvalues"].items()
                )
            )
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def across_series(
    report: dict, horizons: list[int], baseline: str, alpha: float, images: Sequence[Path], max_figures: int
) -> list[str]:
    """With several series: per model and horizon, the median RMSE / baseline over the series and
    the share of series that beat it by DM after Holm's correction; the figure; which series have
    their own figures and why."""
    summary = report["tests"]["cross_series"]
    if len(report["series"]) < 2 or not summary:
        return []
    words = text()["evidence"]
    n, drawn = len(report["series"]), evidence.figure_series(report, max_figures)
    lines = ["## Across series", "", words["series_intro"].format(n=n, baseline=baseline, alpha=f"{alpha:g}"), ""]
    lines += ["| model | " + " | ".join(f"h={h}: median RMSE / {baseline}, share beating" for h in horizons) + " |"]
    lines += ["|---|" + "---:|" * len(horizons)]
    for model in sorted(summary[str(horizons[0])]):
        cells = []
        for h in horizons:
            s = summary[str(h)].get(model)
            share = "n/a" if s is None or s["share_beating_naive"] is None else f"{s['share_beating_naive']:.0%}"
            cells.append("n/a" if s is None else f"{num(s['median_rmse_vs_naive'], '.4f')}, {share} of {s['n_series']}")
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    figure = [path for path in images if path.stem == plots.SKILL_BY_SERIES]
    lines += ["", *(f"![RMSE / {baseline} across series]({path.as_posix()})" for path in figure)]
    rule = "series_all" if len(drawn) == n else "series_some"
    lines += ["", words[rule].format(k=len(drawn), n=n, series=", ".join(drawn) or "none", baseline=baseline), ""]
    return lines


def economic_value(report: dict, details: dict, images: Sequence[Path]) -> list[str]:
    """Each model's strategy and buy-and-hold after costs: a measure of forecast value."""
    words = text()["evidence"]
    setup = details["trading"]
    lines = ["## Economic value (a measure of forecast value, not a trading system)", ""]
    lines += [words["value_intro"].format(strategy=setup["strategy"], cost=f"{setup['cost_bps']:g}"), ""]
    lines += ["| strategy | annual return | volatility | Sharpe (s.e.) | max drawdown | turnover / year | days |"]
    lines += ["|---|---:|---:|---:|---:|---:|---:|"]
    rows = [(m, s["trading"]) for m, s in report["models"].items()] + [(trading.BUY_AND_HOLD, report["buy_and_hold"])]
    for name, t in sorted(rows, key=lambda item: (-(item[1]["sharpe"] or float("-inf")), item[0])):
        sharpe = "n/a" if t["sharpe"] is None else f"{t['sharpe']:.2f} ({t['sharpe_se']:.2f})"
        cells = [
            name,
            f"{t['annual_return']:.1%}",
            f"{t['volatility']:.1%}",
            sharpe,
            f"{t['max_drawdown']:.1%}",
            f"{t['turnover']:.1f}",
            f"{t['n_days']:,}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    figure = [path for path in images if path.stem == plots.EQUITY]
    lines += ["", *(f"![growth of 1 after costs]({path.as_posix()})" for path in figure)]
    return [*lines, ""]
