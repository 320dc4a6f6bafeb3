"""The notifications repository port, held to one contract: every assertion here runs
against the in-memory fake (tests/fakes/notifications.py) and against the MongoDB adapter
on the real database, so the fake-based use-case tests (test_application.py) prove what
the service does (the pattern of tests/reporting/test_store.py). It covers the reminder's
life (created once, claimed under a lease, finished by its owner, queued for publishing),
clinicians (first enrolment, latest place, opt-out), collected follow-ups and delivery
statuses."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from ibest.backbone.document import Document
from services.notifications.adapters.repository import MongoNotificationsRepository
from services.notifications.domain.status import PENDING, SENDING, SENT
from services.notifications.ports import NotificationsRepository
from tests.fakes.notifications import FakeNotificationsRepository

T0 = datetime(2026, 2, 2, 10, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


@pytest.fixture(params=["fake", "mongo"])
async def repo(request: pytest.FixtureRequest, mongodb_url: str) -> AsyncIterator[Any]:
    if request.param == "fake":
        yield FakeNotificationsRepository()
        return
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_url, tz_aware=True)
    name = f"t{uuid.uuid4().hex[:10]}_notifications"
    real = MongoNotificationsRepository(client[name])
    await real.ensure_indexes()
    try:
        yield real
    finally:
        await client.drop_database(name)
        await client.close()


def fields(minutes: int, ref: str = "c1") -> Document:
    return {
        "kind": "training_start",
        "clinician_ref": ref,
        "send_after": T0 + timedelta(minutes=minutes),
    }


async def test_a_reminder_is_created_once_and_claimed_by_one_owner_at_a_time(
    repo: NotificationsRepository,
) -> None:
    assert await repo.create_reminder("r1", fields(0)) is True
    assert await repo.create_reminder("r1", fields(30)) is False  # kept as first created
    assert await repo.create_reminder("r2", fields(60)) is True
    stored = await repo.reminder("r1")
    assert stored is not None and stored["status"] == PENDING
    assert stored["send_after"] == T0

    claimed = await repo.claim(T0, "a", LEASE)
    assert claimed is not None and claimed["_id"] == "r1" and claimed["status"] == SENDING
    assert await repo.claim(T0 + timedelta(minutes=1), "b", LEASE) is None  # r1 leased, r2 not due
    again = await repo.claim(T0 + LEASE + timedelta(seconds=1), "b", LEASE)  # a's lease ran out
    assert again is not None and again["_id"] == "r1"

    await repo.finish("r1", "a", {"status": SENT, "published": False})  # a no longer owns it
    r1 = await repo.reminder("r1")
    assert r1 is not None and r1["status"] == SENDING and r1["owner"] == "b"
    await repo.finish("r1", "b", {"status": SENT, "published": False})
    r1 = await repo.reminder("r1")
    assert r1 is not None and r1["status"] == SENT
    assert [r["_id"] for r in await repo.finished_before_outbox()] == ["r1"]
    await repo.queue_event("r1", [{"id": "e1", "name": "notification.sent", "body": "{}"}])
    assert await repo.finished_before_outbox() == []
    assert [e.id for e in await repo.outbox.entries("r1")] == ["e1"]
    assert await repo.reminder("r9") is None


async def test_a_clinician_keeps_the_first_enrolment_the_latest_place_and_the_opt_out(
    repo: NotificationsRepository,
) -> None:
    await repo.record_enrolment("c1", "RTH", "RTH08", T0 + timedelta(days=2), "e1")
    await repo.record_enrolment("c1", "RNU", "RNU01", T0, "e2")  # earlier: first, not latest
    await repo.record_enrolment("c2", "RTH", "RTH08", T0, "e3")
    doc = await repo.clinician("c1")
    assert doc is not None
    assert doc["enrolled_at"] == T0
    assert (doc["trustcode"], doc["sitecode"]) == ("RTH", "RTH08")
    assert await repo.clinician("c9") is None
    await repo.set_opt_out("c2", True, T0)
    assert [d["_id"] async for d in repo.active_clinicians()] == ["c1"]
    await repo.set_opt_out("c2", False, T0 + timedelta(hours=1))
    assert sorted([d["_id"] async for d in repo.active_clinicians()]) == ["c1", "c2"]


async def test_collected_follow_ups_are_kept_per_patient(repo: NotificationsRepository) -> None:
    await repo.record_baseline("RTH", "p1", "RTH08", T0, "b1")
    await repo.record_collected("RTH", "p1", "month_3")
    await repo.record_collected("RTH", "p1", "month_3")
    assert await repo.collected("RTH", "p1") == {"month_3"}
    assert await repo.collected("RTH", "p2") == set()
    assert await repo.collected("RNU", "p1") == set()


async def test_a_delivery_status_is_kept_and_linked_to_its_reminder(
    repo: NotificationsRepository,
) -> None:
    await repo.create_reminder("r1", fields(0))
    status = {"id": "n1", "status": "delivered", "reference": "r1"}
    assert await repo.record_delivery(status, T0) is True
    assert await repo.record_delivery({"id": "n2", "status": "delivered"}, T0) is False
    assert await repo.record_delivery({**status, "reference": "r9"}, T0) is False
    r1 = await repo.reminder("r1")
    assert r1 is not None and r1["delivery_status"] == "delivered"
    assert r1["provider_ids"] == ["n1"]
