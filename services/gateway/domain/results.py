"""What each event of a request became, and the HTTP status that sums the request up.

Status codes, chosen so a client that reads only the status can tell "every event stored"
from "not every event stored" (docs/integrating.md):
- 200: every event is stored (`accepted`, or `duplicate`: stored before, by id);
- 422: the request was read but at least one event broke the contract; the others ARE
  stored, and each result says which and why (a 2xx here would read as success to a
  status-only client, so a partial batch is a client error, as ingestion APIs such as
  Amplitude's treat it);
- 403: an event of another trust, or one the platform derives: nothing is stored;
- 503 (with `Retry-After`): the event stream was unreachable; results say which events were
  stored before it failed, and the rest must be sent again.
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
    message: str = Field(description="The rule it broke.")


class EventResult(BaseModel):
    id: str = Field(description="The event's `id` as sent (empty if it had none).")
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
        errors=[ErrorItem(field=e.field, message=e.rule) for e in errors],
    )


NOT_STORED_UNAVAILABLE = FieldError(
    "event",
    "not stored: the event stream was unreachable; send it again (safe: the id "
    "makes it idempotent)",
)
NOT_STORED_FORBIDDEN = FieldError(
    "request", "not stored: another event of this request may not be sent with this key"
)


def trust_errors(raw: object, trust: str) -> list[FieldError]:
    """Why a key of `trust` may not send this event at all (another trust's, or derived)."""
    if not isinstance(raw, dict):
        return []
    errors = []
    trustcode, sitecode, ce_type = raw.get("trustcode"), raw.get("sitecode"), raw.get("type")
    if isinstance(trustcode, str) and trustcode != trust:
        errors.append(
            FieldError("trustcode", f"is {trustcode!r}, but this key sends for trust {trust} only")
        )
    if isinstance(sitecode, str) and not sitecode.startswith(trust):
        errors.append(
            FieldError("sitecode", f"is {sitecode!r}, not a site of trust {trust} (this key's)")
        )
    etype = BY_CE_TYPE.get(ce_type) if isinstance(ce_type, str) else None
    if etype is not None and etype.name in DERIVED_EVENTS:
        errors.append(
            FieldError("type", f"{etype.name} is derived by the platform; trusts do not send it")
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
            )
        ]
    return []


def summary_status(results: Sequence[EventResult], unavailable: bool) -> int:
    """The request's status from its events' results (see the module docstring)."""
    if unavailable:
        return 503
    return 200 if all(r.stored for r in results) else 422
