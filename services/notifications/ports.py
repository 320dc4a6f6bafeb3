"""What the notifications use cases need from the outside world: the store, a channel to
send by, the clinicians' contact directory (adapters/ implements these; tests/fakes
implements them in memory)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal, Protocol

from ibest.backbone.audit import Action, Actor
from ibest.backbone.document import Document
from ibest.backbone.outbox_values import OutboxStore
from services.notifications.domain.batch import ClinicianChange, PatientChange
from services.notifications.domain.messages import Personalisation
from services.notifications.domain.surveys import SurveyWindows
from shared.events import ReminderKind

ChannelName = Literal["notify", "smtp", "log"]


class TransientSendError(Exception):
    """Worth retrying later: the provider or network is unavailable or rate-limiting."""


class PermanentSendError(Exception):
    """The provider refused this message; retrying would not help."""


@dataclass(frozen=True)
class OutgoingMessage:
    reminder_id: str
    kind: ReminderKind
    to: list[str]
    template_id: str
    subject: str
    body: str
    personalisation: Personalisation


class Channel(Protocol):
    name: ChannelName

    async def send(self, message: OutgoingMessage) -> str | None:
        """Deliver `message`; the provider's id for it, if it gives one."""
        ...


class ContactUnavailable(Exception):
    """The enrolment service did not answer; try again later."""


class ContactDirectory(Protocol):
    async def email_of(self, clinician_ref: str) -> str | None:
        """The clinician's contact email, None when enrolment has none for them; raises
        ContactUnavailable when it cannot be asked now."""
        ...


class NotificationsRepository(Protocol):
    """Clinicians, patients, follow-up items, reminders (each finished one with its event in
    the embedded outbox) and delivery statuses; every write safe to repeat."""

    @property
    def outbox(self) -> OutboxStore: ...

    async def apply_clinicians(self, changes: list[ClinicianChange]) -> None:
        """Store what events say of clinicians (one event is a batch of one): the earliest
        enrolment, start and completion, the latest progress and place, every delivery
        report's date; any order and any two writers end the same."""
        ...

    async def cancel_answered_surveys(self, answers: list[tuple[str, date]]) -> None: ...

    async def cancel_surveys_answered_before(self, windows: SurveyWindows) -> None:
        """Cancel the pending survey nudges that a stored report answers, of the clinicians
        and survey windows (opens, closes) just written."""
        ...

    async def retime_surveys(self, nudges: list[tuple[str, Document]]) -> None:
        """Move each pending survey nudge whose due date is later than the given one's to
        the given timing (a corrected, earlier completion arrived); nothing else changes."""
        ...

    async def set_opt_out(self, ref: str, opted_out: bool, at: datetime) -> None: ...

    async def clinician(self, ref: str) -> Document | None: ...

    def active_clinicians(self) -> AsyncIterator[Document]: ...

    async def training_reminders(self) -> dict[str, list[Document]]: ...

    async def cancel_clinician_reminders(
        self, ref: str, families: list[str], reason: str
    ) -> None: ...

    async def complete_training(
        self, refs: list[str], families: list[str], reason: str, thanks: list[tuple[str, Document]]
    ) -> set[str]:
        """Cancel the pending reminders of `families`, then create each reminder of `thanks`
        once (in order; an existing one is left as it is); the ids this call created."""
        ...

    async def apply_patients(self, changes: list[PatientChange]) -> dict[str, Document]:
        """Store collected follow-ups and the latest baseline of each patient (one event is
        a batch of one); the stored patients that had a baseline in `changes`, by key."""
        ...

    async def collected_of(self, keys: list[str]) -> dict[str, set[str]]: ...

    async def collected(self, trust: str, patient: str) -> set[str]: ...

    async def write_items(
        self, items: list[tuple[str, Document]], cancels: list[tuple[str, str, str]]
    ) -> None:
        """Create each follow-up item once (its dates move only while it is pending), then
        cancel the open items of each (trust, patient, timepoint) in `cancels`."""
        ...

    async def sites_with_due_items(self, today: str) -> dict[str, str]: ...

    async def take_items_into(self, digest: str, site: str, today: str) -> list[Document]: ...

    async def finish_items(self, digest: str, status: str) -> None: ...

    async def create_reminder(self, reminder_id: str, fields: Document) -> bool: ...

    async def claim(self, now: datetime, owner: str, lease: timedelta) -> Document | None: ...

    async def finish(self, reminder_id: str, owner: str, fields: Document) -> None: ...

    async def finished_before_outbox(self) -> list[Document]: ...

    async def queue_event(self, reminder_id: str, entries: list[Document]) -> None: ...

    async def reminder(self, reminder_id: str) -> Document | None: ...

    async def record_delivery(self, status: Document, received_at: datetime) -> bool: ...


class RecordRetention(Protocol):
    """Removes the notification records no rule reads any more (README.md, Retention)."""

    async def purge_expired(self, now: datetime, retention: timedelta) -> int:
        """Remove what has been past `retention` at `now`; how many records."""
        ...


class AuditTrail(Protocol):
    """The append-only audit log (ibest.backbone.audit.AuditLog) of changes people ask for."""

    async def record(self, action: Action, actor: Actor, **what: Any) -> Document:
        """Write one record; raise if it cannot be written (the change must not happen)."""
        ...
