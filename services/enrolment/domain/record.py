"""The stored record of one clinician and what applying one event does to it.

The record holds the clinician's facts (the state is folded from them), the contact email,
which derived events were already emitted, and an outbox of derived events not yet
confirmed published. The whole record is written in one document update, so the state and
the events it implies are stored together: a crash after storing cannot lose an event (the
outbox is re-published) and cannot produce a different one (its id and content are fixed
when it enters the outbox).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from ibest.backbone.outbox_values import OutboxEntry
from services.enrolment.domain.clinician import (
    ENROLLED,
    ClinicianState,
    Fact,
    fact_of,
    fold,
)
from shared.catalogue import Catalogue
from shared.envelope import AnyEvent, new_event
from shared.events import TrainingCompleted, TrainingStarted
from shared.keyed import keyed_event_id

SOURCE = "/services/enrolment"
TRAINING_STARTED = "clinician.training_started"
TRAINING_COMPLETED = "clinician.training_completed"


def derived_event_id(id_key: bytes, clinician_ref: str, course_version: str, name: str) -> UUID:
    """The one id a derived event can have, so any re-publish is a duplicate; keyed with the
    platform's id key (`shared.keyed.keyed_event_id`), so no sender can compute it first."""
    return keyed_event_id(id_key, "enrolment.derived", clinician_ref, course_version, name)


class Contact(BaseModel):
    """The contact email of the latest enrolment (by time, then id) that gave one.

    After erasure `email` is None and `erased` is True; only an enrolment later than the one
    that was erased can set an email again.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    email: str | None
    time: datetime
    event_id: str
    erased: bool = False

    @property
    def order(self) -> tuple[datetime, str]:
        return (self.time, self.event_id)


class ClinicianRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    clinician_ref: str
    facts: tuple[Fact, ...] = ()
    contact: Contact | None = None
    emitted: frozenset[str] = frozenset()
    outbox: tuple[OutboxEntry, ...] = ()

    def has_fact(self, trustcode: str, event_id: str) -> bool:
        """Whether this trust's event is already a fact (ids belong to their trust: another
        trust's event with the same id is another fact)."""
        return any(f.id == event_id and f.trustcode == trustcode for f in self.facts)


@dataclass(frozen=True)
class Applied:
    record: ClinicianRecord
    state: ClinicianState
    changed: bool


def apply_event(
    record: ClinicianRecord | None, event: AnyEvent, catalogue: Catalogue, *, id_key: bytes
) -> Applied:
    """Add `event` to the clinician's record; derive and queue any events it implies.

    Applying an event already in the record changes nothing (redelivery is harmless). No
    rule here rejects an event: whether an event is valid is decided once, by the contract
    (`shared.envelope.parse_event`, catalogue included), for every consumer alike. A module
    of another course version than the enrolled one is valid and kept; it is simply not
    counted towards the enrolled version (`not_counted_modules`).
    """
    ref = event.data.clinician_ref
    record = record or ClinicianRecord(clinician_ref=ref)
    current = fold(ref, record.facts, catalogue)
    if record.has_fact(event.trustcode, str(event.id)):
        return Applied(record, current, changed=False)
    facts = (*record.facts, fact_of(event))
    contact = _contact(record.contact, event)
    state = fold(ref, facts, catalogue)
    emitted, outbox = set(record.emitted), list(record.outbox)
    for name, derived in derived_events(state, id_key):
        key = f"{derived.data.course_version}/{name}"
        if key not in emitted:
            emitted.add(key)
            outbox.append(OutboxEntry.of(derived))
    new = record.model_copy(
        update={
            "facts": facts,
            "contact": contact,
            "emitted": frozenset(emitted),
            "outbox": tuple(outbox),
        }
    )
    return Applied(new, state, changed=True)


def _contact(contact: Contact | None, event: AnyEvent) -> Contact | None:
    if event.event_type.name != ENROLLED or event.data.contact_email is None:
        return contact
    offered = Contact(
        email=event.data.contact_email, time=event.time.astimezone(UTC), event_id=str(event.id)
    )
    return offered if contact is None or offered.order > contact.order else contact


def derived_events(state: ClinicianState, id_key: bytes) -> list[tuple[str, AnyEvent]]:
    """The derived events the state implies, with deterministic ids, times and content.

    `time` is the time of the module event that started (or completed) the training, so the
    same facts always give byte-identical events.
    """
    enrolment = state.enrolment
    if enrolment is None:
        return []
    out: list[tuple[str, AnyEvent]] = []
    version = enrolment.course_version
    for name, at, payload in (
        (
            TRAINING_STARTED,
            state.started_at,
            TrainingStarted(clinician_ref=state.clinician_ref, course_version=version),
        ),
        (
            TRAINING_COMPLETED,
            state.completed_at,
            TrainingCompleted(
                clinician_ref=state.clinician_ref,
                course_version=version,
                completed_at=state.completed_at,
            ),
        ),
    ):
        if at is None:
            continue
        out.append(
            (
                name,
                new_event(
                    payload,
                    trustcode=enrolment.trustcode,
                    sitecode=enrolment.sitecode,
                    source=SOURCE,
                    time=at,
                    event_id=derived_event_id(id_key, state.clinician_ref, version, name),
                ),
            )
        )
    return out
