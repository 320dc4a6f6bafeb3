"""A trust's rejected events: refused at the door or dead-lettered later by a service.

One row per event (several services may dead-letter the same event; their reasons are
grouped on the one row). Dead letters name their event by the `Ibest-Dlq-*` headers where
the dead-lettering service sets them, else by reading the original bytes and subject.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from shared.envelope import (
    BY_CE_TYPE,
    REUSED_ID,
    SUBJECT_PREFIX,
    ContractError,
    FieldError,
    parse_event,
)
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
CONSUMER_RULES = {(REUSED_ID.field, REUSED_ID.rule): REUSED_ID.code}
"""Rules consumers judge beyond the contract's verdict on the bytes (a reused id is judged
against their ledgers): a dead letter with that reason carries the rule's code, the one the
gateway answers for the same refusal."""
MAX_FIELD_CHARS = 128
MAX_MESSAGE_CHARS = 500
MAX_REASONS = 20
"""Bounds of a rejection row, whatever was sent: each reason's field and message, and the
reasons one part records for one event (the rest are summed up in one more reason)."""
MAX_ID_CHARS = 64
REQUEST = "request"
"""`type` of a row recording a whole request refused (400, 403, 413, 415)."""


class Reason(BaseModel):
    by: str = Field(description="The part that rejected it: `gateway` or a service's name.")
    field: str = Field(description="The field, where the rule names one; else `event`.")
    code: str = Field(
        default="invalid", description="The rule's stable code (docs/errors.md), where known."
    )
    message: str


def bounded_reasons(by: str, errors: Sequence[FieldError]) -> tuple[Reason, ...]:
    """Reasons as recorded: each field and message cut to its bound, at most MAX_REASONS."""
    reasons = [
        Reason(
            by=by,
            field=e.field[:MAX_FIELD_CHARS],
            code=e.code[:40],
            message=e.rule[:MAX_MESSAGE_CHARS],
        )
        for e in errors[:MAX_REASONS]
    ]
    if len(errors) > MAX_REASONS:
        more = len(errors) - MAX_REASONS
        reasons.append(
            Reason(by=by, field="event", code="invalid", message=f"and {more} more broken rules")
        )
    return tuple(reasons)


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
    next: str | None = Field(
        default=None,
        description="Opaque cursor of the next page (pass it as `cursor`); null on the last.",
    )


@dataclass(frozen=True)
class Position:
    """Where a page ended: the last row's time and key (rows are ordered newest first, then
    by key), so the next page starts after it however many rows share that time."""

    received_at: datetime
    key: str

    def cursor(self) -> str:
        raw = json.dumps({"t": self.received_at.isoformat(), "k": self.key}).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def read_cursor(cursor: str) -> Position | None:
    """The position a cursor names, or None when it is not one this gateway made."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        at = datetime.fromisoformat(raw["t"])
        key = raw["k"]
    except (ValueError, TypeError, KeyError, binascii.Error, RecursionError):
        return None
    if at.tzinfo is None or not isinstance(key, str) or len(key) > 200:
        return None
    return Position(at, key)


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
        event_id if isinstance(event_id, str) and len(event_id) <= MAX_ID_CHARS else "",
        short_type(event.get("type")),
        received_at,
        bounded_reasons(GATEWAY, errors),
        fallback_key,
    )


def request_refused(
    trust: str, errors: list[FieldError], received_at: datetime, fallback_key: str
) -> Rejection:
    """A whole request refused at the door (400, 403, 413, 415): one row of type `request`."""
    return Rejection(
        trust, "", REQUEST, received_at, bounded_reasons(GATEWAY, errors), fallback_key
    )


def reasons_from_text(
    by: str, text: str, codes: Mapping[str, str] | None = None
) -> tuple[Reason, ...]:
    """A dead letter's error text (`field: rule; field: rule` for contract errors); each
    field's code from `codes` (the contract's verdict on the same bytes) where it names one."""
    # Split only where the next part names a field: a rule's own text may hold "; ".
    parts = [p.strip() for p in _NEXT_FIELD.split(text) if p.strip()] or ["(no reason given)"]
    errors = []
    for part in parts:
        match = _FIELD_RULE.match(part)
        field, message = (match.group(1), match.group(2)) if match else ("event", part)
        code = (codes or {}).get(field) or CONSUMER_RULES.get((field, message), "invalid")
        errors.append(FieldError(field, message, code))
    return bounded_reasons(by, errors)


def contract_codes(subject: str, data: bytes) -> dict[str, str]:
    """The code of each field the contract refuses in these bytes (empty when it accepts
    them: the dead letter was then a service's own refusal or a failure to apply)."""
    try:
        parse_event(subject if subject.startswith(SUBJECT_PREFIX) else None, data)
    except ContractError as exc:
        return {e.field: e.code for e in exc.errors}
    except (ValueError, RecursionError):
        return {}
    return {}


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
    codes = contract_codes(headers.get(H_SUBJECT, ""), data)
    return Rejection(
        trust,
        event_id[:MAX_ID_CHARS],
        event_type[:40],
        received_at,
        reasons_from_text(consumer[:40], headers.get(H_ERROR, ""), codes),
        f"dlq:{seq}",
    )


def _trust_of(value: object) -> str:
    return value if isinstance(value, str) and _TRUST.match(value) else ""


def _trust_of_subject(subject: str) -> str:
    if not subject.startswith(SUBJECT_PREFIX):
        return ""
    return _trust_of(subject[len(SUBJECT_PREFIX) :].split(".", 1)[0])
