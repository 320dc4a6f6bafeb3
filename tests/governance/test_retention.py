"""Retention enforced by the platform, over the real database and real NATS: records past
their retention are removed and nothing younger is. Purges take `now`, so time is moved
by argument rather than waited for."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nats.js import JetStreamContext
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from ibest.backbone.clock import utc_now
from ibest.backbone.settings import Settings
from ibest.backbone.streams import (
    DEADLETTER_PREFIX,
    DEADLETTER_STREAM,
    EVENTS_STREAM,
    ensure_streams,
    stored_until_now,
    stream_configs,
)
from ibest.registry import consumers
from services.enrolment import bootstrap
from services.enrolment.application import EnrolmentService
from services.enrolment.cli import retention_command
from services.enrolment.service import build_spec
from services.enrolment.settings import EnrolmentSettings
from services.notifications.adapters.repository import MongoNotificationsRepository
from services.notifications.application import purge_expired_records
from services.notifications.service import SPEC as NOTIFICATIONS
from services.notifications.settings import NotificationSettings
from shared.envelope import parse_event
from tests.fakes.publisher import FakePublisher
from tests.harness import ID_KEY, cloud_event, publish_raw, running_service, wait_for

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
Db = AsyncDatabase[dict[str, Any]]


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    c: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_url, tz_aware=True)
    yield c
    await c.close()


def enrolment_service(
    client: AsyncMongoClient[dict[str, Any]],
    settings: Settings,
    own: EnrolmentSettings | None = None,
) -> EnrolmentService:
    """The enrolment use cases over the real database (derived events to a fake stream)."""
    return bootstrap.build(
        own or EnrolmentSettings(),
        client[settings.database_of("enrolment")],
        FakePublisher(),
        ID_KEY,
    ).service


def enrolment(ref: str, when: datetime, email: str | None) -> Any:
    data: dict[str, Any] = {"clinician_ref": ref, "profession": "nurse", "course_version": "1"}
    if email:
        data["contact_email"] = email
    return parse_event(
        None, json.dumps(cloud_event("clinician.enrolled", data, time=when)).encode()
    )


async def test_contact_emails_are_erased_after_retention_and_no_sooner(
    settings: Settings, client: AsyncMongoClient[dict[str, Any]]
) -> None:
    own = EnrolmentSettings()
    assert own.contact_retention == timedelta(days=450)  # the documented default
    repo = enrolment_service(client, settings, own)
    retention = own.contact_retention
    await repo.apply_many([enrolment("c-old", NOW - retention - timedelta(days=1), "old@nhs.net")])
    # Enrolled long ago but active since (a later enrolment without an email): kept.
    await repo.apply_many(
        [enrolment("c-active", NOW - retention - timedelta(days=30), "a@nhs.net")]
    )
    await repo.apply_many([enrolment("c-active", NOW - timedelta(days=10), None)])
    await repo.apply_many([enrolment("c-young", NOW - retention + timedelta(hours=1), "y@nhs.net")])

    assert await repo.erase_expired_contacts(NOW, retention) == 1
    assert await repo.contact("c-old") == (True, None)
    assert await repo.contact("c-active") == (True, "a@nhs.net")
    assert await repo.contact("c-young") == (True, "y@nhs.net")
    state = await repo.clinician("c-old")
    assert state is not None  # only the email goes; the pseudonymous record stays
    assert await repo.erase_expired_contacts(NOW, retention) == 0  # idempotent
    # An hour later the young one is past its period too.
    assert await repo.erase_expired_contacts(NOW + timedelta(hours=1), retention) == 1
    assert await repo.contact("c-young") == (True, None)


async def test_the_retention_command_also_redacts_the_streams_of_expired_emails(
    settings: Settings,
    js: JetStreamContext,
    client: AsyncMongoClient[dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo = enrolment_service(client, settings)
    now = utc_now()
    raw = {
        ref: cloud_event(
            "clinician.enrolled",
            {
                "clinician_ref": ref,
                "profession": "nurse",
                "course_version": "1",
                "contact_email": f"{ref}@nhs.net",
            },
            time=when,
        )
        for ref, when in (
            ("c-expired", now - timedelta(days=500)),
            ("c-current", now - timedelta(days=10)),
        )
    }
    for event in raw.values():
        assert await publish_raw(js, event)
        await repo.apply_many([parse_event(None, json.dumps(event).encode())])

    assert await retention_command(argparse.Namespace(from_stream=True), settings) == 0
    assert "1 erased from the enrolment database" in capsys.readouterr().out
    assert await repo.contact("c-expired") == (True, None)
    assert await repo.contact("c-current") == (True, "c-current@nhs.net")
    stored = [
        json.loads(m.data)
        async for m in stored_until_now(js, EVENTS_STREAM, "ibest.v1.*.clinician.enrolled", 5)
    ]
    emails = {e["data"]["clinician_ref"]: e["data"].get("contact_email") for e in stored}
    assert emails == {"c-expired": None, "c-current": "c-current@nhs.net"}
    assert len(stored) == 2  # the original carrying the expired email is gone
    assert {e["id"] for e in stored} != {e["id"] for e in raw.values()}
    [audited] = (
        await client[settings.database_of("audit")]["records"]
        .find({"action": "erasure", "command": "ibest enrolment retention"})
        .to_list()
    )
    assert audited["retention_days"] == 450 and audited["from_stream"] is True


async def test_notification_records_past_retention_are_purged_and_no_younger(
    settings: Settings, client: AsyncMongoClient[dict[str, Any]]
) -> None:
    own = NotificationSettings()
    retention = own.record_retention
    assert retention == timedelta(days=90)  # the documented default
    db: Db = client[settings.database_of("notifications")]
    repo = MongoNotificationsRepository(db)
    await repo.ensure_indexes()
    old, young = NOW - retention - timedelta(days=1), NOW - retention + timedelta(hours=1)
    await db["reminders"].insert_many(
        [
            {
                "_id": "site:RTH08:old",
                "family": "follow_up",
                "status": "sent",
                "published": True,
                "created_at": old,
                "finished_at": old,
            },
            {
                "_id": "training_thanks:c-1:1",
                "family": "thanks",
                "status": "failed",
                "published": True,
                "created_at": old,
                "finished_at": old,
            },
            {
                "_id": "site:RTH08:cancelled",
                "family": "follow_up",
                "status": "cancelled",
                "published": False,
                "created_at": old,
            },
            # Kept: young, not yet published, still pending, and training nudges (the cap).
            {
                "_id": "site:RTH08:young",
                "family": "follow_up",
                "status": "sent",
                "published": True,
                "created_at": young,
                "finished_at": young,
            },
            {
                "_id": "site:RTH08:unpublished",
                "family": "follow_up",
                "status": "sent",
                "published": False,
                "created_at": old,
                "finished_at": old,
            },
            {
                "_id": "site:RTH08:pending",
                "family": "follow_up",
                "status": "pending",
                "published": False,
                "created_at": old,
                "send_after": old,
            },
            {
                "_id": "training:c-1:1",
                "family": "training",
                "status": "sent",
                "published": True,
                "created_at": old,
                "finished_at": old,
            },
        ]
    )
    await db["delivery_statuses"].insert_many(
        [
            {
                "_id": "n-old",
                "reference": "site:RTH08:old",
                "status": "delivered",
                "received_at": old,
            },
            {
                "_id": "n-young",
                "reference": "site:RTH08:young",
                "status": "delivered",
                "received_at": young,
            },
        ]
    )
    closed_long_ago = (old - timedelta(days=1)).date().isoformat()
    closed_recently = (NOW - timedelta(days=3)).date().isoformat()
    await db["follow_up_items"].insert_many(
        [
            {
                "_id": "follow_up_due:RTH:p-1:month_3",
                "status": "notified",
                "closes": closed_long_ago,
            },
            {
                "_id": "follow_up_due:RTH:p-2:month_3",
                "status": "cancelled",
                "closes": closed_recently,
            },
            {
                "_id": "follow_up_due:RTH:p-3:month_3",
                "status": "pending",
                "closes": closed_long_ago,
            },
        ]
    )

    assert await purge_expired_records(repo, own, NOW) == 5
    assert sorted(await db["reminders"].distinct("_id")) == [
        "site:RTH08:pending",
        "site:RTH08:unpublished",
        "site:RTH08:young",
        "training:c-1:1",
    ]
    assert await db["delivery_statuses"].distinct("_id") == ["n-young"]
    assert sorted(await db["follow_up_items"].distinct("_id")) == [
        "follow_up_due:RTH:p-2:month_3",
        "follow_up_due:RTH:p-3:month_3",
    ]
    assert await purge_expired_records(repo, own, NOW) == 0


def test_notification_retention_never_shorter_than_thanks_replay_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IBEST_NOTIFY_RECORD_RETENTION_DAYS", "10")
    with pytest.raises(ValueError, match="IBEST_NOTIFY_RECORD_RETENTION_DAYS must be at least"):
        NotificationSettings()


@pytest.mark.slow
async def test_dead_letters_expire_after_max_age_and_younger_ones_stay(
    settings: Settings, js: JetStreamContext
) -> None:
    assert Settings().deadletter_max_age_days == 90  # the documented default
    [_, deadletters] = stream_configs(settings)
    assert deadletters.max_age == 90 * 86400
    short = settings.model_copy(update={"deadletter_max_age_days": 3 / 86400})  # 3 seconds
    await ensure_streams(js, short, consumers())
    info = await js.stream_info(DEADLETTER_STREAM)
    assert info.config.max_age == pytest.approx(3.0)
    subject = f"{DEADLETTER_PREFIX}.governance-test"
    first = time.monotonic()
    await js.publish(subject, b"old", headers={"Nats-Msg-Id": "dl-old"})

    async def spaced() -> bool:  # the second letter is 2 s younger than the first
        return time.monotonic() - first >= 2.0

    await wait_for(spaced, 5, "two seconds between the letters")
    await js.publish(subject, b"young", headers={"Nats-Msg-Id": "dl-young"})

    async def old_gone() -> bool:
        state = (await js.stream_info(DEADLETTER_STREAM)).state
        return state.first_seq == 2 and state.messages == 1

    await wait_for(old_gone, 10, "the old dead letter removed by max_age")
    assert (await js.get_msg(DEADLETTER_STREAM, 2)).data == b"young"


async def test_running_services_enforce_retention_on_their_own_clock(
    settings: Settings,
    js: JetStreamContext,
    client: AsyncMongoClient[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The background loops are wired: the enrolment service erases an expired email it
    consumed, the notifications service purges an old receipt, each judged by its clock."""
    monkeypatch.setenv("IBEST_NOTIFY_RETENTION_INTERVAL", "0.2")
    old = cloud_event(
        "clinician.enrolled",
        {
            "clinician_ref": "c-old",
            "profession": "nurse",
            "course_version": "1",
            "contact_email": "old@nhs.net",
        },
        time=NOW - timedelta(days=451),
    )
    young = cloud_event(
        "clinician.enrolled",
        {
            "clinician_ref": "c-young",
            "profession": "nurse",
            "course_version": "1",
            "contact_email": "young@nhs.net",
        },
        time=NOW - timedelta(days=449),
    )
    for event in (old, young):
        assert await publish_raw(js, event)
    receipts = client[settings.database_of("notifications")]["delivery_statuses"]
    await receipts.insert_many(
        [
            {"_id": "n-old", "status": "delivered", "received_at": NOW - timedelta(days=91)},
            {"_id": "n-young", "status": "delivered", "received_at": NOW - timedelta(days=89)},
        ]
    )
    repo = enrolment_service(client, settings)
    enrolment = build_spec(EnrolmentSettings(retention_interval=0.2))
    async with (
        running_service(enrolment, settings, lambda: NOW),
        running_service(NOTIFICATIONS, settings, lambda: NOW),
    ):

        async def purged() -> bool:
            return await repo.contact("c-old") == (True, None) and await receipts.distinct(
                "_id"
            ) == ["n-young"]

        await wait_for(purged, 20, "the old email erased and the old receipt purged")
        assert await repo.contact("c-young") == (True, "young@nhs.net")
    doc = await client[settings.database_of("enrolment")]["clinicians"].find_one({"_id": "c-old"})
    assert doc is not None and doc["contact"]["erased"] is True  # stored, then erased
