"""The reporting `EventHistory` over JetStream: the stored event stream read in order, for
`ibest reporting rebuild`."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterable
from datetime import datetime

from nats.js import JetStreamContext

from ibest.backbone.ledger import content_digest, ledger_key
from ibest.backbone.streams import EVENTS_STREAM, EVENTS_SUBJECTS, stored_until_now
from shared.envelope import AnyEvent, ContractError, parse_event
from shared.eventtime import DEFAULT_TIME_BOUNDS, TimeBounds


class StreamHistory:
    """`IBEST_EVENTS` from sequence 1 up to its last sequence when the read starts."""

    def __init__(
        self,
        js: JetStreamContext,
        idle_timeout: float = 30.0,
        bounds: TimeBounds = DEFAULT_TIME_BOUNDS,
    ) -> None:
        self.js = js
        self.idle_timeout = idle_timeout
        self.bounds = bounds
        self.refused: Counter[str] = Counter()
        """Consumed events the contract refused on this read, by rule code (an event dated
        in the future of its storing is one: `future-time`)."""

    async def stored(self, consumes: Iterable[str]) -> AsyncIterator[AnyEvent]:
        """Every valid consumed event stored up to now, in stream order, as the live consumer
        would apply it: invalid events (a repeated JSON key included) and an id its trust
        reused for other content are skipped (the live consumer dead-letters them), later
        copies of a (trust, id) are passed on (handlers are idempotent). Ids are judged per
        trust, as the live consumers' `EventLedger` does. Each event's time is judged against
        when the stream stored it, as the live consumer judged it (shared.eventtime), never
        against the clock now."""
        names = frozenset(consumes)
        digests: dict[str, str] = {}
        async for msg in stored_until_now(
            self.js, EVENTS_STREAM, EVENTS_SUBJECTS[0], self.idle_timeout
        ):
            event = self._valid(msg.subject, msg.data, msg.metadata.timestamp, names)
            if event is None:
                continue
            digest = content_digest(event)
            if digests.setdefault(ledger_key(event.trustcode, event.id), digest) == digest:
                yield event

    def _valid(
        self, subject: str, body: bytes, stored: datetime | None, consumes: frozenset[str]
    ) -> AnyEvent | None:
        try:
            event = parse_event(subject, body, received=stored, bounds=self.bounds)
        except ContractError as exc:
            if _consumed(subject, consumes):
                self.refused.update(e.code for e in exc.errors)
            return None
        return event if event.event_type.name in consumes else None


def _consumed(subject: str, consumes: frozenset[str]) -> bool:
    return ".".join(subject.split(".")[3:]) in consumes
