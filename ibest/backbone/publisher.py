"""Publishing contract events to JetStream, with a Nats-Msg-Id only the platform can make.

JetStream drops a message whose `Nats-Msg-Id` it saw within its duplicate window, across
the whole stream, taking the header exactly as the publisher set it; a trust publishing on
NATS directly sets it as it likes. So the platform's publishers (the gateway, every outbox
relay) never use the bare event id: they set `stream_msg_id`, a keyed hash of the event's
trust and id under the platform's id key, which no trust can compute. A trust's copied or
guessed header then never matches one of the platform's, and the stream's de-duplication
only ever drops the platform's own re-publishing of the same (trust, id). Whether an event
is new, a duplicate or an id reused for other content is judged per trust by the gateway's
ledger and every consumer's `EventLedger`, never by the stream.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol

from nats.errors import ConnectionClosedError, NoRespondersError
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import PubAck
from nats.js.errors import APIError, ServiceUnavailableError
from prometheus_client import Counter

from ibest.backbone.metrics import EVENTS_PUBLISHED
from ibest.backbone.streams import EVENTS_STREAM
from shared.envelope import AnyEvent
from shared.keyed import keyed_reference

log = logging.getLogger(__name__)
_TRANSIENT = (
    NatsTimeout,
    TimeoutError,
    NoRespondersError,
    ServiceUnavailableError,
    ConnectionClosedError,
)


def stream_msg_id(id_key: bytes, trustcode: str, event_id: str) -> str:
    """The `Nats-Msg-Id` the platform's publishers set: keyed by the event's trust and id,
    so one trust's event never shares it with another's, and no sender can pre-empt it."""
    return "p-" + keyed_reference(id_key, "nats-msg-id", trustcode, event_id)


class Publisher(Protocol):
    """What use cases publish through: the one publisher protocol (EventPublisher in
    production, tests.fakes.FakePublisher in unit tests)."""

    async def publish(self, event: AnyEvent, body: bytes | None = None) -> bool:
        """Publish `event` (as `body`, its validated bytes, when given: the gateway stores
        exactly what it judged); True when the stream stored it, False when it was a
        duplicate."""
        ...

    async def publish_many(
        self, events: Sequence[Publishing], refused: set[int] | None = None
    ) -> list[bool | None]:
        """Publish every (event, body) at once, each awaited for its own acknowledgement;
        per event, in order: True (stored), False (a duplicate) or None (not stored, after
        the publisher's attempts: send it again). When `refused` is given, the indexes the
        stream refused for good (the subject's share of the store is full, see
        `share_full`) are added to it: None too, and not sent again."""
        ...


Publishing = tuple[AnyEvent, bytes | None]
"""An event and, when given, the exact bytes to store (see Publisher.publish)."""


def share_full(exc: BaseException | None) -> bool:
    """Whether the stream refused a publish because the subject (one trust, one event type)
    holds its most events (`IBEST_EVENTS_PER_SUBJECT`, `discard_new_per_subject`): sending
    it again will not store it until the operators raise the share."""
    return (
        isinstance(exc, APIError)
        and "maximum messages per subject" in str(exc.description or "").lower()
    )


class EventPublisher:
    """Publishes events and waits for the stream's acknowledgement, retrying briefly.

    Re-publishing the same event is always safe: the stream drops a repeated (trust, id)
    within its duplicate window, and consumers are idempotent by (trust, id) beyond it.
    `id_key` is the platform's id key (`Settings.platform_id_key`), for `stream_msg_id`.
    """

    def __init__(
        self,
        js: JetStreamContext,
        service: str,
        attempts: int = 5,
        timeout: float = 5,
        *,
        id_key: bytes,
    ) -> None:
        self._js = js
        self._id_key = id_key
        self._service = service
        self._attempts = attempts
        self._timeout = timeout
        self._counters: dict[str, Counter] = {}

    def _published(self, event_name: str) -> Counter:
        """This service's published-events counter for one event type, looked up once (the
        gateway publishes thousands a second; `labels` takes a lock each time)."""
        counter = self._counters.get(event_name)
        if counter is None:
            counter = self._counters[event_name] = EVENTS_PUBLISHED.labels(
                self._service, event_name
            )
        return counter

    def _headers(self, event: AnyEvent) -> dict[str, str]:
        return {"Nats-Msg-Id": stream_msg_id(self._id_key, event.trustcode, str(event.id))}

    async def publish(self, event: AnyEvent, body: bytes | None = None) -> bool:
        """Publish `event` (as `body`, its validated bytes, when given); True when the stream
        stored it, False when it was a duplicate."""
        delay = 0.2
        for attempt in range(1, self._attempts + 1):
            try:
                ack = await self._js.publish(
                    event.subject,
                    event.to_json() if body is None else body,
                    headers={
                        "Nats-Msg-Id": stream_msg_id(self._id_key, event.trustcode, str(event.id))
                    },
                    stream=EVENTS_STREAM,
                    timeout=self._timeout,
                )
            except _TRANSIENT:
                if attempt == self._attempts:
                    raise
                log.warning("publish of %s failed (attempt %d); retrying", event.type, attempt)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5)
            else:
                self._published(event.event_type.name).inc()
                return not ack.duplicate
        raise AssertionError("unreachable")

    async def publish_many(
        self, events: Sequence[Publishing], refused: set[int] | None = None
    ) -> list[bool | None]:
        """All in flight together through nats-py's `publish_async` (no task or timer per
        event: the gateway stores a batch of 500 this way), then the ones not acknowledged
        within the timeout are sent again, up to the publisher's attempts."""
        results: list[bool | None] = [None] * len(events)
        pending = list(range(len(events)))
        delay = 0.2
        for attempt in range(1, self._attempts + 1):
            acks = await self._send(events, pending)
            if acks:
                _, late = await asyncio.wait(acks.values(), timeout=self._timeout)
                for ack in late:
                    ack.cancel()  # nats-py then forgets it and frees its slot
            full: set[int] = set()
            for i, ack in acks.items():
                if ack.cancelled():
                    continue
                if ack.exception() is None:
                    results[i] = not ack.result().duplicate
                    self._published(events[i][0].event_type.name).inc()
                elif share_full(ack.exception()):
                    full.add(i)
            if refused is not None:
                refused |= full
            pending = [i for i in pending if results[i] is None and i not in full]
            if not pending or attempt == self._attempts:
                break
            log.warning(
                "%d of %d events not acknowledged (attempt %d); retrying",
                len(pending),
                len(events),
                attempt,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5)
        return results

    async def _send(
        self, events: Sequence[Publishing], indexes: list[int]
    ) -> dict[int, asyncio.Future[PubAck]]:
        """Send the events at `indexes`; their acknowledgements, by index. Sending stops at
        the first event the connection refuses (the rest are left for another attempt)."""
        acks: dict[int, asyncio.Future[PubAck]] = {}
        for i in indexes:
            event, body = events[i]
            try:
                acks[i] = await self._js.publish_async(
                    event.subject,
                    event.to_json() if body is None else body,
                    headers={
                        "Nats-Msg-Id": stream_msg_id(self._id_key, event.trustcode, str(event.id))
                    },
                    stream=EVENTS_STREAM,
                )
            except (NatsError, OSError) as exc:
                log.warning("publishing stopped: %s", type(exc).__name__)
                break
        return acks


class ReadOnlyPublisher:
    """The publisher of a command that must not publish: any attempt is a bug."""

    async def publish(self, event: AnyEvent, body: bytes | None = None) -> bool:
        raise RuntimeError(f"read-only command tried to publish {event.type}")

    async def publish_many(
        self, events: Sequence[Publishing], refused: set[int] | None = None
    ) -> list[bool | None]:
        raise RuntimeError(f"read-only command tried to publish {len(events)} events")
