"""The one outbox: derived events stored with the state that implies them, published after.

A service that publishes events because of what it stored (enrolment's training events,
outcomes' outcome.recorded, notifications' notification.sent/failed) must never lose one
to a crash between storing and publishing, nor publish one it did not store. So:

- Storage (one format for every service): the entries are embedded in the aggregate's own
  MongoDB document, in an array field `outbox` of `{id, name, body}` (`OutboxEntry`), and
  written in the same single-document update as the state. MongoDB applies one document
  write atomically, so the state and its events are stored together without a
  multi-document transaction. `body` is the event's JSON, fixed when the entry is made;
  stamped stores keep it compressed against a preset dictionary (`outbox_codec`).
- Ids are deterministic and keyed (`shared.keyed.keyed_event_id` under the platform's id
  key, `Settings.platform_id_key`), so a re-publish after a crash carries the same id and
  JetStream drops it within its duplicate window (consumers are idempotent by (trust, id)
  beyond it), and no sender can compute one first to pre-empt it.
- Relay (`OutboxRelay`): a use case publishes what it just stored; a background pass
  (`run`, every `interval` seconds, at most `limit` aggregates a pass) publishes whatever a
  crash left behind, and sets `ibest_outbox_backlog{service}` to the entries it found
  pending.
- Clearing, two ways (`MongoOutbox`):
  - *cleared* stores (the default: notifications' reminders, forms' submissions): each
    published entry is removed by a second update of its document (`$pull`).
  - *stamped* stores (`stamped=True`: enrolment's clinicians, outcomes' patients, whose
    documents are rewritten by later events; issue 26): no second write. The write that
    stores entries also sets `outbox_at` (`MongoOutbox.stamp`, the wall clock); the process
    remembers the ids it published (the last `REMEMBERED` of them), and the aggregate's
    next write keeps only the entries it does not know published (`MongoOutbox.kept`; an
    entry another process published is kept and published again: a duplicate). The
    background pass publishes, once, every entry of the documents stamped since its
    persisted mark (collection `outbox_marks`, `_id` = the collection's name) that this
    process does not know published, then moves the mark, never closer than `SWEEP_LAG`
    to now (a write that lands late is still swept). So a crash between the write and the
    publish is repaired by the next pass of any instance, as before; a restarted process
    republishes (duplicates) what was stamped since the mark; published entries stay in
    their document until its next write. A document of a stamped store without
    `outbox_at` (written before it) is cleared as before.
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from pymongo import ASCENDING, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from ibest.backbone.document import Document
from ibest.backbone.metrics import OUTBOX_BACKLOG
from ibest.backbone.outbox_codec import read_entries, stored_entries
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
    "read_entries",
    "stored_entries",
]
log = logging.getLogger(__name__)


SWEEP_LAG = timedelta(minutes=2)
"""How far behind now a stamped store's sweep mark stays: a write stamped before the mark
but landing after it (a slow write, a clock a little behind) is still swept."""
REMEMBERED = 50_000
"""How many published entry ids a stamped store remembers (under 10 MB of memory)."""


class MongoOutbox:
    """`OutboxStore` over a collection whose documents embed their entries in `outbox`
    (the module docstring says how each kind of store clears them).

    `on_clear` is merged into the clearing update (enrolment bumps its `rev`, so a
    compare-and-set writer holding an older copy cannot put a cleared entry back).
    """

    def __init__(
        self,
        collection: AsyncCollection[Document],
        on_clear: Document | None = None,
        *,
        stamped: bool = False,
    ) -> None:
        self._collection = collection
        self._on_clear = on_clear or {}
        self._stamped = stamped
        self._published: OrderedDict[str, None] = OrderedDict()
        self._unstamped: set[str] = set()
        """Keys of a stamped store whose pending entries have no stamp: cleared."""
        self._marks = collection.database["outbox_marks"]
        self._mark: tuple[datetime, str] | None = None
        self._next_mark: tuple[datetime, str] | None = None

    # What a stamped store's writers use

    @staticmethod
    def stamp() -> datetime:
        """The `outbox_at` of a write that stores entries (the wall clock, as the sweep's)."""
        return datetime.now(UTC)

    def kept(self, stored: Iterable[OutboxEntry]) -> list[OutboxEntry]:
        """The entries of a document as read that its next write must keep: all of them in
        a cleared store, those not known published in a stamped one."""
        return [e for e in stored if e.id not in self._published]

    # OutboxStore

    async def pending(self, limit: int) -> list[Pending]:
        unstamped: Document = {"outbox.id": {"$exists": True}}
        if self._stamped:
            unstamped["outbox_at"] = {"$exists": False}
        cursor = self._collection.find(unstamped, {"outbox": 1}).limit(limit)
        found = [(str(doc["_id"]), _entries(doc)) async for doc in cursor]
        self._unstamped = {key for key, _ in found}
        if self._stamped and len(found) < limit:
            found += await self._stamped_since_mark(limit - len(found))
        return found

    async def entries(self, key: str) -> list[OutboxEntry]:
        doc = await self._collection.find_one({"_id": key}, {"outbox": 1})
        return self.kept(_entries(doc)) if doc else []

    async def clear(self, key: str, ids: list[str]) -> None:
        await self.clear_many({key: ids})

    async def clear_many(self, published: Mapping[str, list[str]]) -> None:
        """Published: removed from a cleared store's documents (one write each); in a
        stamped store remembered, and removed only from documents without a stamp."""
        to_clear = published
        if self._stamped:
            for ids in published.values():
                self._remember(ids)
            to_clear = {k: ids for k, ids in published.items() if k in self._unstamped}
        ops = [UpdateOne(*self._clearing(key, ids)) for key, ids in to_clear.items() if ids]
        if ops:
            await self._collection.bulk_write(ops, ordered=False)

    async def swept(self) -> None:
        """A sweep published everything `pending` returned: move the mark past it."""
        mark, self._next_mark = self._next_mark, None
        if mark is None or mark == self._mark:
            return
        at, key = mark
        later = [{"at": {"$lt": at}}, {"at": at, "key": {"$lt": key}}]
        with contextlib.suppress(DuplicateKeyError):  # another instance moved it further
            await self._marks.update_one(
                {"_id": self._collection.name, "$or": later},
                {"$set": {"at": at, "key": key}},
                upsert=True,
            )
        self._mark = mark

    # Internals

    def _remember(self, ids: Iterable[str]) -> None:
        for entry_id in ids:
            self._published[entry_id] = None
            self._published.move_to_end(entry_id)
        while len(self._published) > REMEMBERED:
            self._published.popitem(last=False)

    async def _stamped_since_mark(self, limit: int) -> list[Pending]:
        """The entries not known published of the documents stamped since the mark (in
        stamp order, then key), and the mark to move to once they are published."""
        stored = await self._marks.find_one({"_id": self._collection.name})
        since = (_aware(stored["at"]), str(stored["key"])) if stored else None
        query: Document = {"outbox_at": {"$exists": True}}
        if since is not None:
            query = {
                "$or": [
                    {"outbox_at": {"$gt": since[0]}},
                    {"outbox_at": since[0], "_id": {"$gte": since[1]}},
                ]
            }
        cursor = (
            self._collection.find(query, {"outbox.id": 1, "outbox_at": 1})
            .sort([("outbox_at", ASCENDING), ("_id", ASCENDING)])
            .limit(limit)
        )
        docs = await cursor.to_list()
        until = (self.stamp() - SWEEP_LAG, "")
        last = (_aware(docs[-1]["outbox_at"]), str(docs[-1]["_id"])) if docs else until
        mark = min(last, until) if len(docs) == limit else until
        self._mark = since
        self._next_mark = max(mark, since) if since is not None else mark
        unknown = [
            d["_id"]
            for d in docs
            if any(o.get("id") not in self._published for o in d.get("outbox") or [])
        ]
        if not unknown:
            return []
        full = self._collection.find({"_id": {"$in": unknown}}, {"outbox": 1})
        found = [(str(doc["_id"]), tuple(self.kept(_entries(doc)))) async for doc in full]
        return [(key, entries) for key, entries in found if entries]

    def _clearing(self, key: str, ids: list[str]) -> tuple[Document, Document]:
        return (
            {"_id": key, "outbox.id": {"$in": ids}},
            {"$pull": {"outbox": {"id": {"$in": ids}}}, **self._on_clear},
        )


def _aware(at: datetime) -> datetime:
    """A stored time as UTC (a client without `tz_aware` reads it naive)."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _entries(doc: Document) -> tuple[OutboxEntry, ...]:
    return read_entries(doc.get("outbox") or [])


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
        await self.store.swept()
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
