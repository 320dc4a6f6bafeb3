"""Delivery survey invitations and closing reminders end to end: real NATS, the real
database, a real SMTP server, two instances sharing one schedule, and a clock moved
through both survey windows (across a change of the clocks)."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import Message
from typing import Any

import httpx
import pytest
from nats.js import JetStreamContext

from ibest.backbone.runtime import ServiceSpec
from ibest.backbone.settings import Settings
from services.notifications.cli import plan_surveys
from services.notifications.domain.hours import WorkingHours
from tests.harness import (
    SERVICE_AUTH,
    cloud_event,
    dead_letters,
    publish_raw,
    running_service,
    wait_for,
)
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

# Completed Wednesday 1 January 2025. Month 4: due Saturday 3 May, window 19 April to
# Saturday 14 June, closing reminder Saturday 31 May. Month 12: due Thursday 1 January 2026,
# window 4 December 2025 to 26 February 2026, closing reminder Thursday 12 February.
COMPLETED = datetime(2025, 1, 1, 10, tzinfo=UTC)
A, B, C, D, E = (
    "c-always-silent",
    "c-answers-m4",
    "c-answers-both-early",
    "c-opted-out",
    "c-answers-between",
)
F = "c-erased"  # enrolment erased the email: nothing can be sent, the nudges fail


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def report(ref: str, when: datetime, delivering: bool = True) -> dict[str, Any]:
    return cloud_event(
        "clinician.delivery_reported",
        {"clinician_ref": ref, "delivering": delivering, "groups_delivered": 1},
        time=when,
    )


@pytest.mark.slow
async def test_one_invitation_and_at_most_one_reminder_per_survey_none_after_an_answer(
    nsettings: Settings,
    js: JetStreamContext,
    smtp_env: Mailbox,
    service: ServiceSpec,
    contacts: Contacts,
    published: Published,
) -> None:
    contacts.emails[F] = None
    for ref in (A, B, C, D, E, F):
        contacts.emails.setdefault(ref, f"{ref}@example.nhs.uk")
        await publish_raw(
            js,
            cloud_event(
                "clinician.enrolled",
                {"clinician_ref": ref, "profession": "nurse", "course_version": "1"},
                time=utc(2024, 11, 1, 9),
            ),
        )
        done = cloud_event(
            "clinician.training_completed",
            {"clinician_ref": ref, "course_version": "1", "completed_at": COMPLETED.isoformat()},
            time=COMPLETED,
        )
        await publish_raw(js, done)
        await publish_raw(js, done, msg_id=f"again-{ref}")  # redelivered
    clock = FakeClock(utc(2025, 4, 22, 10))  # inside month 4's window, before it is due
    hours = WorkingHours()
    async with (
        running_service(service, nsettings, clock) as one,
        running_service(service, nsettings, clock) as two,
    ):

        async def at(moment: datetime, sent: int, why: str) -> None:
            """Move the clock; wait for `sent` sent in all and a pass of both instances."""
            clock.set(moment)
            await wait_for(lambda: now_true(len(published.of("sent")) >= sent), 30, why)
            await wait_for(lambda: _both_passed(one, two, clock), 30, f"passes: {why}")
            assert len(published.of("sent")) == sent, why

        await wait_for(lambda: _reminders(nsettings, 6 * 4), 30, "four nudges per clinician")
        async with httpx.AsyncClient(base_url=one, headers=SERVICE_AUTH) as client:
            assert (await client.post(f"/v1/opt-outs/{D}")).status_code == 200
        # C answers month 4 before its due date (inside the window): nothing month 4 for C.
        await publish_raw(js, report(C, utc(2025, 4, 25, 12)))
        await wait_for(
            lambda: _status(one, f"delivery_survey_due:{C}:month_4", "cancelled"),
            30,
            "C's month 4 invitation cancelled by the answer",
        )
        await at(utc(2025, 5, 2, 12), 0, "the day before month 4 is due")
        await at(utc(2025, 5, 3, 10), 0, "due on a Saturday: waits for working hours")
        await at(utc(2025, 5, 5, 6, 59), 0, "07:59 BST on Monday: still waits")
        await at(utc(2025, 5, 5, 7, 0), 3, "08:00 BST: month 4 invitations to A, B and E")
        # B answers month 4; E reports between the windows (answers neither survey).
        await publish_raw(js, report(B, utc(2025, 5, 10, 12), delivering=False))
        await wait_for(
            lambda: _status(one, f"delivery_survey_closing:{B}:month_4", "cancelled"),
            30,
            "B's closing reminder cancelled",
        )
        await at(utc(2025, 5, 31, 10), 3, "closing reminder day is a Saturday: waits")
        await at(utc(2025, 6, 2, 7, 30), 5, "Monday: month 4 closing reminders to A and E")
        await at(utc(2025, 6, 20, 9), 5, "month 4's window has closed")
        await publish_raw(js, report(E, utc(2025, 8, 1, 12)))
        await publish_raw(js, report(C, utc(2025, 12, 10, 12)))  # C answers month 12 early
        await wait_for(lambda: _reported(nsettings, E, C), 30, "both reports stored")
        await at(utc(2025, 12, 31, 17), 5, "the day before month 12 is due")
        await at(utc(2026, 1, 1, 7, 59), 5, "07:59 GMT on the due date")
        await at(utc(2026, 1, 1, 8, 0), 8, "08:00 GMT: month 12 invitations to A, B and E")
        await at(utc(2026, 2, 12, 9), 11, "month 12 closing reminders to A, B and E")
        await at(utc(2026, 2, 27, 9), 11, "month 12's window has closed")
        await at(utc(2026, 6, 1, 9), 11, "months later: nothing more")
        await wait_for(lambda: now_true(len(published.of("failed")) == 4), 30, "F's failures")
        assert (
            sorted(e["data"]["reason"] for e in published.of("failed")) == ["no contact email"] * 4
        )
        assert {e["data"]["recipient_ref"] for e in published.of("failed")} == {F}
        d_invite = await reminder(two, f"delivery_survey_due:{D}:month_12")
        assert d_invite is not None and d_invite["status"] == "cancelled"
        assert d_invite["reason"] == "opted out"
    expected = sorted(
        [f"delivery_survey_due:{r}:{s}" for r in (A, B, E) for s in ("month_4", "month_12")]
        + [f"delivery_survey_closing:{r}:month_4" for r in (A, E)]
        + [f"delivery_survey_closing:{r}:month_12" for r in (A, B, E)]
    )
    assert sorted(smtp_env.references()) == expected  # once each, nothing else
    for event in published.of("sent"):
        assert hours.is_open(datetime.fromisoformat(event["data"]["sent_at"]))
        assert event["data"]["kind"] in ("delivery_survey_due", "delivery_survey_closing")
        assert event["data"]["recipient_kind"] == "clinician"
    [invite] = [
        m
        for m in smtp_env.to(f"{A}@example.nhs.uk")
        if m["X-IBeST-Reference"] == f"delivery_survey_due:{A}:month_4"
    ]
    body = _text(invite)
    assert f"delivery-survey?survey=month_4&clinician={A}" in body
    assert "open until 2025-06-14" in body and invite["Subject"].startswith("Your 4-month")
    [closing] = [
        m
        for m in smtp_env.to(f"{A}@example.nhs.uk")
        if m["X-IBeST-Reference"] == f"delivery_survey_closing:{A}:month_12"
    ]
    assert "closes on 2026-02-26" in _text(closing)
    assert await dead_letters(js) == []


async def test_a_completion_replayed_late_schedules_only_what_can_still_be_answered(
    nsettings: Settings,
    js: JetStreamContext,
    smtp_env: Mailbox,
    service: ServiceSpec,
    contacts: Contacts,
    published: Published,
) -> None:
    """Consumed after month 4's reminder day: month 4's invitation is superseded by its
    closing reminder (one message, not two at once); a window already closed schedules
    nothing; a reminder that falls due while the service is down is not sent after its
    window closed."""
    contacts.emails["c-late"] = "late@example.nhs.uk"
    contacts.emails["c-later"] = "later@example.nhs.uk"
    await publish_raw(
        js,
        cloud_event(
            "clinician.training_completed",
            {"clinician_ref": "c-late", "course_version": "1"},
            time=COMPLETED,
        ),
    )  # no completed_at
    # completed 1 June 2024: month 4 closed 12 November 2024, month 12 open until 27 July 2025
    await publish_raw(
        js,
        cloud_event(
            "clinician.training_completed",
            {
                "clinician_ref": "c-later",
                "course_version": "1",
                "completed_at": "2024-06-01T09:00:00+00:00",
            },
            time=utc(2024, 6, 1, 9),
        ),
    )
    clock = FakeClock(utc(2025, 6, 4, 10))  # Wednesday, after 31 May (c-late's reminder day)
    async with running_service(service, nsettings, clock) as base:
        await wait_for(lambda: now_true(len(published.of("sent")) == 2), 30, "two sent")
        await wait_for(lambda: passed(base, clock), 30, "a pass after sending")
        invite = await reminder(base, "delivery_survey_due:c-late:month_4")
        assert invite is not None and invite["status"] == "cancelled"
        assert invite["reason"] == "superseded by the closing reminder"
        assert await reminder(base, "delivery_survey_due:c-later:month_4") is None
        # c-later's month 12 closing reminder falls due on 13 July; the service next runs
        # on 28 July, the day after the window closed: it is not sent.
        clock.set(utc(2025, 7, 28, 9))
        await wait_for(
            lambda: _status(base, "delivery_survey_closing:c-later:month_12", "cancelled"),
            30,
            "the late closing reminder dropped",
        )
        late = await reminder(base, "delivery_survey_closing:c-later:month_12")
        assert late is not None and late["reason"] == "survey window closed"
    assert sorted(smtp_env.references()) == [
        "delivery_survey_closing:c-late:month_4",
        "delivery_survey_due:c-later:month_12",
    ]
    assert len(published.of("sent")) == 2 and published.of("failed") == []


async def test_plan_surveys_schedules_what_an_older_version_never_planned(
    nsettings: Settings,
    js: JetStreamContext,
) -> None:
    """After an upgrade: completions and answers already in the stream, read by an older
    notifications service, get their survey nudges; repeating it changes nothing."""
    answer = report("c-x", utc(2025, 5, 10, 12))  # month 4 answer, stored before the completion
    await publish_raw(js, answer)
    for ref in ("c-x", "c-y"):
        await publish_raw(
            js,
            cloud_event(
                "clinician.training_completed",
                {
                    "clinician_ref": ref,
                    "course_version": "1",
                    "completed_at": COMPLETED.isoformat(),
                },
                time=COMPLETED,
            ),
        )
    clock = FakeClock(utc(2025, 4, 22, 10))
    counts = await plan_surveys(nsettings, clock)
    assert counts == {"clinician.training_completed": 2, "clinician.delivery_reported": 1}
    first = await _survey_docs(nsettings)
    assert {rid: doc["status"] for rid, doc in first.items()} == {
        f"delivery_survey_{kind}:{ref}:{survey}": "cancelled"
        if (ref, survey) == ("c-x", "month_4")
        else "pending"
        for ref in ("c-x", "c-y")
        for kind in ("due", "closing")
        for survey in ("month_4", "month_12")
    }
    assert await plan_surveys(nsettings, clock) == counts
    assert await _survey_docs(nsettings) == first


async def _survey_docs(settings: Settings) -> dict[str, dict[str, Any]]:
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_url)
    try:
        db = client[settings.database_of("notifications")]
        return {d["_id"]: d async for d in db["reminders"].find({"family": "survey"})}
    finally:
        await client.close()


async def _both_passed(one: str, two: str, clock: FakeClock) -> bool:
    return await passed(one, clock) and await passed(two, clock)


async def _status(base: str, rid: str, status: str) -> bool:
    doc = await reminder(base, rid)
    return bool(doc and doc["status"] == status)


async def _reminders(settings: Settings, n: int) -> bool:
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_url)
    try:
        db = client[settings.database_of("notifications")]
        return await db["reminders"].count_documents({"family": "survey"}) >= n
    finally:
        await client.close()


async def _reported(settings: Settings, *refs: str) -> bool:
    docs = [await stored(settings, "clinicians", ref) for ref in refs]
    return all(doc and len(doc.get("delivery_reports", [])) >= 1 for doc in docs)


def _text(message: Message) -> str:
    """The decoded body of a single-part email."""
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes), "a single-part message"
    return payload.decode()
