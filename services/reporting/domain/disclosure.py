"""Statistical disclosure control for every figure below national level (domain.md).

0 stays 0; a count of 1 to 7 becomes "*"; any other count is rounded to the nearest 5.
A rate or mean over 1 to 7 people is "*". Rates are computed from the rounded counts, so a
rate over a suppressed numerator is "*" as well (it would reveal the count it hides).
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from .figures import (
    FOLLOW_UP_NAMES,
    MEASURE_NAMES,
    OUTCOME_TIMEPOINTS,
    REMINDER_OUTCOMES,
    STAGES,
    SURVEY_NAMES,
    Figures,
    Totals,
)
from .working import against_trial, rmdq_names, sites_sustained

SUPPRESSED: Literal["*"] = "*"
Controlled = int | Literal["*"]
ControlledRate = float | Literal["*"] | None


def control_count(n: int) -> Controlled:
    """0 -> 0, 1..7 -> "*", otherwise the nearest multiple of 5 (never a tie for integers)."""
    if n < 0:
        raise ValueError("a count cannot be negative")
    if n == 0:
        return 0
    if n <= 7:
        return SUPPRESSED
    return 5 * ((n + 2) // 5)


RATE_PLACES = ((100, 1), (1000, 2))
"""Presentation of a published rate (the HES approach: no more precision than the rounded
denominator supports): rounded denominator under 100 -> 1 decimal place, 100 to 999 -> 2,
1,000 or more -> 3 (domain.md's 3 places). National and raw rates keep 3 places."""


def rate_places(denominator: int) -> int:
    """Decimal places of a published rate over this (rounded) denominator (RATE_PLACES)."""
    return next((places for below, places in RATE_PLACES if denominator < below), 3)


def control_rate(numerator: int, denominator: int) -> ControlledRate:
    """numerator/denominator from the rounded counts, to the places the rounded denominator
    supports (RATE_PLACES); None when nobody is in the denominator."""
    if denominator == 0:
        return None
    num, den = control_count(numerator), control_count(denominator)
    if num == SUPPRESSED or den == SUPPRESSED:
        return SUPPRESSED
    return round(num / den, rate_places(den))


def control_mean(total: float, n: int) -> ControlledRate:
    """A mean over n people: "*" over 1 to 7, None over nobody, else to 2 places."""
    if n == 0:
        return None
    if n <= 7:
        return SUPPRESSED
    return round(total / n, 2)


def published_figures(t: Totals, today: date, *, with_sites_running: bool) -> Figures:
    """The figures of a trust or site as they may leave the platform."""
    f: Figures = {}
    for stage in STAGES:
        f[f"clinicians_{stage}"] = control_count(sum(t.clinicians[stage].values()))
    for stage in STAGES:
        f[f"clinicians_{stage}_by_profession"] = {
            p: control_count(n) for p, n in t.clinicians[stage].items()}
    f["classes_started"] = control_count(t.classes_started)
    if with_sites_running:
        f["sites_running_classes"] = control_count(t.sites_running_classes)
    f["patients_baseline"] = control_count(t.patients_baseline)
    for tp in FOLLOW_UP_NAMES:
        f[f"patients_{tp}"] = control_count(t.recorded[tp])
    for tp in FOLLOW_UP_NAMES:
        f[f"followup_due_{tp}"] = control_count(t.due(tp, today))
    for tp in FOLLOW_UP_NAMES:
        f[f"followup_rate_{tp}"] = control_rate(t.recorded[tp], t.due(tp, today))
    f["outcomes"] = {
        m: {tp: {"n": control_count((o := t.outcome(m, tp)).n),
                 "mean_change": control_mean(o.sum_change, o.n),
                 "improved_share": control_rate(o.improved, o.n)}
            for tp in OUTCOME_TIMEPOINTS}
        for m in MEASURE_NAMES
    }
    for outcome in REMINDER_OUTCOMES:
        f[f"reminders_{outcome}"] = control_count(t.reminders[outcome])
    for s in SURVEY_NAMES:
        due, answered = t.survey_due(s, today), t.survey_answered(s)
        f[f"delivery_survey_due_{s}"] = control_count(due)
        f[f"delivery_reported_{s}"] = control_count(answered)
        f[f"delivery_response_rate_{s}"] = control_rate(answered, due)
        f[f"clinicians_delivering_{s}"] = control_count(t.survey_delivering(s))
    f.update(working_published(t, today, with_sites_running=with_sites_running))
    return f


def working_published(t: Totals, today: date, *, with_sites_running: bool) -> Figures:
    """The "is it working?" figures of a trust or site as they may leave the platform.

    The RMDQ mean, interval and verdict over 1 to 7 patients are "*" (like every mean); over
    more they are shown exactly as computed (an interval is not a count: no rounding beyond
    2 places). Completeness and rates come from the rounded counts, like every rate.
    """
    f: Figures = {}
    for tp in FOLLOW_UP_NAMES:
        o = t.outcome("rmdq", tp)
        found: dict[str, Any] = against_trial(tp, o.n, o.sum_change, o.sum_sq_change)
        if 1 <= o.n <= 7:
            found = dict.fromkeys(found, SUPPRESSED)
        f.update(found)
        f[rmdq_names(tp)[3]] = control_rate(o.n, t.due(tp, today))
    if with_sites_running:
        for period, (sustained, eligible) in sites_sustained(t.class_spans, today).items():
            f[f"sites_sustained_{period}"] = control_count(sustained)
            f[f"sites_eligible_{period}"] = control_count(eligible)
            f[f"sites_sustained_rate_{period}"] = control_rate(sustained, eligible)
    f["clinicians_facilitating"] = control_count(t.clinicians_facilitating)
    f["clinicians_facilitating_rate"] = control_rate(
        t.clinicians_facilitating, sum(t.clinicians["completed"].values()))
    return f
