"""The monthly pack's charts: SVG drawn server-side with matplotlib, each with a text
alternative (what it shows and its latest values) for readers who cannot see it.

One measure per axis; suppressed ("*") and undefined values are gaps, never zeros. Text
stays text in the SVG (`svg.fonttype: none`) so the PDF keeps it searchable and small.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from services.reporting.domain.figure_definitions import label_of
from services.reporting.domain.trial import BEST_TRIAL

matplotlib.rcParams.update(
    {
        "svg.fonttype": "none",
        "svg.hashsalt": "ibest",
        "font.family": "DejaVu Sans",
        "font.size": 8,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
)
COLOURS = ("#005eb8", "#007f3b", "#330072", "#ae2573", "#ed8b00")
"""NHS identity blue, green, purple, pink, orange."""


LABELLED_ROWS = 30
"""Up to this many places a chart names each; more are drawn in order, unnamed (the
tables name them)."""


@dataclass(frozen=True)
class Chart:
    svg: str
    alt: str
    """The text alternative: the chart in words."""


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _svg(fig: Figure) -> str:
    out = io.StringIO()
    fig.savefig(out, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return out.getvalue()


def _figure(height: float = 2.2) -> tuple[Figure, Any]:
    fig, ax = plt.subplots(figsize=(7.0, height))
    return fig, ax


def _months_axis(ax: Any, months: list[str]) -> None:
    step = max(1, len(months) // 12)
    ticks = list(range(0, len(months), step))
    ax.set_xticks(ticks, [months[i] for i in ticks], rotation=45, ha="right")
    ax.set_xlabel("End of month")


def _latest(months: list[str], values: list[Any]) -> str:
    return "no value" if not values else f"{values[-1]} at the end of {months[-1]}"


def series_chart(
    series: dict[str, Any], names: tuple[str, ...], axis: str, place: str, *, percent: bool = False
) -> Chart:
    """Lines of monthly figures sharing one measure (`axis`), gaps where suppressed."""
    months: list[str] = series["months"]
    fig, ax = _figure()
    for i, name in enumerate(names):
        values = [_number(v) for v in series["figures"].get(name, [])]
        ys = [None if v is None else (v * 100 if percent else v) for v in values]
        ax.plot(
            range(len(months)),
            [float("nan") if y is None else y for y in ys],
            marker="o",
            markersize=2.5,
            color=COLOURS[i % len(COLOURS)],
            label=label_of(name),
        )
    if percent:
        target = BEST_TRIAL.followup_completeness * 100
        ax.axhline(target, color="#425563", linestyle="--", linewidth=1)
        ax.annotate(
            f"Trial: {target:.0f}% at 12 months",
            (0, target),
            xytext=(2, 3),
            textcoords="offset points",
            color="#425563",
        )
        ax.set_ylim(0, 100)
    ax.set_ylabel(axis)
    _months_axis(ax, months)
    ax.legend(loc="best", frameon=False)
    latest = "; ".join(
        f"{label_of(n)}: {_latest(months, series['figures'].get(n, []))}" for n in names
    )
    alt = (
        f"Line chart of {axis.lower()} for {place}, at the end of each month from "
        f"{months[0] if months else 'no month'} to {months[-1] if months else 'no month'}. "
        f"{latest}. Suppressed months are gaps. The table gives every value."
    )
    return Chart(_svg(fig), alt)


def comparison_chart(comparison: dict[str, Any], names: dict[str, str], place: str) -> Chart:
    """Each trust's (and England's) mean RMDQ improvement at 12 months with its 95%
    interval, over the trial's interval shaded."""
    trial = BEST_TRIAL.rmdq_improvement
    rows: list[tuple[str, float, float | None, float | None]] = []
    national = comparison["national"]
    if _number(national["improvement"]) is not None:
        rows.append(
            (
                "England",
                float(national["improvement"]),
                _number(national["ci_low"]),
                _number(national["ci_high"]),
            )
        )
    for t in comparison["trusts"]:
        mean = _number(t["improvement"])
        if mean is not None:
            label = names.get(t["trustcode"], t["trustcode"])
            rows.append((label, mean, _number(t["ci_low"]), _number(t["ci_high"])))
    labelled = len(rows) <= LABELLED_ROWS
    if not labelled:  # England first, then the trusts from the least to the most improved
        rows = rows[:1] + sorted(rows[1:], key=lambda r: r[1]) if rows else rows
    fig, ax = _figure(max(1.6, 0.22 * len(rows) + 1.0) if labelled else 4.2)
    ax.axvspan(trial.low, trial.high, color="#ffeb3b", alpha=0.45, label="Trial's 95% CI")
    ax.axvline(trial.mean, color="#425563", linewidth=1, label=f"Trial: {trial.mean}")
    for i, (label, mean, low, high) in enumerate(rows):
        colour = COLOURS[0] if label == "England" else COLOURS[2]
        if low is not None and high is not None:
            ax.plot([low, high], [i, i], color=colour, linewidth=1.5 if labelled else 0.6)
        ax.plot([mean], [i], "o", color=colour, markersize=4 if labelled else 1.5)
    if labelled:
        ax.set_yticks(range(len(rows)), [r[0] for r in rows])
    else:
        ax.set_yticks([0], ["England"])
        ax.set_ylabel(f"{len(rows) - 1} trusts, least to most improved")
    ax.invert_yaxis()
    ax.set_xlabel("Mean RMDQ improvement at 12 months (points, with 95% CI)")
    ax.legend(loc="lower right", frameon=False)
    alt = (
        f"Dot and interval chart for {place}: mean RMDQ improvement at 12 months with its "
        f"95% confidence interval for England and each trust with 8 or more patients "
        f"({len(rows)} shown), against the trial's {trial.mean} points (95% CI {trial.low} "
        f"to {trial.high}), shaded. England: {national['improvement']} "
        f"({national['ci_low']} to {national['ci_high']}). The table gives every value."
    )
    return Chart(_svg(fig), alt)


def funnel_chart(funnel: dict[str, Any], highlight: str | None, place: str) -> Chart:
    """The funnel plot: each trust's published rate against its published denominator, with
    the national value and its 95% and 99.8% limits."""
    fig, ax = _figure(3.0)
    limits = funnel["limits"]
    if limits:
        xs = [r["denominator"] for r in limits]
        ax.plot(xs, [r["national"] * 100 for r in limits], color="#425563", label="England")
        for level, style in (("95", "--"), ("99_8", ":")):
            ax.plot(xs, [r[f"lower_{level}"] * 100 for r in limits], style, color="#768692")
            ax.plot(
                xs,
                [r[f"upper_{level}"] * 100 for r in limits],
                style,
                color="#768692",
                label=f"{level.replace('_', '.')}% limits",
            )
    plotted = 0
    for t in funnel["trusts"]:
        value, n = _number(t["value"]), _number(t["denominator"])
        if value is None or n is None:
            continue
        plotted += 1
        mine = t["trustcode"] == highlight
        ax.plot(
            [n],
            [value * 100],
            "o",
            markersize=5 if mine else 3,
            color=COLOURS[3] if mine else COLOURS[0],
        )
        if mine:
            ax.annotate(t["trustcode"], (n, value * 100), xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("Follow-ups due (published)")
    ax.set_ylabel("Follow-up rate (%)")
    ax.set_ylim(0, 100)
    if limits:
        ax.legend(loc="lower right", frameon=False)
    flagged = [t["trustcode"] for t in funnel["trusts"] if t["outside_99_8"] is True]
    alt = (
        f"Funnel plot for {place}: {label_of(funnel['figure'])} of {plotted} trusts against "
        f"their follow-ups due, with England's rate ({funnel['national']['value']}) and its "
        f"95% and 99.8% control limits. Outside the 99.8% limits: "
        f"{', '.join(flagged) if flagged else 'none'}."
    )
    return Chart(_svg(fig), alt)
