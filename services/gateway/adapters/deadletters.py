"""Reading IBEST_DEADLETTER through the durable pull consumer `gateway`.

The consumer is declared by the operator (`ibest streams apply`); the gateway only binds to
it, so NATS permissions need not let it create consumers. Acknowledged after recording, so
a dead letter is recorded at least once (recording is idempotent).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC

from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext

from ibest.backbone.streams import DEADLETTER_STREAM
from services.gateway.ports import DeadLetterMessage

CONSUMER = "gateway"


class JetStreamDeadLetters:
    def __init__(self, js: JetStreamContext, batch: int = 100, wait: float = 1.0) -> None:
        self._js, self._batch, self._wait = js, batch, wait
        self._sub: JetStreamContext.PullSubscription | None = None

    async def fetch(self) -> Sequence[DeadLetterMessage]:
        if self._sub is None:
            self._sub = await self._js.pull_subscribe_bind(
                durable=CONSUMER, stream=DEADLETTER_STREAM
            )
        try:
            msgs = await self._sub.fetch(self._batch, timeout=self._wait)
        except (NatsTimeout, TimeoutError):
            return []
        return [
            DeadLetterMessage(
                headers=dict(m.headers or {}),
                data=m.data,
                subject=m.subject,
                received_at=m.metadata.timestamp.astimezone(UTC),
                seq=m.metadata.sequence.stream,
                handle=m,
            )
            for m in msgs
        ]

    async def close(self) -> None:
        """Unsubscribe before the connection drains (a pull subscription's queue left with
        an unread status reply would keep the drain waiting until its timeout)."""
        if self._sub is not None:
            sub, self._sub = self._sub, None
            await sub.unsubscribe()

    async def ack(self, messages: Sequence[DeadLetterMessage]) -> None:
        for m in messages:
            await m.handle.ack()
