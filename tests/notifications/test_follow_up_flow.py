"""Site-team follow-up digests end to end, and two instances sharing one schedule."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nats.js import JetStreamContext

from ibest.backbone.runtime import ServiceSpec
from ibest.backbone.settings import Settings
from tests.harness import cloud_event, publish_raw, running_service, wait_for
from tests.mailbox import Mailbox
from tests.notifications.conftest import (
    Contacts,
    FakeClock,
    Published,
    now_true,
    passed,
    reminder,
    stored,
)

BASELINE = datetime(2025, 1, 6, 11, tzinfo=UTC)  # Monday 6 January
M3_DUE = BASELINE + timedelta(days=91)  # Monday 7 April
TEAM8, TEAM9 = "rth08-team@example.nhs.uk", "rth09-team@example.nhs.uk"


def assessed(patient: str, timepoint: str, when: datetime, site: str = "RTH08") -> dict[str, Any]:
    return cloud_event(
        "patient.assessed",
        {"patient_ref": patient, "timepoint": timepoint, "measures": {"rmdq": 12}},
        site=site,
        time=when,
    )


@pytest.mark.slow
async def test_one_digest_per_site_per_day_then_closing_reminder_unless_collected(
    nsettings: Settings,
    js: JetStreamContext,
    smtp_env: Mailbox,
    service: ServiceSpec,
    published: Published,
) -> None:
    for patient, site in (("p-a", "RTH08"), ("p-b", "RTH08"), ("p-c", "RTH09")):
        event = assessed(patient, "baseline", BASELINE, site)
        await publish_raw(js, event)
        await publish_raw(js, event, msg_id=f"again-{patient}")  # redelivered
    clock = FakeClock(M3_DUE - timedelta(days=1))  # Sunday before: nothing due
    async with running_service(service, nsettings, clock) as base:
        await wait_for(lambda: _items(nsettings, 12), 30, "follow-up items stored")
        await wait_for(lambda: passed(base, clock), 30, "a pass the day before")
        assert smtp_env.messages == []
        clock.set(M3_DUE.replace(hour=6, minute=59))  # 07:59 BST on the due date: waits
        await wait_for(lambda: passed(base, clock), 30, "a pass before hours")
        assert smtp_env.messages == []
        clock.set(M3_DUE.replace(hour=7, minute=0))  # 08:00 BST
        await wait_for(lambda: now_true(len(published.of("sent")) == 2), 30, "two digests")
        [rth08] = smtp_env.to(TEAM8)
        assert rth08["X-IBeST-Reference"] == "site:RTH08:2025-04-07"
        body = rth08.get_payload()
        assert "p-a" in body and "p-b" in body and "p-c" not in body
        assert "3-month follow-up due 2025-04-07" in body
        [rth09] = smtp_env.to(TEAM9)
        assert "p-c" in rth09.get_payload()
        sent = {e["data"]["notification_id"]: e for e in published.of("sent")}
        assert sent["site:RTH08:2025-04-07"]["data"]["recipient_kind"] == "site_team"
        assert sent["site:RTH08:2025-04-07"]["data"]["recipient_ref"] == "RTH08"
        assert sent["site:RTH08:2025-04-07"]["sitecode"] == "RTH08"
        assert sent["site:RTH09:2025-04-07"]["data"]["kind"] == "follow_up_due"

        # p-a's month 3 arrives (from any site); p-b's does not
        await publish_raw(js, assessed("p-a", "month_3", M3_DUE + timedelta(days=3), "RTH09"))
        await wait_for(lambda: _cancelled(nsettings, "p-a"), 30, "p-a's reminders cancelled")
        closing_day = M3_DUE + timedelta(days=42 - 14)  # Monday 5 May
        clock.set(closing_day.replace(hour=9))
        await wait_for(lambda: now_true(len(published.of("sent")) == 4), 30, "closing digests")
        later = smtp_env.to(TEAM8)[1]
        assert later["X-IBeST-Reference"] == "site:RTH08:2025-05-05"
        assert "p-b" in later.get_payload() and "p-a" not in later.get_payload()
        assert "window closes 2025-05-19" in later.get_payload()
        doc = await reminder(base, "site:RTH08:2025-05-05")
        assert doc is not None and doc["kind"] == "follow_up_closing"
        clock.advance(hours=2)
        await wait_for(lambda: passed(base, clock), 30, "a later pass the same day")
    assert len(smtp_env.messages) == 4  # one per site per day, nothing twice


@pytest.mark.slow
async def test_two_instances_redelivery_no_duplicates(
    nsettings: Settings,
    js: JetStreamContext,
    smtp_env: Mailbox,
    service: ServiceSpec,
    contacts: Contacts,
    published: Published,
) -> None:
    enrolled_at = datetime(2025, 3, 3, 9, tzinfo=UTC)
    refs = [f"c-{i:02d}" for i in range(12)]
    for ref in refs:
        contacts.emails[ref] = f"{ref}@example.nhs.uk"
        event = cloud_event(
            "clinician.enrolled",
            {"clinician_ref": ref, "profession": "nurse", "course_version": "1"},
            time=enrolled_at,
        )
        await publish_raw(js, event)
        await publish_raw(js, event, msg_id=f"dup-{ref}")
    for i in range(6):
        await publish_raw(js, assessed(f"p-{i}", "baseline", BASELINE))
    clock = FakeClock(enrolled_at)
    async with (
        running_service(service, nsettings, clock) as one,
        running_service(service, nsettings, clock) as two,
    ):
        await wait_for(lambda: _items(nsettings, 24), 30, "items stored")
        clock.set(M3_DUE.replace(hour=9))  # both the training and the follow-up rules fire
        await wait_for(lambda: now_true(len(published.of("sent")) == 13), 45, "13 sent")
        await wait_for(lambda: _both_passed(one, two, clock), 30, "both passed")
        found = await asyncio.gather(*(reminder(two, f"training:{r}:1") for r in refs))
        docs = [d for d in found if d is not None]
        assert len(docs) == len(refs), "every reminder is stored"
        assert {(d["status"], d["claims"]) for d in docs} == {("sent", 1)}  # claimed once
    assert sorted(smtp_env.references()) == sorted(
        [f"training:{r}:1" for r in refs] + ["site:RTH08:2025-04-07"]
    )
    digest = smtp_env.to(TEAM8)[0].get_payload()
    assert all(f"p-{i}" in digest for i in range(6))


async def _both_passed(one: str, two: str, clock: FakeClock) -> bool:
    return await passed(one, clock) and await passed(two, clock)


async def _items(settings: Settings, n: int) -> bool:
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_url)
    try:
        db = client[settings.database_of("notifications")]
        return await db["follow_up_items"].count_documents({}) >= n
    finally:
        await client.close()


async def _cancelled(settings: Settings, patient: str) -> bool:
    doc = await stored(settings, "follow_up_items", f"follow_up_closing:RTH:{patient}:month_3")
    return bool(doc and doc["status"] == "cancelled")
