"""The one fake publisher: an in-memory stream that deduplicates by (trust, event id), as
JetStream does on the platform's keyed Nats-Msg-Id, and can be made to fail like a lost
connection."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ibest.backbone.publisher import Publisher, Publishing
from shared.envelope import AnyEvent, parse_event


class FakePublisher:
    """Records every publish; `stored` keeps the first event of each id (the stream's
    duplicate window). `failures` fails that many next publishes, `down` every publish until
    cleared, `fail_after` every publish after that many attempts; `error` makes the exception
    a failure raises (a lost connection by default, or an adapter's own error). With
    `forward_to`, successful publishes also go to a real publisher. `held` is what the stream
    holds, in order: each (trust, id) once, as first published; with `per_subject`, a subject
    holding that many refuses more for good, as the stream's `IBEST_EVENTS_PER_SUBJECT`
    does (tests/backbone/test_publisher_contract.py holds it to the real publisher)."""

    def __init__(
        self,
        forward_to: Publisher | None = None,
        error: Callable[[str], Exception] = ConnectionError,
    ) -> None:
        self.forward_to = forward_to
        self.error = error
        self.fail_after: int | None = None
        self.published: list[AnyEvent] = []  # every successful publish, duplicates too
        self.stored: dict[str, AnyEvent] = {}
        self.window: set[tuple[str, str]] = set()  # the (trust, id)s the stream remembers
        self.attempts: list[str] = []
        self.failures = 0
        self.down = False
        self.failed = 0
        self.full: set[str] = set()
        """Subjects whose share of the store is full (a publish on one is refused for good)."""
        self.held: list[AnyEvent] = []
        self.per_subject: int | None = None

    async def publish(self, event: AnyEvent, body: bytes | None = None) -> bool:
        self.attempts.append(str(event.id))
        beyond = self.fail_after is not None and len(self.attempts) > self.fail_after
        if self.down or self.failures or beyond:
            self.failures = max(0, self.failures - 1)
            self.failed += 1
            raise self.error("NATS unavailable (simulated crash before the ack)")
        if body is not None:
            assert parse_event(event.subject, body) == event, "the bytes are the event's"
        self.published.append(event)
        fresh = (event.trustcode, str(event.id)) not in self.window
        if fresh:
            self.held.append(event)
        self.window.add((event.trustcode, str(event.id)))
        self.stored.setdefault(str(event.id), event)
        if self.forward_to is not None:
            return await self.forward_to.publish(event, body)
        return fresh

    async def publish_many(
        self, events: Sequence[Publishing], refused: set[int] | None = None
    ) -> list[bool | None]:
        """One publish after another; a failed one is None (not stored), like the real one;
        an event of a subject in `full` is refused for good."""
        results: list[bool | None] = []
        for i, (event, body) in enumerate(events):
            if event.subject in self.full or self._share_full(event):
                results.append(None)
                if refused is not None:
                    refused.add(i)
                continue
            try:
                results.append(await self.publish(event, body))
            except Exception:
                results.append(None)
        return results

    def _share_full(self, event: AnyEvent) -> bool:
        return (
            self.per_subject is not None
            and (event.trustcode, str(event.id)) not in self.window
            and sum(e.subject == event.subject for e in self.held) >= self.per_subject
        )

    def sent(self) -> list[tuple[str, str]]:
        """(id, JSON) of every successful publish, in order."""
        return [(str(e.id), e.to_json().decode()) for e in self.published]

    def latest_derived(self) -> dict[tuple[str, str, str], AnyEvent]:
        """The highest revision of each derived training event, by (clinician, course
        version, event name): what a consumer keeps."""
        latest: dict[tuple[str, str, str], AnyEvent] = {}
        for e in self.stored.values():
            name = e.event_type.name
            if name not in ("clinician.training_started", "clinician.training_completed"):
                continue
            key = (e.data.clinician_ref, e.data.course_version, name)
            if key not in latest or (e.data.revision or 1) > (latest[key].data.revision or 1):
                latest[key] = e
        return latest

    def clear(self) -> None:
        self.published.clear()
        self.stored.clear()
        self.held.clear()
        self.attempts.clear()
