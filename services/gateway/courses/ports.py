"""What the course-platform use cases need from outside: the export files, the learner
mapping, the import ledger (with its reports), the statement ledger and metrics. Events go
through the backbone's one `Publisher`; ignored statements through the gateway's
`RejectionStore`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from services.gateway.courses.domain.exports import ExportKind
from services.gateway.courses.domain.learners import Clinician
from services.gateway.courses.domain.runs import CourseRun


class ExportSource(Protocol):
    """A directory of one course run's exports and its `course-run.toml`."""

    def run(self) -> CourseRun:
        """The run's configuration; ExportError when missing or invalid."""
        ...

    def header(self, kind: ExportKind, name: str | None = None) -> tuple[str, list[str]] | None:
        """(file name, header row) of the run's `kind` export (or of the file `name`), or
        None when there is no such file; ExportError when two files could be it."""
        ...

    def rows(
        self, kind: ExportKind, name: str | None = None
    ) -> Iterator[tuple[int, dict[str, str]]]:
        """Each data row with its line number in the file, read as it streams."""
        ...


@dataclass(frozen=True)
class LedgerEntry:
    """A fact the platform has published (its event id is the entry's id)."""

    event_id: str
    course_run: str
    course_version: str
    learner: str
    kind: str
    module_id: str | None
    time: datetime
    trustcode: str


class LearnerStore(Protocol):
    """The learner mapping, by learner key (never a learner id): shared by the import and
    the xAPI route. No contact email is kept here (only enrolment keeps those)."""

    async def save(self, learners: Sequence[tuple[str, Clinician]]) -> None: ...
    async def get_many(self, learner_keys: Sequence[str]) -> dict[str, Clinician]: ...


class ImportLedger(Protocol):
    async def imported(self, course_version: str) -> set[str]:
        """The event ids of every fact imported for `course_version` (by any run)."""
        ...

    async def record(self, entries: Sequence[LedgerEntry], at: datetime) -> None: ...
    async def save_report(self, report: dict[str, Any]) -> None: ...
    async def latest_reports(self) -> list[dict[str, Any]]:
        """The latest report of each course run."""
        ...


@dataclass(frozen=True)
class StoredStatement:
    statement_id: str
    digest: str
    platform: str
    event_id: str | None
    ignored: str | None


class StatementLedger(Protocol):
    async def get_many(self, statement_ids: Sequence[str]) -> dict[str, str]:
        """The stored digest of each of `statement_ids` the ledger has."""
        ...

    async def record(self, statements: Sequence[StoredStatement], at: datetime) -> None: ...


class CourseMetrics(Protocol):
    def statements(self, platform: str, outcome: str, count: int) -> None:
        """Count statements: outcome `accepted`, `duplicate`, `ignored` or `refused`."""
        ...

    def show_reports(self, reports: Sequence[dict[str, Any]]) -> None:
        """Expose each run's latest import report."""
        ...
