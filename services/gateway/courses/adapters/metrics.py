"""The course-platform part's Prometheus metrics, on the gateway's /metrics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import Counter, Gauge

STATEMENTS = Counter(
    "ibest_xapi_statements_total",
    "xAPI statements received, by course platform and outcome (accepted, duplicate, "
    "ignored: valid but nothing the programme counts, refused: the request was refused).",
    ["platform", "outcome"],
)
IMPORT_ROWS = Gauge(
    "ibest_course_import_rows",
    "Rows read by each course run's latest import, by export file.",
    ["course_run", "file"],
)
IMPORT_EVENTS = Gauge(
    "ibest_course_import_events",
    # Not by trust: a trust's count of enrolments is a count of people, published below
    # national level only under disclosure control (reporting), never as a raw metric.
    "Events each course run's latest import published, by event type.",
    ["course_run", "type"],
)
IMPORT_COUNTS = Gauge(
    "ibest_course_import_last",
    "Each course run's latest import: events_published, duplicates_skipped, refused_rows, "
    "unmapped_learners, not_stored, finished_timestamp_seconds.",
    ["course_run", "what"],
)
_COUNTS = (
    "events_published",
    "duplicates_skipped",
    "refused_rows",
    "unmapped_learners",
    "not_stored",
)


class PrometheusCourseMetrics:
    def statements(self, platform: str, outcome: str, count: int) -> None:
        if count:
            STATEMENTS.labels(platform, outcome).inc(count)

    def show_reports(self, reports: Sequence[dict[str, Any]]) -> None:
        for report in reports:
            run = report["course_run"]
            for file, rows in report.get("rows_read", {}).items():
                IMPORT_ROWS.labels(run, file).set(rows)
            by_type: dict[str, int] = {}
            for kinds in report.get("published", {}).values():
                for kind, count in kinds.items():
                    by_type[kind] = by_type.get(kind, 0) + count
            for kind, count in by_type.items():
                IMPORT_EVENTS.labels(run, kind).set(count)
            for what in _COUNTS:
                IMPORT_COUNTS.labels(run, what).set(report.get(what, 0))
            finished = report.get("finished_at")
            if finished is not None:
                IMPORT_COUNTS.labels(run, "finished_timestamp_seconds").set(finished.timestamp())
