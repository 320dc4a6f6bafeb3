"""The one outbox: derived events stored with the state that implies them, published after.

A service that publishes events because of what it stored (enrolment's training events,
outcomes' outcome.recorded, notifications' notification.sent/failed) must never lose one
to a crash between storing and publishing, nor publish one it did not store. So:

- Storage (one format for every service): the entries are embedded in the aggregate's own
  MongoDB document, in an array field `outbox` of `{id, name, body}` (`OutboxEntry`), and
  written in the same single-document update as the state. MongoDB applies one document
  write atomically, so the state and its events are stored together without a
  multi-document transaction. `body` is the event's JSON, fixed when the entry is made.
- Ids are deterministic and keyed (`shared.keyed.keyed_event_id` under the platform's id
  key, `Settings.platform_id_key`), so a re-publish after a crash carries the same id and
  JetStream drops it within its duplicate window (consumers are idempotent by (trust, id)
  beyond it), and no sender can compute one first to pre-empt it.
- Relay (`OutboxRelay`): a use case publishes what it just stored and clears each entry
  once the stream has it; a background pass (`run`, every `interval` seconds, at most
  `limit` aggregates a pass) publishes whatever a crash left behind, and sets
  `ibest_outbox_backlog{service}` to the entries it found pending.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection

from ibest.backbone.document import Document
from ibest.backbone.metrics import OUTBOX_BACKLOG
from ibest.backbone.outbox_values import (
    OutboxEntry,
    OutboxSettings,
    OutboxStore,
    Pending,
)
from ibest.backbone.periodic import every
from ibest.backbone.publisher import Publisher

__all__ = [
    "MongoOutbox",
    "OutboxEntry",
    "OutboxRelay",
    "OutboxSettings",
    "OutboxStore",
    "Pending",
]
log = logging.getLogger(__name__)


class MongoOutbox:
    """`OutboxStore` over a collection whose documents embed their entries in `outbox`.

    `on_clear` is merged into the clearing update (enrolment bumps its `rev`, so a
    compare-and-set writer holding an older copy cannot put a cleared entry back).
    """

    def __init__(
        self, collection: AsyncCollection[Document], on_clear: Document | None = None
    ) -> None:
        self._collection = collection
        self._on_clear = on_clear or {}

    async def pending(self, limit: int) -> list[Pending]:
        cursor = self._collection.find({"outbox.id": {"$exists": True}}, {"outbox": 1}).limit(limit)
        return [(str(doc["_id"]), _entries(doc)) async for doc in cursor]

    async def entries(self, key: str) -> list[OutboxEntry]:
        doc = await self._collection.find_one({"_id": key}, {"outbox": 1})
        return list(_entries(doc)) if doc else []

    async def clear(self, key: str, ids: list[str]) -> None:
        if ids:
            await self._collection.update_one(*self._clearing(key, ids))

    async def clear_many(self, published: Mapping[str, list[str]]) -> None:
        ops = [UpdateOne(*self._clearing(key, ids)) for key, ids in published.items() if ids]
        if ops:
            await self._collection.bulk_write(ops, ordered=False)

    def _clearing(self, key: str, ids: list[str]) -> tuple[Document, Document]:
        return (
            {"_id": key, "outbox.id": {"$in": ids}},
            {"$pull": {"outbox": {"id": {"$in": ids}}}, **self._on_clear},
        )


def _entries(doc: Document) -> tuple[OutboxEntry, ...]:
    return tuple(OutboxEntry.model_validate(o) for o in doc.get("outbox") or [])


class OutboxRelay:
    """Publishes outbox entries and clears each once the stream has it (stored, or a
    duplicate it already held). A publish failure raises and leaves the entry in place."""

    def __init__(
        self, store: OutboxStore, publisher: Publisher, service: str, settings: OutboxSettings
    ) -> None:
        self.store = store
        self._publisher = publisher
        self._service = service
        self.settings = settings

    async def publish(self, key: str, entries: Iterable[OutboxEntry]) -> int:
        """Publish one aggregate's entries, clearing each as soon as it is published."""
        sent = 0
        for entry in entries:
            await self._publish_one(entry)
            await self.store.clear(key, [entry.id])
            sent += 1
        return sent

    async def publish_key(self, key: str) -> int:
        """Publish whatever one aggregate's outbox holds now."""
        return await self.publish(key, await self.store.entries(key))

    async def publish_many(self, pending: Iterable[Pending]) -> int:
        """Publish several aggregates' entries, then clear them all in one write."""
        published: dict[str, list[str]] = {}
        for key, entries in pending:
            for entry in entries:
                await self._publish_one(entry)
                published.setdefault(key, []).append(entry.id)
        await self.store.clear_many(published)
        return sum(map(len, published.values()))

    async def relay_once(self) -> int:
        """Publish what is pending (up to `limit` aggregates); return how many events."""
        pending = await self.store.pending(self.settings.limit)
        OUTBOX_BACKLOG.labels(self._service).set(sum(len(e) for _, e in pending))
        sent = 0
        for key, entries in pending:
            sent += await self.publish(key, entries)
        return sent

    async def run(self) -> None:
        """Background loop: publish whatever a crash left in an outbox."""

        async def relay_pass() -> None:
            sent = await self.relay_once()
            if sent:
                log.warning(
                    "%s: re-published %d derived event(s) left in outboxes", self._service, sent
                )

        await every(f"{self._service}: outbox relay", self.settings.interval, relay_pass)

    async def _publish_one(self, entry: OutboxEntry) -> None:
        stored = await self._publisher.publish(entry.event())
        log.info(
            "published %s %s%s",
            entry.name or "event",
            entry.id,
            "" if stored else " (duplicate, already in the stream)",
        )
