"""The monthly report pack's content: what a programme board reads, from published figures.

A read use case beside reports.py and months.py, built only on their answers with
`raw=False`: every value in the pack is a value the API publishes (disclosure-controlled
below national level), so the pack can reveal nothing the API does not. The headline and
the series are the monthly series up to the pack's month (the figure as it stood at the
end of each month); the change since last month is computed from the two published values
and only when neither is suppressed. Outcomes, surveys, sustained sites and the trusts'
comparison have no monthly series, so they are the current figures, dated by `as_of`.
Rendering (HTML, charts, PDF, CSVs) is pack_render.py's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.reporting.checks import Malformed, NotFound, check_month, check_trust
from services.reporting.names import Names
from services.reporting.reports import Reporting

HEADLINE = (
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
    "followup_rate_month_3",
    "followup_rate_month_12",
)
"""The headline rows: the monthly series' figures a board follows month by month."""
FIRST_MONTH = "2015-01"
"""No event is older (the contract refuses times before 2015-01-01)."""
FOLLOWUP_FUNNELS = ("followup_rate_month_3", "followup_rate_month_12")


@dataclass(frozen=True)
class HeadlineRow:
    figure: str
    this_month: Any
    last_month: Any
    change: int | float | None
    """this - last; None when either is suppressed ("*") or undefined."""


@dataclass(frozen=True)
class Pack:
    """Everything one pack shows; each value as the API publishes it."""

    month: str
    previous_month: str
    trustcode: str | None
    place: str
    """The place in words: "England" or the trust's name with its code."""
    as_of: datetime | None
    headline: list[HeadlineRow]
    series: dict[str, Any]
    """The months answer up to `month` (months, figures)."""
    current: dict[str, Any]
    """The place's current published figures."""
    places: list[dict[str, Any]]
    """National pack: each trust {trustcode, name, figures}; trust pack: each site
    {sitecode, figures}."""
    followup_funnels: dict[str, dict[str, Any]]
    comparison: dict[str, Any]
    """The RMDQ improvement at 12 months against the trial, national and per trust."""
    names: Names


def previous(month: str) -> str:
    year, mon = int(month[:4]), int(month[5:])
    return f"{year - 1:04d}-12" if mon == 1 else f"{year:04d}-{mon - 1:02d}"


def change(this: Any, last: Any) -> int | float | None:
    """The change between two published values, only when both are numbers."""
    numbers = (int, float)
    if (
        isinstance(this, numbers)
        and isinstance(last, numbers)
        and not isinstance(this, bool)
        and not isinstance(last, bool)
    ):
        return (
            round(this - last, 3)
            if isinstance(this, float) or isinstance(last, float)
            else (this - last)
        )
    return None


def headline(series: dict[str, Any], month: str) -> list[HeadlineRow]:
    months: list[str] = series["months"]
    figures: dict[str, list[Any]] = series["figures"]

    def at(name: str, m: str) -> Any:
        if m not in months or name not in figures:
            return None
        return figures[name][months.index(m)]

    rows = []
    for name in HEADLINE:
        if name not in figures:
            continue
        this, last = at(name, month), at(name, previous(month))
        rows.append(HeadlineRow(name, this, last, change(this, last)))
    return rows


async def monthly_pack(
    reporting: Reporting, names: Names, month: str, trustcode: str | None = None
) -> Pack:
    """The pack for `month` (YYYY-MM, up to the current month), national or one trust's.
    Raises `Malformed` (422) for a bad month or code, `NotFound` (404) for a month not yet
    begun or a trust with no figures."""
    check_month("month", month)
    code = check_trust(trustcode) if trustcode is not None else None
    view = await reporting.view()
    if month < FIRST_MONTH:
        raise Malformed(
            f"month={month} is before the programme; a pack covers {FIRST_MONTH} onwards",
            "month",
        )
    if month > view.today.strftime("%Y-%m"):
        raise NotFound(f"no pack for {month}: that month has not begun")
    if code is None:
        current = await reporting.national(False)
        trusts = await reporting.trusts(False)
        places = [
            {"trustcode": t["trustcode"], "name": names.trust(t["trustcode"]), **t}
            for t in trusts["trusts"]
        ]
        place = "England"
    else:
        current = await reporting.trust(code, False)
        places = current["sites"]
        place = names.trust_with_code(code)
    series = await reporting.months.report(code, None, False, None, month)
    funnels = {f: await reporting.funnel(f, None, None, False) for f in FOLLOWUP_FUNNELS}
    comparison = await reporting.funnel("rmdq_improvement_month_12", None, None, False)
    return Pack(
        month=month,
        previous_month=previous(month),
        trustcode=code,
        place=place,
        as_of=current["as_of"],
        headline=headline(series, month),
        series=series,
        current=current["figures"],
        places=places,
        followup_funnels=funnels,
        comparison=comparison,
        names=names,
    )
