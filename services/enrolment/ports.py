"""What the enrolment use cases need from the outside world (adapters/ implements these;
tests/fakes implements them in memory)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ibest.backbone.outbox_values import OutboxStore
from services.enrolment.domain.clinician import ClinicianState
from services.enrolment.domain.record import ClinicianRecord


@dataclass(frozen=True)
class Stored:
    """A clinician's record as read, with the revision a compare-and-set write checks."""

    record: ClinicianRecord
    rev: int


@dataclass(frozen=True)
class Change:
    """A record to store if it is still at `rev` (None: it must not exist yet)."""

    record: ClinicianRecord
    state: ClinicianState
    rev: int | None


@dataclass(frozen=True)
class Erasure:
    """What an erasure removed. `state` is the clinician's state just before it, folded by
    the application from the facts read (the repository stores no full state to return)."""

    clinician_ref: str
    found: bool
    email_removed: bool
    record_removed: bool
    seen_events_removed: int
    state: ClinicianState | None = None


@dataclass(frozen=True)
class HeldContact:
    """A record holding a contact email: when its accepted events happened (retention) and
    the revision an erasure checks."""

    clinician_ref: str
    rev: int
    event_times: tuple[datetime, ...]


class ClinicianRepository(Protocol):
    """Clinician records, one per clinician, each with its embedded outbox (`outbox`)."""

    @property
    def outbox(self) -> OutboxStore: ...

    async def load_many(self, clinician_refs: list[str]) -> dict[str, Stored]: ...

    async def save_many(self, changes: list[Change]) -> None:
        """Store each record, its state's summary and its outbox in one round trip; raise
        ibest.backbone.concurrency.ConcurrentUpdate, after writing the others, if any record
        was no longer at its `change.rev` (or was created meanwhile)."""
        ...

    async def record(self, clinician_ref: str) -> ClinicianRecord | None:
        """One clinician's record, read apart from a batch's `load_many` (for the API)."""
        ...

    async def contact(self, clinician_ref: str) -> tuple[bool, str | None]: ...

    async def rename_fact(
        self, clinician_ref: str, trustcode: str, old_id: str, new_id: str
    ) -> None: ...

    async def erase(self, clinician_ref: str, *, record: bool) -> Erasure: ...

    async def held_contacts(self) -> list[HeldContact]:
        """Every record that still holds a contact email."""
        ...

    async def erase_contacts(self, held: list[HeldContact]) -> int:
        """Erase those emails as `erase` does, each only if its record is still at the
        revision read; how many were erased."""
        ...

    async def erased_contacts(self) -> set[str]:
        """The clinicians whose contact email has been erased."""
        ...

    async def clinician_refs(self) -> list[str]:
        """Every clinician with a record (to derive their events again after an upgrade)."""
        ...
