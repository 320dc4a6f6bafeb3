"""A trust's rejected events: refused at the door or dead-lettered later by a service.

One row per event (several services may dead-letter the same event; their reasons are
grouped on the one row). Dead letters name their event by the `Ibest-Dlq-*` headers where
the dead-lettering service sets them, else by reading the original bytes and subject.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from shared.envelope import BY_CE_TYPE, SUBJECT_PREFIX, FieldError
from shared.identifiers import TRUST_CODE_PATTERN

GATEWAY = "gateway"
"""`rejected_by` of an event refused at the door."""
H_EVENT_ID = "Ibest-Dlq-Event-Id"
H_TYPE = "Ibest-Dlq-Type"
H_TRUST = "Ibest-Dlq-Trust"
H_CONSUMER = "Ibest-Dlq-Consumer"
H_ERROR = "Ibest-Dlq-Error"
H_SUBJECT = "Ibest-Dlq-Subject"
_TRUST = re.compile(TRUST_CODE_PATTERN)
_NEXT_FIELD = re.compile(r"; (?=[A-Za-z_][\w.]*: )")
_FIELD_RULE = re.compile(r"^([A-Za-z_][\w.]*): (.+)$", re.DOTALL)


class Reason(BaseModel):
    by: str = Field(description="The part that rejected it: `gateway` or a service's name.")
    field: str = Field(description="The field, where the rule names one; else `event`.")
    message: str


class RejectionRow(BaseModel):
    id: str = Field(description="The event's id (empty if it could not be read).")
    type: str = Field(description="Short event name, e.g. `patient.assessed`, or `unknown`.")
    received_at: datetime = Field(description="When the platform first rejected it.")
    rejected_by: list[str]
    reasons: list[Reason]


class RejectionList(BaseModel):
    trust: str
    since: datetime
    rejections: list[RejectionRow] = Field(description="Newest first.")


@dataclass(frozen=True)
class Rejection:
    """One part's rejection of one event (rows group these by trust and event)."""

    trust: str
    event_id: str
    event_type: str
    received_at: datetime
    reasons: tuple[Reason, ...]
    fallback_key: str = ""
    """Groups an event without a readable id (e.g. the dead letter's own sequence)."""

    @property
    def group_key(self) -> str:
        return f"{self.trust}:{self.event_id or self.fallback_key}"


def short_type(ce_type: object) -> str:
    etype = BY_CE_TYPE.get(ce_type) if isinstance(ce_type, str) else None
    return etype.name if etype else "unknown"


def at_the_door(
    trust: str, raw: object, errors: list[FieldError], received_at: datetime, fallback_key: str
) -> Rejection:
    event = raw if isinstance(raw, dict) else {}
    event_id = event.get("id")
    return Rejection(
        trust,
        event_id if isinstance(event_id, str) else "",
        short_type(event.get("type")),
        received_at,
        tuple(Reason(by=GATEWAY, field=e.field, message=e.rule) for e in errors),
        fallback_key,
    )


def reasons_from_text(by: str, text: str) -> tuple[Reason, ...]:
    """A dead letter's error text (`field: rule; field: rule` for contract errors)."""
    # Split only where the next part names a field: a rule's own text may hold "; ".
    parts = [p.strip() for p in _NEXT_FIELD.split(text) if p.strip()] or ["(no reason given)"]
    reasons = []
    for part in parts:
        match = _FIELD_RULE.match(part)
        field, message = (match.group(1), match.group(2)) if match else ("event", part)
        reasons.append(Reason(by=by, field=field, message=message))
    return tuple(reasons)


def from_dead_letter(
    headers: Mapping[str, str], data: bytes, subject: str, received_at: datetime, seq: int
) -> Rejection | None:
    """The rejection a dead letter records, or None if no trust can be told from it."""
    raw: dict[str, Any] = {}
    try:
        parsed = json.loads(data)
        if isinstance(parsed, dict):
            raw = parsed
    except (UnicodeDecodeError, ValueError, RecursionError):
        pass
    # The original subject first: NATS permissions bind it to the publisher's trust, so an
    # envelope naming another trust cannot show that trust someone else's event.
    trust = (
        _trust_of_subject(headers.get(H_SUBJECT, ""))
        or _trust_of(headers.get(H_TRUST))
        or _trust_of(raw.get("trustcode"))
    )
    if not trust:
        return None
    event_id = headers.get(H_EVENT_ID) or (raw["id"] if isinstance(raw.get("id"), str) else "")
    event_type = headers.get(H_TYPE) or short_type(raw.get("type"))
    consumer = headers.get(H_CONSUMER) or subject.rsplit(".", 1)[-1]
    return Rejection(
        trust,
        event_id,
        event_type,
        received_at,
        reasons_from_text(consumer, headers.get(H_ERROR, "")),
        f"dlq:{seq}",
    )


def _trust_of(value: object) -> str:
    return value if isinstance(value, str) and _TRUST.match(value) else ""


def _trust_of_subject(subject: str) -> str:
    if not subject.startswith(SUBJECT_PREFIX):
        return ""
    return _trust_of(subject[len(SUBJECT_PREFIX) :].split(".", 1)[0])
