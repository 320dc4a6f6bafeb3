"""Reports as flat tables (CSV for commissioners' spreadsheets): one row per place."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from services.reporting.domain.months import month_rows

ID_COLUMNS = ("level", "trustcode", "sitecode", "as_of")


def flatten(figures: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Nested figures as (dotted name, value): outcomes.rmdq.month_3.n, ..."""
    for key, value in figures.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from flatten(value, f"{name}.")
        else:
            yield name, value


def report_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The rows of a report answer (national, trusts, a trust with its sites, a site)."""
    as_of = report.get("as_of")
    stamp = as_of.isoformat() if isinstance(as_of, datetime) else as_of

    def row(level: str, trust: str, site: str, figures: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "level": level,
            "trustcode": trust,
            "sitecode": site,
            "as_of": stamp,
            **dict(flatten(figures)),
        }

    if "months" in report:
        return month_rows(report)
    if "trial" in report:
        return comparison_rows(report, stamp)
    if "limits" in report:
        return funnel_rows(report, stamp)
    if "trusts" in report:
        return [row("trust", t["trustcode"], "", t["figures"]) for t in report["trusts"]]
    if report["level"] == "national":
        return [row("national", "", "", report["figures"])]
    if report["level"] == "site":
        return [row("site", report["trustcode"], report["sitecode"], report["figures"])]
    rows = [row("trust", report["trustcode"], "", report["figures"])]
    rows += [row("site", report["trustcode"], s["sitecode"], s["figures"]) for s in report["sites"]]
    return rows


def to_csv(rows: list[dict[str, Any]]) -> str:
    """CSV with a header; "*" stays "*" (suppressed), an undefined value is empty."""
    columns: list[str] = list(ID_COLUMNS)
    for r in rows:
        columns += [c for c in r if c not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({c: "" if r.get(c) is None else r.get(c) for c in columns})
    return out.getvalue()


def comparison_rows(report: Mapping[str, Any], stamp: Any) -> list[dict[str, Any]]:
    """An improvement comparison (GET /v1/funnel/rmdq_improvement_*): the trial's row, the
    national one, then one per trust."""

    def row(level: str, trust: str, values: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "level": level,
            "trustcode": trust,
            "sitecode": "",
            "as_of": stamp,
            **{k: v for k, v in values.items() if k != "trustcode"},
        }

    return [
        row("trial", "", report["trial"]),
        row("national", "", report["national"]),
        *(row("trust", t["trustcode"], t) for t in report["trusts"]),
    ]


def funnel_rows(report: Mapping[str, Any], stamp: Any) -> list[dict[str, Any]]:
    """A funnel (GET /v1/funnel/<figure>): the national row, one row per trust, then one
    `limit` row per denominator of the plotted limits."""
    base = {
        "figure": report["figure"],
        "measure": report.get("measure") or "",
        "timepoint": report.get("timepoint") or "",
    }

    def row(level: str, trust: str, values: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "level": level,
            "trustcode": trust,
            "sitecode": "",
            "as_of": stamp,
            **base,
            **dict(flatten({k: v for k, v in values.items() if k != "trustcode"})),
        }

    return [
        row("national", "", report["national"]),
        *(row("trust", t["trustcode"], t) for t in report["trusts"]),
        *(row("limit", "", r) for r in report["limits"]),
    ]
