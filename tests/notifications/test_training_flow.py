"""Training nudges end to end: real NATS, the real database, a real SMTP server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from nats.js import JetStreamContext

from ibest.backbone.runtime import ServiceSpec
from ibest.backbone.settings import Settings
from tests.harness import SERVICE_AUTH, cloud_event, publish_raw, running_service, wait_for
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

FRIDAY_NIGHT = datetime(2025, 2, 28, 20, 0, tzinfo=UTC)
EMAIL = "c-1@example.nhs.uk"


def _sent(published: Published, notification_id: str) -> Callable[[], Awaitable[Any]]:
    """A wait_for check: the `notification.sent` events of one reminder."""

    async def check() -> list[dict[str, Any]]:
        return published.of("sent", notification_id)

    return check


def enrolled(ref: str, when: datetime, site: str = "RTH08") -> dict[str, Any]:
    return cloud_event(
        "clinician.enrolled",
        {
            "clinician_ref": ref,
            "profession": "physiotherapist",
            "course_version": "1",
            "contact_email": f"{ref}@example.nhs.uk",
        },
        site=site,
        time=when,
    )


@pytest.mark.slow
async def test_start_continue_and_thanks_each_once_in_working_hours(
    nsettings: Settings,
    js: JetStreamContext,
    smtp_env: Mailbox,
    service: ServiceSpec,
    contacts: Contacts,
    published: Published,
) -> None:
    contacts.emails["c-1"] = EMAIL
    clock = FakeClock(FRIDAY_NIGHT + timedelta(days=1))  # Saturday: not yet due
    first = enrolled("c-1", FRIDAY_NIGHT)
    await publish_raw(js, first)
    # a later re-enrolment at another site: the latest decides where outcomes count
    await publish_raw(js, enrolled("c-1", FRIDAY_NIGHT + timedelta(hours=1), site="RTH09"))
    async with running_service(service, nsettings, clock) as base:
        await wait_for(lambda: _clinician_at(nsettings, "RTH09"), 30, "enrolment stored")
        clock.set(datetime(2025, 3, 8, 12, tzinfo=UTC))  # Saturday after it fell due
        doc = await wait_for(lambda: reminder(base, "training:c-1:1"), 30, "reminder planned")
        assert doc["status"] == "pending" and doc["kind"] == "training_start"
        assert doc["send_after"].startswith("2025-03-10T08:00:00")  # Monday 08:00 London
        assert smtp_env.messages == []
        # redelivery of the enrolment (beyond the stream's dedupe) schedules nothing new
        await publish_raw(js, first, msg_id="redelivered-1")
        clock.set(datetime(2025, 3, 10, 8, 0, tzinfo=UTC))
        await wait_for(lambda: now_true(published.of("sent", "training:c-1:1")), 30, "sent")
        [mail] = smtp_env.to(EMAIL)
        assert mail["X-IBeST-Reference"] == "training:c-1:1"
        assert "not started" in mail.get_payload()
        [event] = published.of("sent", "training:c-1:1")
        assert event["trustcode"] == "RTH" and event["sitecode"] == "RTH09"
        assert event["data"] == {
            "notification_id": "training:c-1:1",
            "kind": "training_start",
            "recipient_kind": "clinician",
            "recipient_ref": "c-1",
            "template_id": "training_start",
            "channel": "smtp",
            "sent_at": "2025-03-10T08:00:00Z",
        }
        assert EMAIL not in str(published.events)

        # progress, then 14 days without any: a continue reminder
        await publish_raw(
            js,
            cloud_event(
                "module.started",
                {"clinician_ref": "c-1", "module_id": "m02-cbt-approach"},
                time=datetime(2025, 3, 11, 9, tzinfo=UTC),
            ),
        )
        await wait_for(
            lambda: _clinician_at(nsettings, "RTH09", "started_at"), 30, "progress stored"
        )
        clock.set(datetime(2025, 3, 24, 10, tzinfo=UTC))  # 13 days later: not yet
        await wait_for(lambda: passed(base, clock), 30, "a pass 13 days on")
        assert await reminder(base, "training:c-1:2") is None
        clock.set(datetime(2025, 3, 25, 9, 30, tzinfo=UTC))
        await wait_for(lambda: now_true(published.of("sent", "training:c-1:2")), 30, "continue")
        assert (await reminder(base, "training:c-1:2") or {})["kind"] == "training_continue"

        # completion: no more training nudges, one thanks asking about intention
        done = cloud_event(
            "clinician.training_completed",
            {"clinician_ref": "c-1", "course_version": "1"},
            site="RTH09",
            time=datetime(2025, 3, 26, 9, tzinfo=UTC),
        )
        await publish_raw(js, done)
        await publish_raw(js, done, msg_id="redelivered-2")
        clock.set(datetime(2025, 3, 26, 10, tzinfo=UTC))
        await wait_for(
            lambda: now_true(published.of("sent", "training_thanks:c-1:1")), 30, "thanks"
        )
        clock.set(datetime(2025, 5, 26, 10, tzinfo=UTC))  # two months on: nothing more
        marker = enrolled("c-marker", datetime(2025, 5, 1, 9, tzinfo=UTC))
        contacts.emails["c-marker"] = "marker@example.nhs.uk"
        await publish_raw(js, marker)
        await wait_for(
            lambda: now_true(published.of("sent", "training:c-marker:1")), 30, "a later pass ran"
        )
    assert len(smtp_env.to(EMAIL)) == 3
    assert [m["X-IBeST-Reference"] for m in smtp_env.to(EMAIL)] == [
        "training:c-1:1",
        "training:c-1:2",
        "training_thanks:c-1:1",
    ]
    assert "intend" in smtp_env.to(EMAIL)[2].get_payload()


@pytest.mark.slow
async def test_cap_spacing_and_opt_out(
    nsettings: Settings,
    js: JetStreamContext,
    smtp_env: Mailbox,
    service: ServiceSpec,
    contacts: Contacts,
    published: Published,
) -> None:
    monday = datetime(2025, 3, 3, 9, tzinfo=UTC)
    for ref in ("c-cap", "c-out"):
        contacts.emails[ref] = f"{ref}@example.nhs.uk"
        await publish_raw(js, enrolled(ref, monday))
    clock = FakeClock(monday)
    async with running_service(service, nsettings, clock) as base:
        async with httpx.AsyncClient(base_url=base, headers=SERVICE_AUTH) as client:
            assert (await client.post("/v1/opt-outs/c-out")).status_code == 200
        for week in range(1, 6):  # five weeks: at most three reminders, a week apart
            clock.set(monday + timedelta(days=7 * week, hours=1))
            if week <= 3:
                await wait_for(_sent(published, f"training:c-cap:{week}"), 30, f"reminder {week}")
                # two days later nothing is due yet: spacing
                clock.set(monday + timedelta(days=7 * week + 2, hours=1))
            await wait_for(lambda: passed(base, clock), 30, "a pass at the new time")
        assert await reminder(base, "training:c-cap:4") is None
        assert await reminder(base, "training:c-out:1") is None
        # opting back in: reminders resume
        async with httpx.AsyncClient(base_url=base, headers=SERVICE_AUTH) as client:
            assert (await client.delete("/v1/opt-outs/c-out")).status_code == 200
        await wait_for(lambda: now_true(published.of("sent", "training:c-out:1")), 30, "resumed")
    sent_times = [
        e["data"]["sent_at"] for e in published.of("sent") if e["data"]["recipient_ref"] == "c-cap"
    ]
    assert len(sent_times) == 3 == len(smtp_env.to("c-cap@example.nhs.uk"))


async def _clinician_at(settings: Settings, site: str, has: str = "_id") -> bool:
    doc = await stored(settings, "clinicians", "c-1")
    return bool(doc and doc.get("sitecode") == site and doc.get(has))
