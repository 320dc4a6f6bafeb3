"""A reminder an older version finished but had not published (it kept a `published` flag
and built the event at publish time) is published after the upgrade, with the same id."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from ibest.backbone.audit import AuditLog
from ibest.backbone.document import Document
from services.notifications import bootstrap
from services.notifications.domain.ids import notification_event_id
from tests.fakes.notifications import FakeChannel, FakeContacts
from tests.fakes.publisher import FakePublisher
from tests.harness import ID_KEY
from tests.notifications.conftest import FakeClock
from tests.notifications.test_application import SETTINGS
from tests.notifications.test_batch import NOW, day


def left_by_an_older_version(rid: str, published: bool) -> Document:
    return {
        "_id": rid,
        "family": "training",
        "kind": "training_start",
        "number": 1,
        "recipient_kind": "clinician",
        "recipient_ref": "c-1",
        "trustcode": "RTH",
        "sitecode": "RTH08",
        "due_at": day(2),
        "send_after": day(2),
        "created_at": day(2),
        "status": "sent",
        "attempts": 0,
        "published": published,
        "lease_until": None,
        "finished_at": day(1),
        "sent_at": day(1),
        "reason": "",
        "channel": "smtp",
        "template_id": "training_start",
    }


@pytest.fixture
async def db(mongodb_url: str) -> AsyncIterator[AsyncDatabase[Document]]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_url, tz_aware=True)
    name = f"t{uuid.uuid4().hex[:10]}_notifications"
    yield client[name]
    await client.drop_database(name)
    await client.close()


async def test_an_unpublished_finished_reminder_is_published_once_after_the_upgrade(
    db: AsyncDatabase[Document],
) -> None:
    await db["reminders"].insert_many(
        [
            left_by_an_older_version("training:c-1:1", False),
            left_by_an_older_version("training:c-2:1", True),
        ]
    )
    clock = FakeClock(NOW)
    built = bootstrap.build(SETTINGS, db, clock, audit=AuditLog(db.client[f"{db.name}_audit"]))
    await built.repository.ensure_indexes()
    publisher = FakePublisher()
    scheduler = built.scheduler(FakeContacts(), publisher, ID_KEY, FakeChannel())
    assert await scheduler.queue_events_finished_before_outbox() == 1
    assert await scheduler.queue_events_finished_before_outbox() == 0  # a restart
    await scheduler.run_once()
    [event] = publisher.published
    assert event.id == notification_event_id(ID_KEY, "training:c-1:1", "sent")
    assert event.data.sent_at == day(1) and event.time == day(1)
    stored = await db["reminders"].find_one({"_id": "training:c-1:1"})
    assert stored is not None and stored["outbox"] == [] and "published" not in stored
    assert await scheduler.queue_events_finished_before_outbox() == 0
