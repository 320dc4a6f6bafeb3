"""Erasing a clinician's contact email from the events stream itself.

The stream keeps every event (rebuilds replay it), so the original `clinician.enrolled`
events still carry the email after the enrolment database forgot it. Each such event is
replaced by a redacted copy (same attributes and data, no `contact_email`, a deterministic
new id so re-running is harmless) and the original is deleted from the stream. Consumers
see the copy as one more enrolment of the same clinician at the same time, which changes no
state; a later rebuild replays the copy instead of the original.

Dead letters of that clinician's enrolments that carry an email (an invalid enrolment is
dead-lettered by every service that consumes it, bytes as sent) are deleted from the
dead-letter stream: once the clinician is erased they are no one's to replay. A redacted
copy of an invalid enrolment is dead-lettered again, without the email, and kept.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from nats.js import JetStreamContext

from ibest.backbone.deadletters import H_SUBJECT
from ibest.backbone.outbox_values import deterministic_id
from ibest.backbone.streams import (
    DEADLETTER_PREFIX,
    DEADLETTER_STREAM,
    EVENTS_STREAM,
    stored_until_now,
)

REDACTED_NAMESPACE = uuid.UUID("0b8f6a52-8d5e-4f1e-9d0a-2f5c3b7e9a41")


@dataclass(frozen=True)
class StreamErasure:
    scanned: int
    redacted: int
    unreadable_deleted: int = 0
    dead_letters_deleted: int = 0


def redacted_copy(body: bytes) -> tuple[bytes, str] | None:
    """The event without its contact email and its new id, or None if it has no email."""
    event = json.loads(body)
    if not event.get("data", {}).get("contact_email"):
        return None
    del event["data"]["contact_email"]
    new_id = str(deterministic_id(REDACTED_NAMESPACE, str(event["id"])))
    event["id"] = new_id
    return json.dumps(event).encode(), new_id


def _enrolment_data(body: bytes) -> dict[str, Any] | None:
    """The `data` of a stored enrolment, or None if the bytes are not such JSON."""
    try:
        data = json.loads(body).get("data")
    except (ValueError, AttributeError):
        return None
    return data if isinstance(data, dict) else None


def may_hold_email_of(body: bytes, clinician_ref: str) -> bool:
    """Whether stored bytes are an enrolment of `clinician_ref` with an email. Bytes that are
    not JSON are judged by whether they contain the reference as a JSON string, so no
    unreadable copy of an erased clinician's enrolment survives."""
    data = _enrolment_data(body)
    if data is None:
        return json.dumps(clinician_ref).encode() in body
    return data.get("clinician_ref") == clinician_ref and bool(data.get("contact_email"))


async def erase_from_stream(
    js: JetStreamContext,
    clinician_ref: str,
    before_replace: Callable[[str, str], Awaitable[None]] | None = None,
    idle_timeout: float = 10.0,
) -> StreamErasure:
    """Replace every stored enrolment of `clinician_ref` that carries an email, and delete
    the dead letters of its enrolments.

    `before_replace(original_id, new_id)` runs before each copy is published, so the
    enrolment record can adopt the new id and see the copy as a redelivery.
    """
    adopt = None if before_replace is None else (lambda _ref, old, new: before_replace(old, new))
    return await erase_many_from_stream(js, {clinician_ref}, adopt, idle_timeout)


async def erase_many_from_stream(
    js: JetStreamContext,
    clinician_refs: set[str],
    before_replace: Callable[[str, str, str], Awaitable[None]] | None = None,
    idle_timeout: float = 10.0,
) -> StreamErasure:
    """`erase_from_stream` for many clinicians in one pass over each stream (retention:
    `ibest enrolment retention --from-stream`); `before_replace(clinician_ref, original_id,
    new_id)`."""
    scanned = redacted = unreadable = dead_letters = 0
    if not clinician_refs:
        return StreamErasure(0, 0)
    async for msg in stored_until_now(
        js, EVENTS_STREAM, "ibest.v1.*.clinician.enrolled", idle_timeout
    ):
        scanned += 1
        try:
            ref = json.loads(msg.data).get("data", {}).get("clinician_ref")
            mine = isinstance(ref, str) and ref in clinician_refs
            copy = redacted_copy(msg.data) if mine else None
        except (ValueError, AttributeError, TypeError):
            copy = None
            if any(may_hold_email_of(msg.data, r) for r in clinician_refs):
                # unreadable, so never applied: deleted, as its dead letters are below
                await js.delete_msg(EVENTS_STREAM, msg.metadata.sequence.stream)
                unreadable += 1
        if copy is not None:
            body, new_id = copy
            if before_replace is not None:
                await before_replace(ref, json.loads(msg.data)["id"], new_id)
            await js.publish(msg.subject, body, headers={"Nats-Msg-Id": new_id})
            await js.delete_msg(EVENTS_STREAM, msg.metadata.sequence.stream)
            redacted += 1
    async for msg in stored_until_now(
        js, DEADLETTER_STREAM, f"{DEADLETTER_PREFIX}.>", idle_timeout
    ):
        original = (msg.headers or {}).get(H_SUBJECT, "")
        if original.endswith(".clinician.enrolled") and any(
            may_hold_email_of(msg.data, r) for r in clinician_refs
        ):
            await js.delete_msg(DEADLETTER_STREAM, msg.metadata.sequence.stream)
            dead_letters += 1
    return StreamErasure(scanned, redacted, unreadable, dead_letters)
