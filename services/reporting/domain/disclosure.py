"""Statistical disclosure control for every figure below national level (domain.md).

0 stays 0; a count of 1 to 7 becomes "*"; any other count is rounded to the nearest 5.
A rate or mean over 1 to 7 people is "*". Rates are computed from the rounded counts, so a
rate over a suppressed numerator is "*" as well (it would reveal the count it hides).

Secondary suppression (docs/safety/hazard-log.yaml, HAZ-007 and HAZ-008):
- a breakdown by profession whose place total is "*" is published all "*", so a lone "*"
  beside zeros never tells the make-up of a group of 1 to 7 (`published_figures`);
- a national count is published exactly unless, beside the published trust figures, it
  would pin a suppressed trust cell down to fewer than `MIN_POSSIBLE_VALUES` values; then
  it (with the rates built on it, and its whole profession breakdown) is published under
  the same control as the trusts' (`protect_national`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any, Literal

from services.reporting.domain.figures import (
    FOLLOW_UP_NAMES,
    MEASURE_NAMES,
    OUTCOME_TIMEPOINTS,
    REMINDER_OUTCOMES,
    STAGES,
    SURVEY_NAMES,
    Figures,
    Totals,
)
from services.reporting.domain.working import against_trial, rmdq_names, sites_sustained

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
            p: control_count(n) for p, n in t.clinicians[stage].items()
        }
    for stage in STAGES:
        if f[f"clinicians_{stage}"] == SUPPRESSED:
            # Secondary suppression: "*" beside zeros would tell the group's make-up.
            f[f"clinicians_{stage}_by_profession"] = dict.fromkeys(t.clinicians[stage], SUPPRESSED)
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
        m: {
            tp: {
                "n": control_count((o := t.outcome(m, tp)).n),
                "mean_change": control_mean(o.sum_change, o.n),
                "improved_share": control_rate(o.improved, o.n),
            }
            for tp in OUTCOME_TIMEPOINTS
        }
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
        t.clinicians_facilitating, sum(t.clinicians["completed"].values())
    )
    return f


MIN_POSSIBLE_VALUES = 2
"""A suppressed cell must keep at least this many possible values beside every figure
published with it: never recovered exactly by difference."""
SUPPRESSED_RANGE = (1, 7)


def breakdowns() -> dict[str, str]:
    """Totals that are the sum of a breakdown published beside them (total -> breakdown)."""
    return {f"clinicians_{s}": f"clinicians_{s}_by_profession" for s in STAGES}


def rate_bases(name: str) -> tuple[str, ...] | None:
    """The counts a national rate or mean is computed from (dotted names), or None when
    `name` is not a rate this module knows. A rate beside an exact count it is built from
    would give back a count published under control."""
    for tp in FOLLOW_UP_NAMES:
        if name == f"followup_rate_{tp}":
            return (f"patients_{tp}", f"followup_due_{tp}")
        rmdq_n = f"outcomes.rmdq.{tp}.n"
        if name in (
            f"rmdq_improvement_{tp}",
            f"rmdq_improvement_ci_low_{tp}",
            f"rmdq_improvement_ci_high_{tp}",
            f"rmdq_vs_trial_{tp}",
        ):
            return (rmdq_n,)
        if name == f"rmdq_followup_completeness_{tp}":
            return (rmdq_n, f"followup_due_{tp}")
    if name.startswith("delivery_response_rate_"):
        survey = name.removeprefix("delivery_response_rate_")
        return (f"delivery_reported_{survey}", f"delivery_survey_due_{survey}")
    if name.startswith("sites_sustained_rate_"):
        period = name.removeprefix("sites_sustained_rate_")
        return (f"sites_sustained_{period}", f"sites_eligible_{period}")
    if name == "clinicians_facilitating_rate":
        return ("clinicians_facilitating", "clinicians_completed")
    parts = name.split(".")
    if len(parts) == 4 and parts[0] == "outcomes" and parts[3] in ("mean_change", "improved_share"):
        return (".".join([*parts[:3], "n"]),)
    return None


def bounds(value: Controlled) -> tuple[int, int]:
    """The true counts a published count allows, as an outsider reads it."""
    if value == SUPPRESSED:
        return SUPPRESSED_RANGE
    if value == 0:
        return (0, 0)
    return (value - 2, value + 2)


def recoverable(total: tuple[int, int], parts: Sequence[Controlled]) -> bool:
    """Whether a total known within `total`, beside its published parts, narrows some
    suppressed part to fewer than MIN_POSSIBLE_VALUES values (interval arithmetic: the part
    is the total minus the others, each within its bounds)."""
    ranges = [bounds(p) for p in parts]
    low_sum = sum(lo for lo, _ in ranges)
    high_sum = sum(hi for _, hi in ranges)
    for part, (lo, hi) in zip(parts, ranges, strict=True):
        if part != SUPPRESSED:
            continue
        least = max(SUPPRESSED_RANGE[0], total[0] - (high_sum - hi))
        most = min(SUPPRESSED_RANGE[1], total[1] - (low_sum - lo))
        if most - least + 1 < MIN_POSSIBLE_VALUES:
            return True
    return False


def flat(figures: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested figures as {dotted name: value} (outcomes.rmdq.month_3.n, ...)."""
    out: dict[str, Any] = {}
    for key, value in figures.items():
        if isinstance(value, dict):  # figures are plain dicts (faster than Mapping's check)
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _set(figures: dict[str, Any], name: str, value: Any) -> None:
    *path, last = name.split(".")
    for key in path:
        figures = figures[key]
    figures[last] = value


BREAKDOWN_CELLS = tuple(f"{cells}." for cells in breakdowns().values())
"""What the dotted name of a by-profession cell starts with (one `startswith` of a tuple:
the national figures judge every trust's 125-odd names, 25,000 at national scale)."""


def in_profession_breakdown(name: str) -> bool:
    """Whether a dotted name is a cell of a by-profession breakdown (the family protected
    nationally by default: the demonstrated recovery, hazard HAZ-007)."""
    return name.startswith(BREAKDOWN_CELLS)


def controlled_names(
    exact: Figures, controlled: Figures, trusts: Iterable[Figures], *, every_family: bool = False
) -> set[str]:
    """The national counts that must be published under control (dotted names).

    A count is controlled when, published exactly (or, once controlled, within its
    rounding) beside the trusts' published cells, it would pin one of them down; the cells
    of a profession breakdown go together (one exact cell beside controlled ones gives a
    controlled one back); repeated until nothing changes.

    By default only the by-profession breakdowns are judged: headline national counts stay
    exact (domain.md, "National totals are not suppressed"; the recovery needs every other
    trust's range, hazard HAZ-008). `every_family` (IBEST_REPORTING_PROTECT_NATIONAL, for a
    publication built from few trusts) judges every count, and a breakdown's total goes
    with its cells.
    """
    national, rounded = flat(exact), flat(controlled)
    parts: dict[str, list[Controlled]] = {}
    for figures in trusts:
        for name, value in flat(figures).items():
            if not every_family and not in_profession_breakdown(name):
                continue
            if (value == SUPPRESSED or _is_count(value)) and _is_count(national.get(name)):
                parts.setdefault(name, []).append(value)
    groups = [
        [*([total] if every_family else []), *(n for n in national if n.startswith(f"{cells}."))]
        for total, cells in breakdowns().items()
        if total in national
    ]
    chosen: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, cells in parts.items():
            known = (
                bounds(rounded.get(name, SUPPRESSED)) if name in chosen else (national[name],) * 2
            )
            if name not in chosen and recoverable(known, cells):
                chosen.add(name)
                changed = True
        for group in groups:
            if chosen.intersection(group) and not chosen.issuperset(group):
                chosen.update(group)
                changed = True
    return chosen


def protect_national(
    exact: Figures, controlled: Figures, trusts: Iterable[Figures], *, every_family: bool = False
) -> Figures:
    """National figures as they may be published beside the trusts' published figures:
    exact, except the counts `controlled_names` picks and the rates built on them, which
    take their value from `controlled` (the same figures under trust-level control)."""
    chosen = controlled_names(exact, controlled, trusts, every_family=every_family)
    if not chosen:
        return exact
    out = copy.deepcopy(exact)
    rounded = flat(controlled)
    for name in flat(exact):
        bases = rate_bases(name)
        if name in chosen or (bases is not None and chosen.intersection(bases)):
            _set(out, name, rounded.get(name, SUPPRESSED))  # no controlled form: withheld
    return out


def funnel_bases(figure: str, measure: str | None, timepoint: str | None) -> tuple[str, ...]:
    """The national counts behind a funnel's national numerator and denominator."""
    if figure == "clinicians_completed":
        return ("clinicians_completed", "clinicians_enrolled")
    if figure == "improved_share":
        return (f"outcomes.{measure}.{timepoint}.n",)
    return rate_bases(figure) or ()


def funnel_national(numerator: int, denominator: int, controlled: bool) -> dict[str, Any]:
    """The funnel's national proportion: exact, or from the rounded counts when the counts
    it is built from are published under control (an exact numerator, denominator or
    proportion beside them would give them back)."""
    if not controlled:
        value = None if denominator == 0 else round(numerator / denominator, 3)
        return {"value": value, "numerator": numerator, "denominator": denominator}
    return {
        "value": control_rate(numerator, denominator),
        "numerator": control_count(numerator),
        "denominator": control_count(denominator),
    }
