"""Erasing a clinician's contact email from the events stream itself.

The stream keeps every event (rebuilds replay it), so the original `clinician.enrolled`
events still carry the email after the enrolment database forgot it. Each such event is
replaced by a redacted copy (same attributes and data, no `contact_email`, a deterministic
new id so re-running is harmless) and the original is deleted from the stream. Consumers
see the copy as one more enrolment of the same clinician at the same time, which changes no
state; a later rebuild replays the copy instead of the original.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext

from ibest.backbone.streams import EVENTS_STREAM

REDACTED_NAMESPACE = uuid.UUID("0b8f6a52-8d5e-4f1e-9d0a-2f5c3b7e9a41")


@dataclass(frozen=True)
class StreamErasure:
    scanned: int
    redacted: int


def redacted_copy(body: bytes) -> tuple[bytes, str] | None:
    """The event without its contact email and its new id, or None if it has no email."""
    event = json.loads(body)
    if not event.get("data", {}).get("contact_email"):
        return None
    del event["data"]["contact_email"]
    new_id = str(uuid.uuid5(REDACTED_NAMESPACE, str(event["id"])))
    event["id"] = new_id
    return json.dumps(event).encode(), new_id


async def erase_from_stream(
    js: JetStreamContext, clinician_ref: str,
    before_replace: Callable[[str, str], Awaitable[None]] | None = None,
    idle_timeout: float = 10.0,
) -> StreamErasure:
    """Replace every stored enrolment of `clinician_ref` that carries an email.

    `before_replace(original_id, new_id)` runs before each copy is published, so the
    enrolment record can adopt the new id and see the copy as a redelivery.
    """
    info = await js.stream_info(EVENTS_STREAM)
    end = info.state.last_seq
    scanned = redacted = 0
    if not end:
        return StreamErasure(0, 0)
    sub = await js.subscribe("ibest.v1.*.clinician.enrolled", stream=EVENTS_STREAM,
                             ordered_consumer=True)
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=idle_timeout)
            except NatsTimeout:
                break  # nothing more on this filter up to now
            seq = msg.metadata.sequence.stream
            scanned += 1
            try:
                mine = json.loads(msg.data).get("data", {}).get("clinician_ref") == clinician_ref
                copy = redacted_copy(msg.data) if mine else None
            except (ValueError, AttributeError, TypeError):
                copy = None  # invalid events are the dead-letter stream's business
            if copy is not None:
                body, new_id = copy
                if before_replace is not None:
                    await before_replace(json.loads(msg.data)["id"], new_id)
                await js.publish(msg.subject, body, headers={"Nats-Msg-Id": new_id})
                await js.delete_msg(EVENTS_STREAM, seq)
                redacted += 1
            if seq >= end or msg.metadata.num_pending == 0:
                break
    finally:
        await sub.unsubscribe()
    return StreamErasure(scanned, redacted)
