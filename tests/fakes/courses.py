"""In-memory fakes of the gateway's course-platform ports, for fast use-case tests;
tests/gateway/courses/test_stores_contract.py holds them to the MongoDB adapters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from services.gateway.courses.domain.learners import Clinician
from services.gateway.courses.ports import LedgerEntry, StoredStatement


class FakeLearnerStore:
    def __init__(self) -> None:
        self.learners: dict[str, Clinician] = {}

    async def save(self, learners: Sequence[tuple[str, Clinician]]) -> None:
        # As the MongoDB store: no contact email is kept here (only enrolment keeps those).
        self.learners.update((k, replace(c, contact_email=None)) for k, c in learners)

    async def get_many(self, learner_keys: Sequence[str]) -> dict[str, Clinician]:
        return {k: self.learners[k] for k in learner_keys if k in self.learners}


class FakeImportLedger:
    def __init__(self) -> None:
        self.entries: dict[str, LedgerEntry] = {}
        self.reports: list[dict[str, Any]] = []

    async def imported(self, course_version: str) -> set[str]:
        return {i for i, e in self.entries.items() if e.course_version == course_version}

    async def record(self, entries: Sequence[LedgerEntry], at: datetime) -> None:
        for e in entries:
            self.entries.setdefault(e.event_id, e)

    async def save_report(self, report: dict[str, Any]) -> None:
        self.reports.append(report)

    async def latest_reports(self) -> list[dict[str, Any]]:
        """As the MongoDB ledger: each run's report that finished last (of two that finished
        at once, which MongoDB leaves open, the one saved last), without the refused rows
        themselves."""
        latest: dict[str, dict[str, Any]] = {}
        newest_first = sorted(reversed(self.reports), key=lambda r: r["finished_at"], reverse=True)
        for r in newest_first:
            latest.setdefault(r["course_run"], {k: v for k, v in r.items() if k != "refused"})
        return list(latest.values())


class FakeStatementLedger:
    def __init__(self) -> None:
        self.statements: dict[str, StoredStatement] = {}

    async def get_many(self, statement_ids: Sequence[str]) -> dict[str, str]:
        return {i: self.statements[i].digest for i in statement_ids if i in self.statements}

    async def record(self, statements: Sequence[StoredStatement], at: datetime) -> None:
        for s in statements:
            self.statements.setdefault(s.statement_id, s)


class FakeCourseMetrics:
    def __init__(self) -> None:
        self.counted: dict[tuple[str, str], int] = {}
        self.shown: list[dict[str, Any]] = []

    def statements(self, platform: str, outcome: str, count: int) -> None:
        if count:  # as the Prometheus adapter: a zero adds no series
            self.counted[(platform, outcome)] = self.counted.get((platform, outcome), 0) + count

    def show_reports(self, reports: Sequence[dict[str, Any]]) -> None:
        self.shown = list(reports)
