"""Upgrades in place: a reminder an older version finished but had not published (it kept a
`published` flag and built the event at publish time) is published after the upgrade, with
the same id; clinicians and patients stored in the shapes before issue 26 are read and
ordered as before."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from ibest.backbone.audit import AuditLog
from ibest.backbone.document import Document
from services.notifications import bootstrap
from services.notifications.domain.batch import latest_key
from services.notifications.domain.ids import notification_event_id
from tests.fakes.notifications import FakeChannel, FakeContacts
from tests.fakes.publisher import FakePublisher
from tests.harness import ID_KEY
from tests.notifications.conftest import FakeClock
from tests.notifications.test_application import SETTINGS
from tests.notifications.test_batch import BASELINE, NOW, assessed, clinician, day


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


async def test_clinicians_and_patients_stored_before_issue_26_are_ordered_and_read_alike(
    db: AsyncDatabase[Document],
) -> None:
    """Issue 26: the "latest" writes carry one ordering key and no copy of what the `_id`
    or the key says. Documents of both older shapes are read and ordered as before: one
    with a time and no key (before keys) gets the key its time says at start-up, so an
    earlier event still loses and an equal-time or later one still wins; one with a key
    and the copies (trust, reference, time) is read from the key and `_id`."""
    when = day(30)
    before_keys = [
        {"_id": "c-old", "trustcode": "RTH", "sitecode": "RTH08", "latest_enrolment_at": when},
        {"_id": "c-tie", "trustcode": "RTH", "sitecode": "RTH08", "latest_enrolment_at": when},
    ]
    with_copies = {
        "_id": "c-copy",
        "trustcode": "RTH",
        "sitecode": "RTH08",
        "latest_enrolment_at": when,
        "latest_enrolment": latest_key(when, "RTH", "e-0"),
        "opted_out": False,
    }
    await db["clinicians"].insert_many([*before_keys, with_copies])
    patients = [
        {"_id": f"RTH:{ref}", "trustcode": "RTH", "patient_ref": ref, "sitecode": "RTH08"}
        | {"baseline_time": BASELINE}
        for ref in ("p-old", "p-tie", "p-later")
    ]
    patients[2]["latest_baseline"] = latest_key(BASELINE, "RTH", "b-0")
    await db["patients"].insert_many(patients)
    built = bootstrap.build(
        SETTINGS, db, FakeClock(NOW), audit=AuditLog(db.client[f"{db.name}_audit"])
    )
    await built.repository.ensure_indexes()
    await built.repository.ensure_indexes()  # a restart: nothing left to order
    await built.service.apply_many(
        [
            clinician("clinician.enrolled", "c-old", when - timedelta(minutes=1), "RTH09"),
            clinician("clinician.enrolled", "c-tie", when, "RTH09"),
            clinician("clinician.enrolled", "c-copy", when + timedelta(minutes=1), "RTH09"),
            assessed("p-old", "baseline", BASELINE - timedelta(days=1), "RTH09"),
            assessed("p-tie", "baseline", BASELINE, "RTH09"),
            assessed("p-later", "baseline", BASELINE + timedelta(days=1), "RTH09"),
        ]
    )
    sites = {d["_id"]: d["sitecode"] async for d in db["clinicians"].find()}
    assert sites == {"c-old": "RTH08", "c-tie": "RTH09", "c-copy": "RTH09"}
    sites = {d["_id"]: d["sitecode"] async for d in db["patients"].find()}
    assert sites == {"RTH:p-old": "RTH08", "RTH:p-tie": "RTH09", "RTH:p-later": "RTH09"}
    # Each patient's follow-up items come from the baseline that won, read from either shape.
    due = {
        d["patient_ref"]: d["due"]
        async for d in db["follow_up_items"].find(
            {"kind": "follow_up_due", "timepoint": "month_12"}
        )
    }
    assert due == {
        "p-old": (BASELINE.date() + timedelta(days=364)).isoformat(),
        "p-tie": (BASELINE.date() + timedelta(days=364)).isoformat(),
        "p-later": (BASELINE.date() + timedelta(days=365)).isoformat(),
    }
    refs = sorted([ref async for where, _, ref in built.repository.patient_refs.stored()])
    assert refs == sorted(["p-old", "p-tie", "p-later", *(["p-old", "p-tie", "p-later"] * 4)])
