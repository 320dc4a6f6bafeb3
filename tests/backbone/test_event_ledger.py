"""The consumers' id ledger on the real database: what it stores (a binary key and 8
bytes of digest), that the rows a deployed ledger wrote in its older shapes are still
judged alike after the upgrade, that `ibest ledger migrate` rewrites them, and that a
ledger without them never reads them again (issue 26)."""

from __future__ import annotations

import argparse
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import bson
import pytest
from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase

from ibest import registry
from ibest.backbone.ledger import (
    LEDGER_DIGEST_BYTES,
    LEDGER_ID_BYTES,
    EventLedger,
    content_digest,
    ledger_id,
    ledger_key,
    migrate_ledger,
)
from ibest.backbone.settings import Settings
from ibest.ledger_cli import migrate_command
from services.enrolment.adapters.repository import MongoClinicianRepository
from services.enrolment.domain.record import apply_event
from services.enrolment.ports import Change
from shared.catalogue import catalogue
from shared.envelope import AnyEvent, parse_event
from tests.harness import ID_KEY, cloud_event, scratch_database

ENROLLED = {"clinician_ref": "c-001", "profession": "nurse", "course_version": "1"}


def event(data: dict[str, Any], *, event_id: str, trust: str = "RTH") -> AnyEvent:
    raw = cloud_event("clinician.enrolled", data, trust=trust, site=f"{trust}08", event_id=event_id)
    return parse_event(f"ibest.v1.{trust}.clinician.enrolled", json.dumps(raw).encode())


def other(e: AnyEvent) -> AnyEvent:
    """The same trust and id, other content."""
    return event({**ENROLLED, "profession": "doctor"}, event_id=str(e.id), trust=e.trustcode)


def numbered(n: int) -> str:
    return f"0b6f7a1e-0000-4000-8000-{n:012d}"


def text_row(e: AnyEvent, shape: str) -> dict[str, Any]:
    """A row as a deployed ledger wrote it before issue 26: keyed by the text `ledger_key`,
    with 16 bytes of digest (`d`) or, older still, the hexadecimal digest and the type."""
    key = ledger_key(e.trustcode, e.id)
    if shape == "d":
        return {"_id": key, "d": bytes.fromhex(content_digest(e))[:16]}
    return {"_id": key, "digest": content_digest(e), "type": "uk.nhs.ibest.clinician.enrolled.v1"}


async def test_the_ledger_stores_a_binary_key_and_8_bytes_of_digest(mongodb_url: str) -> None:
    async with scratch_database(mongodb_url, "ledger") as db:
        ledger = EventLedger(db)
        first = event(ENROLLED, event_id=numbered(1))
        assert await ledger.conflicts([first]) == set()
        [doc] = await db["seen_events"].find().to_list()
        assert doc == {
            "_id": ledger_id("RTH", first.id),
            "d": bytes.fromhex(content_digest(first))[:LEDGER_DIGEST_BYTES],
        }
        assert len(doc["_id"]) == LEDGER_ID_BYTES == 16 and len(doc["d"]) == 8
        assert len(bson.encode(doc)) == 47  # the text-keyed shape weighed 79
        same_id_elsewhere = event(
            {**ENROLLED, "profession": "doctor"}, event_id=str(first.id), trust="RKB"
        )
        # a repeat is no conflict, other content under the id is, another trust's id is its own
        assert await ledger.conflicts([first, other(first), same_id_elsewhere]) == {1}
        assert await db["seen_events"].count_documents({}) == 2
        assert ledger_id("RTH", first.id) != ledger_id("RKB", first.id)


@pytest.mark.parametrize("shape", ["d", "digest"])
async def test_text_keyed_rows_still_catch_a_duplicate_and_a_reused_id(
    mongodb_url: str, shape: str
) -> None:
    async with scratch_database(mongodb_url, "ledger") as db:
        old = event(ENROLLED, event_id=numbered(2))
        await db["seen_events"].insert_one(text_row(old, shape))
        ledger = EventLedger(db)
        fresh = event(ENROLLED, event_id=numbered(3))
        # redelivered: no conflict; reused for other content (in the same batch or later): one
        assert await ledger.conflicts([old, fresh, other(old)]) == {2}
        assert await ledger.conflicts([other(old)]) == {0}
        assert await ledger.conflicts([old]) == set()
        # the old id is judged by its text row and not recorded twice; the new one is binary
        ids = {d["_id"] async for d in db["seen_events"].find()}
        assert ids == {ledger_key("RTH", old.id), ledger_id("RTH", fresh.id)}
        # a ledger started later (another instance, a restart) judges them alike
        assert await EventLedger(db).conflicts([other(old), old, fresh]) == {0}


async def test_migration_rewrites_text_keyed_rows_and_the_verdicts_stay(mongodb_url: str) -> None:
    async with scratch_database(mongodb_url, "ledger") as db:
        with_d, with_digest = (
            event(ENROLLED, event_id=numbered(4)),
            event(ENROLLED, event_id=numbered(5)),
        )
        await db["seen_events"].insert_many(
            [text_row(with_d, "d"), text_row(with_digest, "digest"), {"_id": numbered(6)}]
        )
        running = EventLedger(db)  # a consumer running through the migration
        assert await running.conflicts([with_d]) == set()
        done = await migrate_ledger(db, batch=2)
        assert (done.rewritten, done.dropped, done.unreadable) == (2, 1, 0)
        assert {d["_id"] async for d in db["seen_events"].find()} == {
            ledger_id("RTH", with_d.id),
            ledger_id("RTH", with_digest.id),
        }
        for ledger in (running, EventLedger(db)):
            assert await ledger.conflicts(
                [with_d, other(with_d), with_digest, other(with_digest)]
            ) == {1, 3}
        again = await migrate_ledger(db)
        assert (again.rewritten, again.dropped) == (0, 0)


async def test_the_migration_command_covers_every_consuming_service(
    mongodb_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(MONGODB_URL=mongodb_url, db_prefix=f"t{uuid.uuid4().hex[:10]}")
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongodb_url)
    old = event(ENROLLED, event_id=numbered(7))
    try:
        for name in registry.consumers():
            await client[settings.database_of(name)]["seen_events"].insert_one(text_row(old, "d"))
        code = await migrate_command(argparse.Namespace(service=None), settings)
        assert code == 0
        out = capsys.readouterr().out
        for name in registry.consumers():
            assert f"{name}: 1 row(s) rewritten" in out
            rows = await client[settings.database_of(name)]["seen_events"].find().to_list()
            assert [r["_id"] for r in rows] == [ledger_id("RTH", old.id)]
    finally:
        for name in registry.consumers():
            await client.drop_database(settings.database_of(name))
        await client.close()


class Finds(monitoring.CommandListener):
    """Counts the reads of `seen_events`."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find" and event.command.get("find") == "seen_events":
            self.counts["find"] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@asynccontextmanager
async def counted(mongodb_url: str) -> AsyncIterator[tuple[AsyncDatabase[Any], Finds]]:
    finds = Finds()
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongodb_url, event_listeners=[finds])
    name = f"t{uuid.uuid4().hex[:10]}_ledger"
    try:
        yield client[name], finds
    finally:
        await client.drop_database(name)
        await client.close()


async def test_a_ledger_without_text_keyed_rows_reads_nothing_for_fresh_batches(
    mongodb_url: str,
) -> None:
    async with counted(mongodb_url) as (db, finds):
        ledger = EventLedger(db)
        for n in range(3):
            assert await ledger.conflicts([event(ENROLLED, event_id=numbered(10 + n))]) == set()
        assert finds.counts["find"] == 1  # the one look for text-keyed rows, at the start
    async with counted(mongodb_url) as (db, finds):
        await db["seen_events"].insert_one(text_row(event(ENROLLED, event_id=numbered(20)), "d"))
        ledger = EventLedger(db)
        for n in range(3):
            assert await ledger.conflicts([event(ENROLLED, event_id=numbered(21 + n))]) == set()
        assert finds.counts["find"] == 1 + 3  # while they exist, one read of them per batch


async def test_unledgered_events_are_neither_recorded_nor_judged(mongodb_url: str) -> None:
    async with scratch_database(mongodb_url, "ledger") as db:
        ledger = EventLedger(db, unledgered=["module.started"])
        module = parse_event(
            "ibest.v1.RTH.module.started",
            json.dumps(
                cloud_event(
                    "module.started",
                    {"clinician_ref": "c-001", "module_id": "m01-understanding-back-pain"},
                    event_id=numbered(30),
                )
            ).encode(),
        )
        enrolled = event(ENROLLED, event_id=numbered(31))
        assert await ledger.conflicts([module, enrolled, other(enrolled), module]) == {2}
        assert [d["_id"] async for d in db["seen_events"].find()] == [ledger_id("RTH", enrolled.id)]


async def test_erasing_a_record_removes_its_ids_in_every_ledger_shape(mongodb_url: str) -> None:
    async with scratch_database(mongodb_url, "enrolment") as db:
        repo = MongoClinicianRepository(db)
        enrolled = event(ENROLLED, event_id=numbered(40))
        applied = apply_event(None, enrolled, catalogue(), id_key=ID_KEY)
        await repo.save_many([Change(applied.record, applied.state, None)])
        kept = event({**ENROLLED, "clinician_ref": "c-002"}, event_id=numbered(41))
        await EventLedger(db).conflicts([enrolled, kept])
        # the same id as a deployed ledger may also hold it: text-keyed, and bare (older still)
        await db["seen_events"].insert_many([text_row(enrolled, "d"), {"_id": str(enrolled.id)}])
        erasure = await repo.erase("c-001", record=True)
        assert erasure.record_removed and erasure.seen_events_removed == 3
        assert [d["_id"] async for d in db["seen_events"].find()] == [ledger_id("RTH", kept.id)]


def test_a_service_leaves_out_of_its_ledger_only_events_it_consumes() -> None:
    for service in registry.SERVICES:
        assert set(service.unledgered) <= set(service.consumes), service.name
    # what the declarations say today (issue 26): derived events, and notifications' module
    # events (they only move a minimum and a maximum there)
    derived = set(registry.derived_events())
    assert {n for s in registry.SERVICES for n in s.unledgered} - derived == {
        "module.started",
        "module.completed",
    }
    assert registry.declaration("notifications").unledgered
