"""The stored record of one clinician and what applying one event does to it.

The record holds the clinician's facts (the state is folded from them), the contact email,
the last revision of each derived event emitted, and an outbox of derived events not yet
confirmed published. The whole record is written in one document update, so the state and
the events it implies are stored together: a crash after storing cannot lose an event (the
outbox is re-published) and cannot produce a different one (its id and content are fixed
when it enters the outbox).
"""

from __future__ import annotations

import hashlib
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
    version_times,
)
from shared.catalogue import Catalogue
from shared.envelope import AnyEvent, new_event
from shared.events import TrainingCompleted, TrainingStarted
from shared.keyed import keyed_event_id

SOURCE = "/services/enrolment"
TRAINING_STARTED = "clinician.training_started"
TRAINING_COMPLETED = "clinician.training_completed"


def derived_event_id(
    id_key: bytes, clinician_ref: str, course_version: str, name: str, revision: int = 1
) -> UUID:
    """The one id each revision of a derived event can have, so any re-publish is a
    duplicate; keyed with the platform's id key (`shared.keyed.keyed_event_id`), so no sender
    can compute it first. Revision 1 has the id it had before revisions existed."""
    parts = (clinician_ref, course_version, name)
    extra = () if revision == 1 else (str(revision),)
    return keyed_event_id(id_key, "enrolment.derived", *parts, *extra)


class Emitted(BaseModel):
    """The last revision emitted of one derived event (one course version, one name), and
    the signature of its content (time, place, data): a digest of it (`signature_of`), or
    the text itself in records written before issue 26; an empty signature: emitted before
    revisions were recorded, content unknown, so the next derivation emits a revision."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    revision: int
    signature: bytes | str = ""

    def says(self, text: str) -> bool:
        """Whether the event emitted said `text` (`_signature`), in either stored shape."""
        return self.signature in (signature_of(text), text)


SIGNATURE_BYTES = 16
"""What a record keeps of a derived event's signature: 128 bits of its SHA-256, so two
different contents never share it by chance, in a tenth of the text's bytes."""


def signature_of(text: str) -> bytes:
    """The stored signature of a derived event's content."""
    return hashlib.sha256(text.encode()).digest()[:SIGNATURE_BYTES]


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
    emitted: dict[str, Emitted] = {}
    """Per "<course_version>/<event name>": the last revision emitted."""
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
    added = record.model_copy(
        update={
            "facts": (*record.facts, fact_of(event)),
            "contact": _contact(record.contact, event),
        }
    )
    derived = derive(added, catalogue, id_key=id_key)
    return Applied(derived.record, derived.state, changed=True)


def derive(record: ClinicianRecord, catalogue: Catalogue, *, id_key: bytes) -> Applied:
    """Fold the record and queue every derived event whose content differs from the last
    revision emitted, as the next revision with its own id.

    So each derived fact ends as a function of the set of facts, whatever order they came
    in: a module event earlier than the start (or completion) already published produces a
    corrected event (domain.md, "One verdict per event"). Also what `ibest enrolment
    rederive` runs on every record after an upgrade (no new fact)."""
    state = fold(record.clinician_ref, record.facts, catalogue)
    emitted, outbox = dict(record.emitted), list(record.outbox)
    for key, at, (trustcode, sitecode), payload in derived_facts(record, catalogue):
        signature = _signature(at, trustcode, sitecode, payload)
        last = emitted.get(key)
        if last is not None and last.says(signature):
            continue
        revision = last.revision + 1 if last is not None else 1
        emitted[key] = Emitted(revision=revision, signature=signature_of(signature))
        name = key.split("/", 1)[1]
        outbox.append(
            OutboxEntry.of(
                new_event(
                    payload.model_copy(update={"revision": revision if revision > 1 else None}),
                    trustcode=trustcode,
                    sitecode=sitecode,
                    source=SOURCE,
                    time=at,
                    event_id=derived_event_id(
                        id_key, record.clinician_ref, payload.course_version, name, revision
                    ),
                )
            )
        )
    new = record.model_copy(update={"emitted": emitted, "outbox": tuple(outbox)})
    return Applied(new, state, changed=emitted != record.emitted)


def _contact(contact: Contact | None, event: AnyEvent) -> Contact | None:
    if event.event_type.name != ENROLLED or event.data.contact_email is None:
        return contact
    offered = Contact(
        email=event.data.contact_email, time=event.time.astimezone(UTC), event_id=str(event.id)
    )
    return offered if contact is None or offered.order > contact.order else contact


Derivation = tuple[str, datetime, tuple[str, str], TrainingStarted | TrainingCompleted]
"""("<course_version>/<event name>", event time, (trust, site), payload without revision)"""


def derived_facts(record: ClinicianRecord, catalogue: Catalogue) -> list[Derivation]:
    """The training events the clinician's facts imply, for every course version they
    enrolled on (so the history of a version they later left is the same whatever order the
    events came in): started at the version's earliest module event, completed at the latest
    of its required modules' first completions (`version_times`). Each carries the trust
    and site of the clinician's latest enrolment on that version (time, trust, id)."""
    out: list[Derivation] = []
    enrolments = sorted((f for f in record.facts if f.name == ENROLLED), key=lambda f: f.order)
    latest = {f.data["course_version"]: f for f in enrolments}
    for version in sorted(latest):
        place = (latest[version].trustcode, latest[version].sitecode)
        started_at, completed_at = version_times(record.facts, catalogue, version)
        ref = record.clinician_ref
        if started_at is not None:
            out.append(
                (
                    f"{version}/{TRAINING_STARTED}",
                    started_at,
                    place,
                    TrainingStarted(clinician_ref=ref, course_version=version),
                )
            )
        if completed_at is not None:
            out.append(
                (
                    f"{version}/{TRAINING_COMPLETED}",
                    completed_at,
                    place,
                    TrainingCompleted(
                        clinician_ref=ref, course_version=version, completed_at=completed_at
                    ),
                )
            )
    return out


def _signature(
    at: datetime, trustcode: str, sitecode: str, payload: TrainingStarted | TrainingCompleted
) -> str:
    """What a derived event says, revision aside: equal signatures, equal events."""
    data = payload.model_dump_json(exclude_none=True, exclude={"revision"})
    return f"{at.astimezone(UTC).isoformat()}|{trustcode}|{sitecode}|{data}"
