"""What the forms' use cases need from outside, and the data they exchange."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ibest.backbone.outbox import OutboxEntry
from services.forms.domain.access import SiteKey


@dataclass(frozen=True)
class ClinicianFacts:
    """What forms knows of a clinician: from `clinician.training_completed`."""

    clinician_ref: str
    completed_at: datetime
    trust: str
    site: str
    revoked_before: dict[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True)
class Session:
    site: str
    key_id: str
    expires_at: datetime


@dataclass(frozen=True)
class Patient:
    trust: str
    site: str
    patient_ref: str
    baseline_at: datetime | None
    recorded: dict[str, datetime]
    psfs_activities: tuple[str, ...] = ()


@dataclass(frozen=True)
class PatientLink:
    link_hash: str
    trust: str
    site: str
    patient_ref: str
    timepoint: str
    opens: str
    closes: str
    created_at: datetime
    revoked_at: datetime | None = None
    draft: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Completion:
    """A `clinician.training_completed`, as the forms keep it: when, and where (its event's
    trust and site, as of its event time)."""

    ref: str
    completed_at: datetime
    trust: str
    site: str
    at: datetime


@dataclass(frozen=True)
class AssessmentTime:
    """A `patient.assessed`, as the forms keep it: which patient, timepoint and when (for a
    baseline, its site too)."""

    trust: str
    site: str | None
    ref: str
    timepoint: str
    at: datetime


class ClinicianStore(Protocol):
    async def completed_many(self, completions: Sequence[Completion]) -> None:
        """Record completions in one write: the earliest opens the forms; the place is the
        latest event's."""
        ...

    async def get(self, ref: str) -> ClinicianFacts | None: ...

    async def revoke_links(self, ref: str, form: str, before: datetime) -> None: ...

    async def some(self, limit: int) -> list[ClinicianFacts]:
        """Up to `limit` clinicians with a completion (the demo's link)."""
        ...


class SubmissionStore(Protocol):
    async def add(self, event_id: str, kind: str, at: datetime, entry: OutboxEntry) -> bool:
        """Store a submission with its event in its outbox; False if that id is stored."""
        ...


class SiteKeyStore(Protocol):
    async def get(self, key_id: str) -> SiteKey | None: ...

    async def add(self, key: SiteKey, slot: int) -> bool: ...

    async def active_count(self, site: str) -> int: ...

    async def all(self) -> list[SiteKey]: ...

    async def revoke(self, key_id: str, at: datetime) -> SiteKey | None: ...


class SessionStore(Protocol):
    async def add(self, token_hash: str, session: Session) -> None: ...

    async def get(self, token_hash: str) -> Session | None: ...

    async def remove(self, token_hash: str) -> None: ...


class PatientStore(Protocol):
    async def get(self, trust: str, ref: str) -> Patient | None: ...

    async def create(self, patient: Patient) -> bool: ...

    async def assessed_many(self, assessments: Sequence[AssessmentTime]) -> None:
        """Record each assessment's time (a baseline: its site and the latest time), in one
        write (a delivered batch, or one answered form: a batch of one)."""
        ...

    async def set_activities(self, trust: str, ref: str, names: list[str]) -> None: ...

    async def of_site(self, site: str) -> list[Patient]: ...

    async def erase(self, trust: str, ref: str) -> int:
        """Delete the patient's record (activity names included); how many documents."""
        ...


class PatientLinkStore(Protocol):
    async def add(self, link: PatientLink) -> None: ...

    async def get(self, link_hash: str) -> PatientLink | None: ...

    async def save_draft(self, link_hash: str, draft: dict[str, Any]) -> None: ...

    async def finish(self, link_hash: str, at: datetime) -> None:
        """The patient submitted: the draft (item answers, activity names) is erased."""
        ...

    async def erase_patient(self, trust: str, ref: str) -> int:
        """Delete every link of one patient (their drafts with them); how many."""
        ...


class Audit(Protocol):
    async def record(self, action: str, key_id: str, **what: Any) -> None: ...
