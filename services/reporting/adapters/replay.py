"""The reporting `EventHistory` over JetStream: the stored event stream read in order, for
`ibest reporting rebuild`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from nats.js import JetStreamContext

from ibest.backbone.consumer import content_digest, ledger_key
from ibest.backbone.streams import EVENTS_STREAM, EVENTS_SUBJECTS, stored_until_now
from shared.envelope import AnyEvent, ContractError, parse_event


class StreamHistory:
    """`IBEST_EVENTS` from sequence 1 up to its last sequence when the read starts."""

    def __init__(self, js: JetStreamContext, idle_timeout: float = 30.0) -> None:
        self.js = js
        self.idle_timeout = idle_timeout

    async def stored(self, consumes: Iterable[str]) -> AsyncIterator[AnyEvent]:
        """Every valid consumed event stored up to now, in stream order, as the live consumer
        would apply it: invalid events (a repeated JSON key included) and an id its trust
        reused for other content are skipped (the live consumer dead-letters them), later
        copies of a (trust, id) are passed on (handlers are idempotent). Ids are judged per
        trust, as the live consumers' `EventLedger` does."""
        names = frozenset(consumes)
        digests: dict[str, str] = {}
        async for msg in stored_until_now(
            self.js, EVENTS_STREAM, EVENTS_SUBJECTS[0], self.idle_timeout
        ):
            event = _valid(msg.subject, msg.data, names)
            if event is None:
                continue
            digest = content_digest(event)
            if digests.setdefault(ledger_key(event.trustcode, event.id), digest) == digest:
                yield event


def _valid(subject: str, body: bytes, consumes: frozenset[str]) -> AnyEvent | None:
    try:
        event = parse_event(subject, body)
    except ContractError:
        return None
    return event if event.event_type.name in consumes else None
