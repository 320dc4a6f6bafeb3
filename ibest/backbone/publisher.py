"""Publishing contract events to JetStream with the CloudEvent id as Nats-Msg-Id."""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from nats.errors import ConnectionClosedError, NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.errors import ServiceUnavailableError
from prometheus_client import Counter

from ibest.backbone.metrics import EVENTS_PUBLISHED
from ibest.backbone.streams import EVENTS_STREAM
from shared.envelope import AnyEvent

log = logging.getLogger(__name__)
_TRANSIENT = (
    NatsTimeout,
    TimeoutError,
    NoRespondersError,
    ServiceUnavailableError,
    ConnectionClosedError,
)


class Publisher(Protocol):
    """What use cases publish through: the one publisher protocol (EventPublisher in
    production, tests.fakes.FakePublisher in unit tests)."""

    async def publish(self, event: AnyEvent, body: bytes | None = None) -> bool:
        """Publish `event` (as `body`, its validated bytes, when given: the gateway stores
        exactly what it judged); True when the stream stored it, False when it was a
        duplicate."""
        ...


class EventPublisher:
    """Publishes events and waits for the stream's acknowledgement, retrying briefly.

    Re-publishing the same event is always safe: the stream drops a repeated id within its
    duplicate window, and consumers are idempotent by id beyond it.
    """

    def __init__(
        self, js: JetStreamContext, service: str, attempts: int = 5, timeout: float = 5
    ) -> None:
        self._js = js
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

    async def publish(self, event: AnyEvent, body: bytes | None = None) -> bool:
        """Publish `event` (as `body`, its validated bytes, when given); True when the stream
        stored it, False when it was a duplicate."""
        delay = 0.2
        for attempt in range(1, self._attempts + 1):
            try:
                ack = await self._js.publish(
                    event.subject,
                    event.to_json() if body is None else body,
                    headers={"Nats-Msg-Id": str(event.id)},
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


class ReadOnlyPublisher:
    """The publisher of a command that must not publish: any attempt is a bug."""

    async def publish(self, event: AnyEvent, body: bytes | None = None) -> bool:
        raise RuntimeError(f"read-only command tried to publish {event.type}")
