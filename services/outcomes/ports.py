"""What the outcomes use cases need from the outside world (adapters/ implements these;
tests/fakes implements them in memory)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ibest.backbone.document import Document
from ibest.backbone.outbox_values import OutboxEntry, OutboxStore
from services.outcomes.domain.assessments import Assessment
from services.outcomes.domain.outcomes import PatientState


def patient_key(trustcode: str, patient_ref: str) -> str:
    """The key of a patient (its document `_id`, its outbox's key): references never
    contain '/', so this is unambiguous."""
    return f"{trustcode}/{patient_ref}"


@dataclass(frozen=True)
class Loaded:
    """A patient as read for a batch: state, version (None if new) and pending outbox."""

    state: PatientState
    version: int | None
    outbox: list[OutboxEntry]


@dataclass(frozen=True)
class Commit:
    """A patient's new state to store if it is still at `version` (None: insert it).

    `changes` is how many single-event commits this stands for, so `version` ends where
    applying the events one by one would have left it.
    """

    trustcode: str
    patient_ref: str
    version: int | None
    changes: int
    state: PatientState
    outbox: list[OutboxEntry]


class OutcomesRepository(Protocol):
    """Assessments (audit history), patients (each with its embedded outbox) and classes."""

    @property
    def outbox(self) -> OutboxStore: ...

    async def record_assessments(
        self, assessments: list[Assessment], received: datetime
    ) -> None: ...

    async def history(self, trustcode: str, patient_ref: str) -> list[Assessment]: ...

    async def load(self, trustcode: str, patient_ref: str) -> tuple[PatientState, int | None]: ...

    async def load_many(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], Loaded]: ...

    async def commit_many(self, commits: list[Commit]) -> None:
        """Store them all in one write, or raise ibest.backbone.concurrency.ConcurrentUpdate
        (after writing the others) if any patient had moved on from its version."""
        ...

    async def record_classes(self, docs: list[Document]) -> None:
        """Keep the latest class.started of each class (by time, then event id)."""
        ...

    async def classes(self, trustcode: str, class_ids: set[str]) -> dict[str, Document]: ...
