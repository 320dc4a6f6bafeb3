"""The expected monthly series of a dataset, by brute force from its events.

Independent of `domain.months` (no timelines, no folding by month): for month M it takes the
events whose event time is before the first instant of M+1 (Europe/London), builds every
entity's contribution from those facts with the current-figures code, moves it to the
place the whole dataset counts it at, and renders the figures as the current figures do
with "today" the last day of M (the current month: every event, today).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from services.reporting.domain.disclosure import published_figures
from services.reporting.domain.facts import (
    CLASSES,
    CLINICIANS,
    CONTRIBUTION,
    PATIENTS,
    facts_of,
)
from services.reporting.domain.figures import fold_site, raw_figures, total
from tests.reporting.dataset import parsed

LONDON = ZoneInfo("Europe/London")
NAMES = (
    "clinicians_enrolled",
    "clinicians_started",
    "clinicians_completed",
    "clinicians_intending",
    "clinicians_delivering",
    "classes_started",
    "sites_running_classes",
    "patients_baseline",
    "patients_month_3",
    "patients_month_12",
    "followup_due_month_3",
    "followup_due_month_12",
    "followup_rate_month_3",
    "followup_rate_month_12",
)


def _after(month: str) -> tuple[datetime, date]:
    """The first instant after `month` and its last day."""
    year, mon = int(month[:4]), int(month[5:])
    first = date(year + mon // 12, mon % 12 + 1, 1)
    return datetime(first.year, first.month, 1, tzinfo=LONDON), first - timedelta(days=1)


def _entities(events: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for e in events:
        for fact in facts_of(parsed(e)):
            found.setdefault((fact.entity, fact.key), {})[fact.fact_id] = fact.fact
    return found


def series(
    events: list[dict[str, Any]],
    current: str,
    today: date,
    *,
    trust: str | None,
    site: str | None,
    published: bool,
) -> tuple[list[str], dict[str, list[Any]]]:
    entities = _entities(events)
    place = {
        k: c["site"]
        for k, facts in entities.items()
        if k[0] in (CLINICIANS, PATIENTS, CLASSES) and (c := CONTRIBUTION[k[0]](facts)) is not None
    }
    first = min(f["t"] for facts in entities.values() for f in facts.values())
    month = first.astimezone(LONDON).strftime("%Y-%m")
    months: list[str] = []
    values: dict[str, list[Any]] = {}
    while month <= current:
        cutoff, last = _after(month)
        on = today if month == current else last
        by_site: dict[str, dict[str, list[Any]]] = {}
        for key, where in place.items():
            if (site and where != site) or (trust and where[:3] != trust):
                continue
            c = CONTRIBUTION[key[0]](
                {i: f for i, f in facts.items() if month == current or f["t"] < cutoff}
                if (facts := entities[key])
                else {}
            )
            if c is not None:
                by_site.setdefault(where, {CLINICIANS: [], PATIENTS: [], CLASSES: []})[
                    key[0]
                ].append({**c, "site": where, "trust": where[:3]})
        summaries = [
            fold_site(s, s[:3], k[CLINICIANS], k[PATIENTS], k[CLASSES]) for s, k in by_site.items()
        ]
        t = total(summaries)
        render = published_figures if published else raw_figures
        figures = render(t, on, with_sites_running=site is None)
        counted = any(figures[n] not in (0, None) for n in NAMES if n in figures)
        if months or counted:
            months.append(month)
            for n in NAMES:
                if n in figures:
                    values.setdefault(n, []).append(figures[n])
        nxt = _after(month)[0]
        month = nxt.strftime("%Y-%m")
    return months, values
