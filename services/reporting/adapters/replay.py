"""Reading the stored event stream in order, for `ibest reporting rebuild`."""

from __future__ import annotations

from collections.abc import AsyncIterator

from nats.js import JetStreamContext

from ibest.backbone.consumer import content_digest
from ibest.backbone.streams import EVENTS_STREAM, EVENTS_SUBJECTS, stored_until_now
from shared.envelope import AnyEvent, ContractError, parse_event


async def stored_events(
    js: JetStreamContext, consumes: tuple[str, ...], idle_timeout: float = 30.0
) -> AsyncIterator[AnyEvent]:
    """Every valid consumed event stored up to now, in stream order, as the live consumer
    would apply it: invalid events and an id reused for other content are skipped (the live
    consumer dead-letters them), later copies of an id are passed on (handlers are idempotent).
    """
    digests: dict[str, str] = {}
    async for msg in stored_until_now(js, EVENTS_STREAM, EVENTS_SUBJECTS[0], idle_timeout):
        event = _valid(msg.subject, msg.data, consumes)
        if event is not None and digests.setdefault(
            str(event.id), content_digest(event)
        ) == content_digest(event):
            yield event


def _valid(subject: str, body: bytes, consumes: tuple[str, ...]) -> AnyEvent | None:
    try:
        event = parse_event(subject, body)
    except ContractError:
        return None
    return event if event.event_type.name in consumes else None
