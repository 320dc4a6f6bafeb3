"""Publishing to the events stream through the backbone's publisher, failing fast.

One attempt with a short timeout: the client is waiting, and a 503 telling it to resend
serves it better than a request that hangs while NATS reconnects.
"""

from __future__ import annotations

from collections.abc import Sequence

from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError
from nats.js import JetStreamContext

from ibest.backbone.publisher import EventPublisher, Publishing
from services.gateway.ports import StreamUnavailable
from shared.envelope import AnyEvent


class NatsEventStream:
    """The gateway's `Publisher`: one attempt, and `StreamUnavailable` when not stored."""

    def __init__(self, nc: NatsClient, js: JetStreamContext, timeout: float, id_key: bytes) -> None:
        self._nc = nc
        self._publisher = EventPublisher(js, "gateway", attempts=1, timeout=timeout, id_key=id_key)

    async def publish(self, event: AnyEvent, body: bytes | None = None) -> bool:
        if not self._nc.is_connected:
            raise StreamUnavailable("not connected to NATS")
        try:
            return await self._publisher.publish(event, body)
        except (NatsError, TimeoutError, OSError) as exc:
            raise StreamUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def publish_many(
        self, events: Sequence[Publishing], refused: set[int] | None = None
    ) -> list[bool | None]:
        """A request's events all in flight at once; None for each one not stored (and its
        index in `refused` when the trust's share of the store is full)."""
        if not self._nc.is_connected:
            return [None] * len(events)
        return await self._publisher.publish_many(events, refused)
