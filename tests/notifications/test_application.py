"""Every notifications use case on in-memory fakes (no servers): the event use cases, the
opt-out and the scheduler's plan-send-publish pass. The real-server tests prove the MongoDB
adapter, NATS and SMTP keep the same behaviour."""

from __future__ import annotations

import copy
import json
import random
from datetime import timedelta
from typing import Any

import pytest

from ibest.backbone.audit import Actor
from ibest.backbone.document import Document
from services.notifications.application import NotificationsService
from services.notifications.domain.status import CANCELLED, FAILED, PENDING, SENT
from services.notifications.ports import TransientSendError
from services.notifications.scheduler import Scheduler
from services.notifications.settings import NotificationSettings
from shared.followup import assessment_date
from tests.fakes.audit import AuditUnavailable, FakeAuditTrail
from tests.fakes.notifications import (
    FakeChannel,
    FakeContacts,
    FakeNotificationsRepository,
)
from tests.fakes.publisher import FakePublisher
from tests.harness import ID_KEY
from tests.notifications.conftest import FakeClock
from tests.notifications.test_batch import (
    BASELINE,
    NOW,
    _event,
    assessed,
    clinician,
    day,
    events,
)

SETTINGS = NotificationSettings(
    IBEST_SITE_TEAMS=json.dumps({"RTH08": ["a@example.nhs.uk"]}), IBEST_NOTIFY_RETRY_BASE_SECONDS=0
)


Made = tuple[NotificationsService, FakeNotificationsRepository]


def make(clock: FakeClock | None = None, audit: FakeAuditTrail | None = None) -> Made:
    repo = FakeNotificationsRepository()
    return NotificationsService(
        repo, SETTINGS, clock or FakeClock(NOW), audit or FakeAuditTrail()
    ), repo


def sender(
    repo: FakeNotificationsRepository, clock: FakeClock
) -> tuple[Scheduler, FakeChannel, FakeContacts, FakePublisher]:
    channel, contacts, publisher = FakeChannel(), FakeContacts(), FakePublisher()
    return (
        Scheduler(repo, SETTINGS, channel, contacts, publisher, clock, ID_KEY),
        channel,
        contacts,
        publisher,
    )


def stored(repo: FakeNotificationsRepository) -> list[dict[str, Document]]:
    return [repo.clinicians, repo.patients, repo.follow_ups, repo.reminders]


async def test_a_batch_ends_where_one_by_one_does_in_any_order() -> None:
    for seed in range(3):
        rng = random.Random(seed)
        batch = [*events(), *rng.sample(events(), 6)]  # with redelivered duplicates
        rng.shuffle(batch)
        (single, single_repo), (many, many_repo) = make(), make()
        for event in rng.sample(batch, len(batch)):
            await single.apply_many([event])
        await many.apply_many(batch)
        assert stored(many_repo) == stored(single_repo)


async def test_a_completion_thanks_once_and_cancels_training_reminders() -> None:
    service, repo = make()
    await service.apply_many([clinician("clinician.enrolled", "c-1", day(20))])
    await repo.create_reminder(
        "training:c-1:1",
        {
            "family": "training",
            "kind": "training_start",
            "number": 1,
            "recipient_kind": "clinician",
            "recipient_ref": "c-1",
            "due_at": day(13),
            "send_after": day(13),
            "created_at": day(13),
        },
    )
    done = clinician("clinician.training_completed", "c-1", day(1))
    await service.apply_many([done])
    await service.apply_many([done])  # a redelivery
    assert repo.reminders["training:c-1:1"]["status"] == CANCELLED
    thanks = [r for r in repo.reminders.values() if r["family"] == "thanks"]
    assert len(thanks) == 1 and thanks[0]["status"] == PENDING
    assert {r["survey"] for r in repo.reminders.values() if r["family"] == "survey"} == {
        "month_4",
        "month_12",
    }


class RetimeRecorder(FakeNotificationsRepository):
    """The fake repository, recording the re-timings it is asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.retimed: list[str] = []

    async def retime_surveys(self, nudges: list[tuple[str, Document]]) -> None:
        self.retimed += [rid for rid, _ in nudges]
        await super().retime_surveys(nudges)


async def test_a_completion_does_not_retime_the_nudges_it_has_just_created() -> None:
    """Issue 26: re-timing a nudge this batch created, to the timing it was created with,
    can only match nothing (the bulk write's reply says what it created: no read), so it
    is not sent; a nudge that existed before is still re-timed, and a redelivery too."""
    repo = RetimeRecorder()
    service = NotificationsService(repo, SETTINGS, FakeClock(NOW), FakeAuditTrail())
    done = clinician("clinician.training_completed", "c-1", day(1))
    await service.apply_many([done])
    surveys = sorted(rid for rid, r in repo.reminders.items() if r["family"] == "survey")
    assert len(surveys) == 4 and repo.retimed == []
    await service.apply_many([done])  # a redelivery: nothing created, so re-timed (a no-op)
    assert sorted(repo.retimed) == surveys
    assert {r["due"] for r in repo.reminders.values() if r.get("survey") == "month_4"} == {
        (assessment_date(day(1)) + timedelta(days=122)).isoformat()
    }


async def test_a_delivery_report_cancels_the_survey_it_answers() -> None:
    service, repo = make()
    await service.apply_many([clinician("clinician.training_completed", "c-8", day(130))])
    await service.apply_many(
        [
            _event(
                "clinician.delivery_reported",
                {"clinician_ref": "c-8", "delivering": True, "groups_delivered": 1},
                day(5),
            )
        ]
    )
    month_4 = {r["status"] for r in repo.reminders.values() if r.get("survey") == "month_4"}
    assert month_4 == {CANCELLED}
    assert "month_12" in {
        r.get("survey") for r in repo.reminders.values() if r["status"] == PENDING
    }


async def test_a_baseline_plans_follow_ups_and_a_collected_one_cancels_its_items() -> None:
    service, repo = make(FakeClock(BASELINE + timedelta(days=1)))
    await service.apply_many([assessed("p-1", "baseline", BASELINE)])
    assert {i["timepoint"] for i in repo.follow_ups.values()} == {"month_3", "month_12"}
    await service.apply_many([assessed("p-1", "month_3", BASELINE + timedelta(days=90))])
    by_tp = {i["timepoint"]: i["status"] for i in repo.follow_ups.values()}
    assert by_tp["month_3"] == CANCELLED and by_tp["month_12"] == PENDING


async def test_opting_out_cancels_pending_reminders_and_can_be_undone() -> None:
    audit = FakeAuditTrail()
    service, repo = make(audit=audit)
    await service.apply_many([clinician("clinician.training_completed", "c-2", day(1))])
    await service.set_opt_out("c-2", True, Actor("http", "tok-1"))
    assert {r["status"] for r in repo.reminders.values() if r["family"] == "thanks"} == {CANCELLED}
    assert repo.clinicians["c-2"]["opted_out"] is True
    await service.set_opt_out("c-2", False, Actor("cli", None, "ops"))
    assert repo.clinicians["c-2"]["opted_out"] is False
    assert [
        (r["action"], r["clinician_ref"], r["token_id"], r["operator"]) for r in audit.records
    ] == [("opt_out", "c-2", "tok-1", None), ("opt_in", "c-2", None, "ops")]


async def test_an_opt_out_the_audit_log_cannot_record_changes_nothing() -> None:
    service, repo = make(audit=FakeAuditTrail(failing=True))
    await service.apply_many([clinician("clinician.training_completed", "c-3", day(1))])
    before = copy.deepcopy(stored(repo))
    with pytest.raises(AuditUnavailable):
        await service.set_opt_out("c-3", True, Actor("http", "tok-1"))
    assert stored(repo) == before


async def test_a_due_reminder_is_sent_once_and_its_event_published_from_the_outbox() -> None:
    clock = FakeClock(NOW)
    service, repo = make(clock)
    await service.apply_many([clinician("clinician.enrolled", "c-4", day(12))])
    scheduler, channel, contacts, publisher = sender(repo, clock)
    contacts.emails["c-4"] = "c-4@example.nhs.uk"
    publisher.failures = 1  # the stream is unreachable after the send is recorded
    with pytest.raises(ConnectionError):  # the pass fails; the loop logs it and goes on
        await scheduler.run_once()
    [reminder] = repo.reminders.values()
    assert reminder["status"] == SENT and len(reminder["outbox"]) == 1
    assert channel.sent[0].to == ["c-4@example.nhs.uk"] and publisher.published == []
    assert await scheduler.run_once() == 0  # nothing resent; the event is published now
    [event] = publisher.published
    assert event.event_type.name == "notification.sent" and event.data.recipient_ref == "c-4"
    assert (event.trustcode, event.sitecode) == ("RTH", "RTH08")
    assert repo.reminders[reminder["_id"]]["outbox"] == [] and len(channel.sent) == 1


async def test_no_contact_email_fails_and_an_unreachable_directory_retries() -> None:
    clock = FakeClock(NOW)
    service, repo = make(clock)
    await service.apply_many([clinician("clinician.enrolled", "c-4", day(12))])
    scheduler, channel, contacts, publisher = sender(repo, clock)
    contacts.down = True
    assert await scheduler.run_once() == 0
    [reminder] = repo.reminders.values()
    assert reminder["status"] == PENDING and reminder["attempts"] == 1
    contacts.down = False
    clock.advance(minutes=5)
    assert await scheduler.run_once() == 1
    assert repo.reminders[reminder["_id"]]["reason"] == "no contact email"
    [event] = publisher.published
    assert event.event_type.name == "notification.failed" and channel.sent == []
    assert repo.reminders[reminder["_id"]]["status"] == FAILED


async def test_a_transient_send_error_is_retried_later() -> None:
    clock = FakeClock(NOW)
    service, repo = make(clock)
    await service.apply_many([clinician("clinician.enrolled", "c-4", day(12))])
    scheduler, channel, contacts, publisher = sender(repo, clock)
    contacts.emails["c-4"] = "c-4@example.nhs.uk"
    channel.fail_with = TransientSendError("rate limited")
    assert await scheduler.run_once() == 0
    assert [r["last_error"] for r in repo.reminders.values()] == ["rate limited"]
    channel.fail_with = None
    clock.advance(minutes=5)
    assert await scheduler.run_once() == 1 and len(publisher.published) == 1


async def test_site_teams_get_one_digest_of_due_follow_ups() -> None:
    clock = FakeClock(BASELINE + timedelta(days=1))
    service, repo = make(clock)
    await service.apply_many([assessed("p-1", "baseline", BASELINE)])
    await service.apply_many([assessed("p-2", "baseline", BASELINE)])
    clock.set(BASELINE + timedelta(days=91))
    while not SETTINGS.working_hours().is_open(clock()):
        clock.advance(hours=1)
    scheduler, channel, _, publisher = sender(repo, clock)
    assert await scheduler.run_once() == 1
    [message] = channel.sent
    assert message.to == ["a@example.nhs.uk"] and "p-1" in message.body and "p-2" in message.body
    assert [e.data.recipient_kind for e in publisher.published] == ["site_team"]
    assert await scheduler.run_once() == 0


def completion(minutes_ago_days: float, revision: int | None) -> Any:
    data: dict[str, Any] = {"clinician_ref": "c-r", "course_version": "1"}
    data["completed_at"] = day(minutes_ago_days).isoformat()
    if revision:
        data["revision"] = revision
    return _event("clinician.training_completed", data, day(minutes_ago_days))


@pytest.mark.parametrize("batch", [False, True], ids=["one by one", "batch"])
async def test_a_corrected_earlier_completion_moves_pending_survey_nudges_in_any_order(
    batch: bool,
) -> None:
    """Enrolment corrected the completion (revision 2, ten days earlier, an earlier module
    completion arrived late): the pending nudges follow it, whichever arrives first."""
    first, corrected = completion(20, None), completion(30, 2)
    dues = []
    for order in ([first, corrected], [corrected, first]):
        service, repo = make()
        if batch:
            await service.apply_many(order)
        else:
            for event in order:
                await service.apply_many([event])
        surveys = {rid: r for rid, r in repo.reminders.items() if r["family"] == "survey"}
        assert surveys and all(r["status"] == PENDING for r in surveys.values())
        dues.append(
            {rid: (r["due"], r["remind_on"], r["send_after"]) for rid, r in surveys.items()}
        )
    assert dues[0] == dues[1]
    expected = (assessment_date(day(30)) + timedelta(days=122)).isoformat()
    assert dues[0]["delivery_survey_due:c-r:month_4"][0] == expected
