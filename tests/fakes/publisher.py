"""The one fake publisher: an in-memory stream that deduplicates by event id, as JetStream
does, and can be made to fail like a lost connection."""

from __future__ import annotations

from ibest.backbone.publisher import Publisher
from shared.envelope import AnyEvent


class FakePublisher:
    """Records every publish; `stored` keeps the first event of each id (the stream's
    duplicate window). `failures` fails that many next publishes, `down` every publish until
    cleared; with `forward_to`, successful publishes also go to a real publisher."""

    def __init__(self, forward_to: Publisher | None = None) -> None:
        self.forward_to = forward_to
        self.published: list[AnyEvent] = []  # every successful publish, duplicates too
        self.stored: dict[str, AnyEvent] = {}
        self.attempts: list[str] = []
        self.failures = 0
        self.down = False
        self.failed = 0

    async def publish(self, event: AnyEvent) -> bool:
        self.attempts.append(str(event.id))
        if self.down or self.failures:
            self.failures = max(0, self.failures - 1)
            self.failed += 1
            raise ConnectionError("NATS unavailable (simulated crash before the ack)")
        self.published.append(event)
        fresh = str(event.id) not in self.stored
        self.stored.setdefault(str(event.id), event)
        if self.forward_to is not None:
            return await self.forward_to.publish(event)
        return fresh

    def sent(self) -> list[tuple[str, str]]:
        """(id, JSON) of every successful publish, in order."""
        return [(str(e.id), e.to_json().decode()) for e in self.published]

    def clear(self) -> None:
        self.published.clear()
        self.stored.clear()
        self.attempts.clear()
