"""What each event of a request became, and the verdict that sums the request up.

The verdicts, chosen so a client that reads only the HTTP status the edge gives each
(services/gateway/api/answers.py) can tell "every event stored" from "not every event
stored" (docs/integrating.md):
- `STORED` (200): every event is stored (`accepted`, or `duplicate`: stored before, by id);
- `REJECTED` (422): the request was read but at least one event broke the contract; the
  others ARE stored, and each result says which and why (a 2xx here would read as success to
  a status-only client, so a partial batch is a client error, as ingestion APIs such as
  Amplitude's treat it);
- `FORBIDDEN` (403): an event of another trust, or one the platform derives: nothing is
  stored;
- `UNAVAILABLE` (503, with `Retry-After`): the event stream was unreachable; results say
  which events were stored before it failed, and the rest must be sent again;
- `SHARE_EXHAUSTED` (507): the trust's share of the store for an event type is full: no
  `Retry-After`, as sending again will not store it until the operators raise the share.
The CloudEvents webhook spec's 2xx-for-accepted, 415, 413 and 429 with `Retry-After` are
followed as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from pydantic import BaseModel, Field

from services.gateway.domain.keys import COURSE_PLATFORM
from shared.envelope import BY_CE_TYPE, FieldError

DERIVED_EVENTS = frozenset(
    {
        "clinician.training_started",
        "clinician.training_completed",
        "outcome.recorded",
        "notification.sent",
        "notification.failed",
    }
)
"""Events only the platform's services publish; a trust never sends them."""


class Status(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


class ErrorItem(BaseModel):
    field: str = Field(description="Dotted path of the field, or `event` / `request`.")
    code: str = Field(description="The rule's stable code (docs/errors.md): match on this.")
    message: str = Field(description="The rule it broke, for people (may be reworded).")


class EventResult(BaseModel):
    id: str = Field(
        description="The event's `id` as sent (empty if it had none, or one over 64 characters)."
    )
    status: Status
    errors: list[ErrorItem] = Field(default_factory=list)

    @property
    def stored(self) -> bool:
        return self.status in (Status.ACCEPTED, Status.DUPLICATE)


class Results(BaseModel):
    results: list[EventResult] = Field(description="One per event, in request order.")


def rejected(event_id: str, errors: Sequence[FieldError]) -> EventResult:
    return EventResult(
        id=event_id,
        status=Status.REJECTED,
        errors=[ErrorItem(field=e.field, code=e.code, message=e.rule) for e in errors],
    )


NOT_STORED_UNAVAILABLE = FieldError(
    "event",
    "not stored: the event stream was unreachable; send it again (safe: the id "
    "makes it idempotent)",
    "stream-unavailable",
)
NOT_STORED_FORBIDDEN = FieldError(
    "request",
    "not stored: another event of this request may not be sent with this key",
    "refused-with-request",
)


def share_exhausted(event_name: str, trust: str) -> FieldError:
    """Why an event was not stored when its trust's share of the store is full."""
    return FieldError(
        "event",
        f"not stored: trust {trust}'s share of the store for {event_name} events is full; "
        "sending it again will not store it: ask the iBeST operators to raise the share",
        "storage-share-exhausted",
    )


def trust_errors(raw: object, trust: str) -> list[FieldError]:
    """Why a key of `trust` may not send this event at all (another trust's, or derived)."""
    if not isinstance(raw, dict):
        return []
    errors = []
    trustcode, sitecode, ce_type = raw.get("trustcode"), raw.get("sitecode"), raw.get("type")
    if isinstance(trustcode, str) and trustcode != trust:
        errors.append(
            FieldError(
                "trustcode",
                f"is {trustcode[:8]!r}, but this key sends for trust {trust} only",
                "wrong-trust",
            )
        )
    if isinstance(sitecode, str) and not sitecode.startswith(trust):
        errors.append(
            FieldError(
                "sitecode",
                f"is {sitecode[:8]!r}, not a site of trust {trust} (this key's)",
                "wrong-trust",
            )
        )
    etype = BY_CE_TYPE.get(ce_type) if isinstance(ce_type, str) else None
    if etype is not None and etype.name in DERIVED_EVENTS:
        errors.append(
            FieldError(
                "type",
                f"{etype.name} is derived by the platform; trusts do not send it",
                "derived-event",
            )
        )
    return errors


TRAINING_EVENTS = frozenset({"clinician.enrolled", "module.started", "module.completed"})
"""What a course platform's key may send, for any trust."""


def sender_errors(raw: object, holder: str) -> list[FieldError]:
    """Why the key's holder may not send this event: a trust only its own trust's events and
    nothing derived; a course platform (`course-platform:<name>`) only training events."""
    if not holder.startswith(COURSE_PLATFORM):
        return trust_errors(raw, holder)
    ce_type = raw.get("type") if isinstance(raw, dict) else None
    etype = BY_CE_TYPE.get(ce_type) if isinstance(ce_type, str) else None
    if etype is not None and etype.name not in TRAINING_EVENTS:
        return [
            FieldError(
                "type",
                f"{etype.name}: a course-platform key sends only "
                f"{', '.join(sorted(TRAINING_EVENTS))}",
                "not-a-training-event",
            )
        ]
    return []


class Verdict(StrEnum):
    """How a request that was read ended (see the module docstring)."""

    STORED = "stored"
    REJECTED = "events-rejected"
    FORBIDDEN = "forbidden-events"
    UNAVAILABLE = "stream-unavailable"
    SHARE_EXHAUSTED = "storage-share-exhausted"


def summary(results: Sequence[EventResult], unavailable: bool, full: bool = False) -> Verdict:
    """The request's verdict from its events' results (see the module docstring);
    `SHARE_EXHAUSTED` when an event was refused because its trust's share of the store is
    full (and the stream answered): sending again will not help, unlike `UNAVAILABLE`."""
    if unavailable:
        return Verdict.UNAVAILABLE
    if full:
        return Verdict.SHARE_EXHAUSTED
    return Verdict.STORED if all(r.stored for r in results) else Verdict.REJECTED
