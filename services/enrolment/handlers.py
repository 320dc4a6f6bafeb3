"""Thin handlers: event -> record (domain) -> one stored update -> publish the outbox."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from services.enrolment.adapters.repository import ClinicianRepository
from services.enrolment.domain.record import OutboxEntry
from shared.envelope import AnyEvent, parse_event

log = logging.getLogger(__name__)


class Publisher(Protocol):
    async def publish(self, event: AnyEvent) -> bool: ...


class EnrolmentHandlers:
    def __init__(self, repository: ClinicianRepository, publisher: Publisher) -> None:
        self._repository = repository
        self._publisher = publisher

    async def on_event(self, event: AnyEvent) -> None:
        """Store the event's effect with any derived events, then publish those.

        On redelivery (the event is already stored) this publishes whatever the outbox still
        holds, so a crash between storing and publishing is repaired by the redelivery; a
        publish failure raises, so the event is redelivered.
        """
        _, outbox = await self._repository.apply(event)
        await self._publish(event.data.clinician_ref, outbox)

    async def on_batch(self, events: list[AnyEvent]) -> None:
        """`on_event` for a delivered batch: one read and one bulk write for all of it, then
        every touched outbox published and cleared in one more write.

        If anything raises (a concurrent writer, a publish failure),
        the backbone applies each event again with `on_event`, which skips those already
        stored and publishes whatever the outboxes still hold.
        """
        published: list[tuple[str, str]] = []
        for clinician_ref, entries in await self._repository.apply_many(events):
            for entry in entries:
                await self._publish_one(clinician_ref, entry)
                published.append((clinician_ref, entry.id))
        await self._repository.clear_outboxes(published)

    async def _publish(self, clinician_ref: str, entries: Iterable[OutboxEntry]) -> None:
        for entry in entries:
            await self._publish_one(clinician_ref, entry)
            await self._repository.clear_outbox(clinician_ref, entry.id)

    async def _publish_one(self, clinician_ref: str, entry: OutboxEntry) -> None:
        stored = await self._publisher.publish(parse_event(None, entry.body.encode()))
        log.info("published %s %s for clinician %s%s", entry.name, entry.id, clinician_ref,
                 "" if stored else " (duplicate, already in the stream)")

    async def republish_pending(self) -> int:
        """Publish every outbox a crash left behind; return how many events were pending."""
        count = 0
        for clinician_ref, entries in await self._repository.pending_outboxes():
            await self._publish(clinician_ref, entries)
            count += len(entries)
        return count

    def republish_loop(self, interval: float) -> Callable[[], Awaitable[None]]:
        async def loop() -> None:
            while True:
                pending = await self.republish_pending()
                if pending:
                    log.warning("re-published %d derived event(s) left in outboxes", pending)
                await asyncio.sleep(interval)

        return loop
