"""The stamped outbox on the real database (issue 26): published entries are remembered, not
removed by a second write; the background pass publishes, once, whatever was stamped since
its mark and is not known published (a crash between a write and its publish), pages by
stamp then key, and a document of before (no stamp) is cleared as it always was."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from ibest.backbone.outbox import (
    SWEEP_LAG,
    MongoOutbox,
    OutboxEntry,
    OutboxRelay,
    OutboxSettings,
    read_entries,
    stored_entries,
)
from shared.envelope import BY_NAME
from shared.examples import example
from tests.fakes.publisher import FakePublisher
from tests.harness import scratch_database


def entry(name: str = "outcome.recorded") -> OutboxEntry:
    return OutboxEntry.of(example(BY_NAME[name]).model_copy(update={"id": uuid.uuid4()}))


async def put(
    db: AsyncDatabase[Any], key: str, entries: list[OutboxEntry], at: datetime | None
) -> None:
    """An aggregate as its write left it: entries, stamped with `at` (None: written before
    stamps)."""
    doc: dict[str, Any] = {"_id": key, "outbox": [e.model_dump() for e in entries]}
    if at is not None:
        doc["outbox_at"] = at
    await db["patients"].insert_one(doc)


def relay(store: MongoOutbox, publisher: FakePublisher, limit: int = 10) -> OutboxRelay:
    return OutboxRelay(store, publisher, "stamped-test", OutboxSettings(interval=1, limit=limit))


async def test_what_a_crash_left_is_published_once_and_nothing_is_written_back(
    mongodb_url: str,
) -> None:
    async with scratch_database(mongodb_url, "stamped") as db:
        now = datetime.now(UTC)
        old, recent, crashed = entry(), entry(), entry()
        await put(db, "old", [old], now - timedelta(minutes=10))
        await put(db, "recent", [recent], now)
        store, publisher = MongoOutbox(db["patients"], stamped=True), FakePublisher()
        # the writer of "recent" published it; "old" and "crashed" were never published
        await relay(store, publisher).publish_many([("recent", (recent,))])
        await put(db, "crashed", [crashed], now)
        before = await db["patients"].find().sort("_id").to_list()

        assert await relay(store, publisher).relay_once() == 2
        assert {str(e.id) for e in publisher.published} == {recent.id, old.id, crashed.id}
        assert await relay(store, publisher).relay_once() == 0  # known published now
        assert await db["patients"].find().sort("_id").to_list() == before  # no write back
        assert await store.entries("crashed") == [] and await store.pending(10) == []
        mark = await db["outbox_marks"].find_one({"_id": "patients"})
        assert mark is not None and mark["at"].replace(tzinfo=UTC) <= now - SWEEP_LAG + timedelta(
            seconds=5
        )

        # Another process (nothing remembered) republishes only what is within the lag
        # of its mark: a duplicate, which the stream drops.
        again = FakePublisher()
        assert await relay(MongoOutbox(db["patients"], stamped=True), again).relay_once() == 2
        assert {str(e.id) for e in again.published} == {recent.id, crashed.id}


async def test_a_pass_pages_by_stamp_then_key(mongodb_url: str) -> None:
    async with scratch_database(mongodb_url, "stamped") as db:
        at = datetime.now(UTC) - timedelta(minutes=10)
        entries = {key: entry() for key in ("a", "b", "c")}
        for key, e in entries.items():
            await put(db, key, [e], at)  # one batch: one stamp
        store, publisher = MongoOutbox(db["patients"], stamped=True), FakePublisher()
        assert await relay(store, publisher, limit=2).relay_once() == 2
        assert await relay(store, publisher, limit=2).relay_once() == 1
        assert await relay(store, publisher, limit=2).relay_once() == 0
        assert sorted(str(e.id) for e in publisher.published) == sorted(
            e.id for e in entries.values()
        )


async def test_a_document_written_before_stamps_is_cleared(mongodb_url: str) -> None:
    async with scratch_database(mongodb_url, "stamped") as db:
        left = entry()
        await put(db, "before", [left], None)
        store, publisher = MongoOutbox(db["patients"], stamped=True), FakePublisher()
        assert await relay(store, publisher).relay_once() == 1
        doc = await db["patients"].find_one({"_id": "before"})
        assert doc is not None and doc["outbox"] == []
        assert [str(e.id) for e in publisher.published] == [left.id]


def test_a_stored_entry_is_its_body_compressed_and_either_shape_is_read() -> None:
    made = entry()
    [stored] = stored_entries([made])
    assert set(stored) == {"id", "z1"} and len(stored["z1"]) < len(made.body) * 0.3
    assert read_entries([stored, made.model_dump()]) == (made, made)
