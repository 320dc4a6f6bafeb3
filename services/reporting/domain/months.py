"""The rollout month by month, by event time (domain.md, "Rollout over time").

A figure for calendar month M is the figure as it stood at the end of M (Europe/London):
computed from the facts whose event time is before the first instant of the next month, as
if the end of M were today (a follow-up is due by then if its due date is on or before M's
last day), with every entity counted at the place the current figures count it.

Exactness stays cheap because an entity's contribution as of a cut-off is the same pure
function of its facts (`facts.CONTRIBUTION`) applied to the facts up to the cut-off. So each
entity carries a short *timeline*: the months in which its as-of state changes, with that
state. It is computed with its current contribution, from the same version of its facts,
and stored beside it in its site's counted record (`domain.counted`), so it merges exactly
like the contribution does (redelivery, any order, two instances, rebuild). A site's
series is folded from its entities' timelines, month by month up to the last month in which
any of them changed; every later month, and the current month, is the site's current
summary judged at that month's end (today for the current month), so the current month's
values are the current figures by construction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from services.reporting.domain.disclosure import control_count, control_rate, protect_national
from services.reporting.domain.facts import (
    CLASSES,
    CLINICIANS,
    CONTRIBUTION,
    PATIENTS,
    Contribution,
    Fact,
    current_facts,
)
from services.reporting.domain.figures import FOLLOW_UP_NAMES, STAGES, Summary, ratio
from shared.followup import NHS_TIMEZONE

Month = str
"""A calendar month as "YYYY-MM"."""
State = dict[str, Any]
Timeline = list[list[Any]]
"""[[month, state or None], ...]: the entity's as-of state from each month on."""

COUNTS = (
    *(f"clinicians_{s}" for s in STAGES),
    "classes_started",
    "patients_baseline",
    *(f"patients_{tp}" for tp in FOLLOW_UP_NAMES),
    *(f"followup_due_{tp}" for tp in FOLLOW_UP_NAMES),
)
"""Counts a site's monthly series stores (`sites_running_classes` and rates are derived)."""
MONTH_FIGURES = (
    *(f"clinicians_{s}" for s in STAGES),
    "classes_started",
    "sites_running_classes",
    "patients_baseline",
    *(f"patients_{tp}" for tp in FOLLOW_UP_NAMES),
    *(f"followup_due_{tp}" for tp in FOLLOW_UP_NAMES),
    *(f"followup_rate_{tp}" for tp in FOLLOW_UP_NAMES),
)
"""The figures with monthly series, in the order answers list them."""


def month_of(t: datetime) -> Month:
    return t.astimezone(NHS_TIMEZONE).strftime("%Y-%m")


def next_month(month: Month) -> Month:
    year, mon = int(month[:4]), int(month[5:7])
    return f"{year + mon // 12:04d}-{mon % 12 + 1:02d}"


def month_end(month: Month) -> datetime:
    """The first instant after M (midnight starting the next month, Europe/London)."""
    nxt = next_month(month)
    return datetime(int(nxt[:4]), int(nxt[5:7]), 1, tzinfo=NHS_TIMEZONE).astimezone(UTC)


def last_day(month: Month) -> date:
    nxt = next_month(month)
    return date(int(nxt[:4]), int(nxt[5:7]), 1) - timedelta(days=1)


def months_between(first: Month, last: Month) -> list[Month]:
    out: list[Month] = []
    month = first
    while month <= last:
        out.append(month)
        month = next_month(month)
    return out


def _state(kind: str, c: Contribution | None) -> State | None:
    """What one entity adds to its site's counts (due dates kept, judged per month)."""
    if c is None:
        return None
    if kind == CLINICIANS:
        return {f"clinicians_{s}": int(bool(c[s])) for s in STAGES}
    if kind == CLASSES:
        return {"classes_started": 1}
    if kind == PATIENTS:
        return {
            "patients_baseline": 1,
            **{f"patients_{tp}": int(bool(c["recorded"][tp])) for tp in FOLLOW_UP_NAMES},
            **{f"due_{tp}": c["due"][tp] for tp in FOLLOW_UP_NAMES},
        }
    return None


def timeline(kind: str, facts: Mapping[str, Fact]) -> Timeline | None:
    """The months in which the entity's as-of state changes, with the state from then on.

    Only the months of its facts can change it (a state is a function of the facts up to a
    cut-off; due dates are kept as dates and judged when folding). None for kinds without
    monthly figures (reminders)."""
    if kind not in (CLINICIANS, CLASSES, PATIENTS):
        return None
    # A superseded revision never counts, not even before its correction's time.
    facts = current_facts(facts)
    points: Timeline = []
    previous: State | None = None
    for month in sorted({month_of(f["t"]) for f in facts.values()}):
        cutoff = month_end(month)
        state = _state(
            kind, CONTRIBUTION[kind]({fid: f for fid, f in facts.items() if f["t"] < cutoff})
        )
        if state != previous:
            points.append([month, state])
            previous = state
    return points


def _counts(state: State | None, month: Month) -> dict[str, int]:
    """What one entity in `state` adds to its site's counts at the end of `month`."""
    out = dict.fromkeys(COUNTS, 0)
    if state is None:
        return out
    end = last_day(month)
    for name, value in state.items():
        if name.startswith("due_"):
            tp = name.removeprefix("due_")
            out[f"followup_due_{tp}"] = int(
                bool(state[f"patients_{tp}"]) or date.fromisoformat(value) <= end
            )
        else:
            out[name] += value
    return out


Steps = list[list[Any]]
"""[[month, {count: change}, true if the entity's state changes then, false if a follow-up
falls due then], ...]: what an entity adds to its site's monthly counts, as changes by
month. (A version before issue 26's byte cut stored 1 and 0: read the same.)"""


def steps(line: Timeline | None) -> Steps | None:
    """An entity's timeline as changes of its site's counts: at each of its timeline's months,
    and in the month in which a pending follow-up falls due (its state unchanged). Computed
    once per version of the entity and stored with it, so folding a site only adds them up."""
    if line is None:
        return None
    out: Steps = []
    previous = dict.fromkeys(COUNTS, 0)
    for i, (month, state) in enumerate(line):
        until = line[i + 1][0] if i + 1 < len(line) else None
        dues = sorted(
            {
                value[:7]
                for name, value in (state or {}).items()
                if name.startswith("due_")
                and month < value[:7]
                and (until is None or value[:7] < until)
            }
        )
        for at, changed in ((month, True), *((due, False) for due in dues)):
            now = _counts(state, at)
            out.append(
                [at, {k: now[k] - previous[k] for k in COUNTS if now[k] != previous[k]}, changed]
            )
            previous = now
    return out


def fold_months(entities: Iterable[Steps]) -> dict[str, Any] | None:
    """A site's series: its counts at the end of every month from the first month in which
    one of its entities counts to the last month in which one of them changes (later months
    are the current summary's; see `site_counts`). None when nothing has steps.

    The series is the running sum of the entities' changes by month: the cost grows with
    their steps plus the months, not with their product."""
    lines = [e for e in entities if e]
    changes = sorted({month for e in lines for month, _, changed in e if changed})
    if not changes:
        return None
    last = changes[-1]
    deltas: dict[Month, dict[str, int]] = {}
    for entity in lines:
        for month, delta, _ in entity:
            if month <= last:
                into = deltas.setdefault(month, {})
                for name, change in delta.items():
                    into[name] = into.get(name, 0) + change
    series: dict[Month, dict[str, int]] = {}
    running = dict.fromkeys(COUNTS, 0)
    for month in months_between(changes[0], last):
        for name, change in deltas.get(month, {}).items():
            running[name] += change
        series[month] = dict(running)
    first = next((m for m, t in series.items() if any(t.values())), last)
    return {"first": first, "last": last, "series": {m: t for m, t in series.items() if m >= first}}


def current_counts(summary: Summary, cutoff: date) -> dict[str, int]:
    """A site's counts from its current summary, follow-ups due judged at `cutoff`."""
    totals = {f"clinicians_{s}": sum(summary["clinicians"][s].values()) for s in STAGES}
    totals["classes_started"] = summary["classes_started"]
    totals["patients_baseline"] = summary["patients_baseline"]
    for tp in FOLLOW_UP_NAMES:
        totals[f"patients_{tp}"] = summary["recorded"][tp]
        totals[f"followup_due_{tp}"] = summary["recorded"][tp] + sum(
            n for day, n in summary["pending_due"][tp].items() if date.fromisoformat(day) <= cutoff
        )
    return totals


def site_counts(
    summary: Summary,
    months_doc: Mapping[str, Any] | None,
    month: Month,
    current: Month,
    today: date,
) -> dict[str, int] | None:
    """One site's counts at the end of `month` (None before its first month)."""
    if months_doc is None or month < months_doc["first"]:
        return (
            None if months_doc is not None or month != current else current_counts(summary, today)
        )
    if month < current and month <= months_doc["last"]:
        return dict(months_doc["series"][month])
    return current_counts(summary, today if month == current else last_day(month))


def first_month(months_docs: Iterable[Mapping[str, Any] | None], current: Month) -> Month:
    return min((d["first"] for d in months_docs if d), default=current)


def level_series(
    sites: list[tuple[Summary, Mapping[str, Any] | None]],
    months: list[Month],
    current: Month,
    today: date,
    *,
    with_sites_running: bool,
) -> list[dict[str, int]]:
    """Exact counts of a level (sum of its sites), one dict per month."""
    out = []
    for month in months:
        totals = dict.fromkeys(COUNTS, 0)
        running = 0
        for summary, doc in sites:
            counts = site_counts(summary, doc, month, current, today)
            if counts is None:
                continue
            for name in COUNTS:
                totals[name] += counts[name]
            running += int(counts["classes_started"] > 0)
        if with_sites_running:
            totals["sites_running_classes"] = running
        out.append(totals)
    return out


def month_figures(counts: Mapping[str, int], *, published: bool) -> dict[str, Any]:
    """The figures of one month from exact counts: exact, or each value controlled on its
    own (counts rounded, rates from the rounded counts, domain.md "Publishing figures")."""
    f: dict[str, Any] = {}
    for name in MONTH_FIGURES:
        if name.startswith("followup_rate_"):
            tp = name.removeprefix("followup_rate_")
            num, den = counts[f"patients_{tp}"], counts[f"followup_due_{tp}"]
            f[name] = control_rate(num, den) if published else ratio(num, den)
        elif name in counts:
            f[name] = control_count(counts[name]) if published else counts[name]
    return f


def series_figures(per_month: list[dict[str, int]], *, published: bool) -> dict[str, list[Any]]:
    """{figure: [value per month]} in MONTH_FIGURES order."""
    rows = [month_figures(c, published=published) for c in per_month]
    names = [n for n in MONTH_FIGURES if not rows or n in rows[0]]
    return {n: [r[n] for r in rows] for n in names}


def protected_national_series(
    national: list[dict[str, int]], trusts: Iterable[list[dict[str, int]]]
) -> dict[str, list[Any]]:
    """The national series under IBEST_REPORTING_PROTECT_NATIONAL: each month exact, except
    the counts that, beside every trust's published figures of that month, would give back
    a trust's "*" by difference, and the rates built on them (disclosure.protect_national,
    judged month by month). `trusts`: each trust's exact counts for the same months."""
    per_trust = [[month_figures(c, published=True) for c in series] for series in trusts]
    rows = [
        protect_national(
            month_figures(counts, published=False),
            month_figures(counts, published=True),
            [series[i] for series in per_trust],
            every_family=True,
        )
        for i, counts in enumerate(national)
    ]
    names = [n for n in MONTH_FIGURES if not rows or n in rows[0]]
    return {n: [r[n] for r in rows] for n in names}


def month_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """CSV rows of a months answer: one per month (`month` then every figure)."""
    as_of = report.get("as_of")
    stamp = as_of.isoformat() if isinstance(as_of, datetime) else as_of
    return [
        {
            "level": report["level"],
            "trustcode": report.get("trustcode") or "",
            "sitecode": report.get("sitecode") or "",
            "as_of": stamp,
            "month": month,
            **{name: values[i] for name, values in report["figures"].items()},
        }
        for i, month in enumerate(report["months"])
    ]
