"""The notifications repository port, held to one contract: every assertion here runs
against the in-memory fake (tests/fakes/notifications.py) and against the MongoDB adapter
on the real database, so the fake-based use-case tests (test_application.py) prove what
the service does (the pattern of tests/reporting/test_store.py). It covers the reminder's
life (created once, claimed under a lease, finished by its owner, queued for publishing),
clinicians (first enrolment, latest place, opt-out, progress, completion, delivery reports,
batched changes), survey and training reminders (answered, cancelled, thanked once),
patients (collected follow-ups, the latest baseline, batched changes), follow-up items
(created once, moved while pending, taken into digests, finished, cancelled) and delivery
statuses: every method of the port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from ibest.backbone.document import Document
from services.notifications.adapters.repository import MongoNotificationsRepository
from services.notifications.domain.batch import (
    ClinicianChange,
    PatientChange,
    baseline_time,
    latest_key,
    latest_time,
)
from services.notifications.domain.status import PENDING, SENDING, SENT
from services.notifications.ports import NotificationsRepository
from tests.fakes.notifications import FakeNotificationsRepository
from tests.harness import scratch_database

T0 = datetime(2026, 2, 2, 10, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


@pytest.fixture(params=["fake", "mongo"])
async def repo(request: pytest.FixtureRequest, mongodb_url: str) -> AsyncIterator[Any]:
    if request.param == "fake":
        yield FakeNotificationsRepository()
        return
    async with scratch_database(mongodb_url, "notifications") as db:
        real = MongoNotificationsRepository(db)
        await real.ensure_indexes()
        yield real


def fields(minutes: int, ref: str = "c1") -> Document:
    return {
        "kind": "training_start",
        "clinician_ref": ref,
        "send_after": T0 + timedelta(minutes=minutes),
    }


# One event is a batch of one: the change `domain.batch.fold` makes of each single event.
def enrolled(ref: str, trust: str, site: str, at: datetime, event_id: str) -> ClinicianChange:
    return ClinicianChange(
        ref, mins={"enrolled_at": at}, latest_enrolment=(at, trust, site, event_id)
    )


def progressed(ref: str, at: datetime) -> ClinicianChange:
    return ClinicianChange(ref, mins={"started_at": at}, maxs={"last_progress_at": at})


def completed(ref: str, at: datetime) -> ClinicianChange:
    return ClinicianChange(
        ref, mins={"completed_at": at, "started_at": at}, maxs={"last_progress_at": at}
    )


def reported(ref: str, day: date) -> ClinicianChange:
    return ClinicianChange(ref, report_dates={day})


async def one(repo: NotificationsRepository, change: ClinicianChange) -> None:
    await repo.apply_clinicians([change])


async def baseline(
    repo: NotificationsRepository, patient: str, site: str, at: datetime, event_id: str
) -> Document:
    stored = await repo.apply_patients(
        [PatientChange("RTH", patient, baseline=(at, site, event_id))]
    )
    return stored[f"RTH:{patient}"]


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
    await one(repo, enrolled("c1", "RTH", "RTH08", T0 + timedelta(days=2), "e1"))
    await one(repo, enrolled("c1", "RNU", "RNU01", T0, "e2"))  # earlier: first, not latest
    await one(repo, enrolled("c2", "RTH", "RTH08", T0, "e3"))
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
    await baseline(repo, "p1", "RTH08", T0, "b1")
    await repo.apply_patients([PatientChange("RTH", "p1", collected=["month_3"])])
    await repo.apply_patients([PatientChange("RTH", "p1", collected=["month_3"])])
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


def reminder_fields(
    ref: str, family: str, opens: str = "", closes: str = "", minutes: int = 60
) -> Document:
    fields: Document = {
        "kind": "training_start",
        "family": family,
        "recipient_ref": ref,
        "send_after": T0 + timedelta(minutes=minutes),
    }
    if opens:
        fields.update(opens=opens, closes=closes)
    return fields


async def statuses(repo: NotificationsRepository, *ids: str) -> dict[str, tuple[str, Any]]:
    found: dict[str, tuple[str, Any]] = {}
    for reminder_id in ids:
        doc = await repo.reminder(reminder_id)
        assert doc is not None, reminder_id
        found[reminder_id] = (doc["status"], doc.get("reason"))
    return found


async def test_a_batch_of_clinician_changes_keeps_minima_maxima_reports_and_the_latest_place(
    repo: NotificationsRepository,
) -> None:
    later = T0 + timedelta(days=3)
    first = ClinicianChange(
        "c1",
        mins={"enrolled_at": later, "started_at": later},
        maxs={"last_progress_at": later},
        latest_enrolment=(later, "RTH", "RTH08", "e1"),
        report_dates={date(2026, 3, 2), date(2026, 3, 1)},
    )
    second = ClinicianChange(
        "c1",
        mins={"enrolled_at": T0, "started_at": later + timedelta(days=1)},
        maxs={"last_progress_at": T0},
        latest_enrolment=(T0, "RNU", "RNU01", "e2"),  # earlier: not the latest place
        report_dates={date(2026, 3, 1)},
    )
    await repo.apply_clinicians([first, ClinicianChange("c2", mins={"enrolled_at": T0})])
    await repo.apply_clinicians([second])
    await repo.apply_clinicians([])
    c1 = await repo.clinician("c1")
    assert c1 is not None
    assert (c1["enrolled_at"], c1["started_at"], c1["last_progress_at"]) == (T0, later, later)
    assert (c1["trustcode"], c1["sitecode"]) == ("RTH", "RTH08")
    assert latest_time(c1["latest_enrolment"]) == later
    assert c1["delivery_reports"] == ["2026-03-01", "2026-03-02"]
    # Issue 26: no `opted_out: false` (absent reads as not opted out), no time beside the key.
    assert not {"opted_out", "latest_enrolment_at"} & set(c1)
    c2 = await repo.clinician("c2")
    assert c2 is not None and c2["enrolled_at"] == T0 and "trustcode" not in c2


async def test_progress_completion_and_delivery_reports_of_one_clinician(
    repo: NotificationsRepository,
) -> None:
    await one(repo, enrolled("c1", "RTH", "RTH08", T0, "e1"))
    await one(repo, progressed("c1", T0 + timedelta(days=2)))
    await one(repo, progressed("c1", T0 + timedelta(days=1)))  # earlier start, not later progress
    c1 = await repo.clinician("c1")
    assert c1 is not None
    assert (c1["started_at"], c1["last_progress_at"]) == (
        T0 + timedelta(days=1),
        T0 + timedelta(days=2),
    )
    assert "completed_at" not in c1
    assert [d["_id"] async for d in repo.active_clinicians()] == ["c1"]
    await one(repo, completed("c1", T0 + timedelta(days=9)))
    await one(repo, completed("c1", T0 + timedelta(days=5)))
    c1 = await repo.clinician("c1")
    assert c1 is not None
    assert (c1["completed_at"], c1["started_at"], c1["last_progress_at"]) == (
        T0 + timedelta(days=5),
        T0 + timedelta(days=1),
        T0 + timedelta(days=9),
    )
    assert (c1["trustcode"], c1["sitecode"]) == ("RTH", "RTH08")  # a completion sets no place
    assert [d["_id"] async for d in repo.active_clinicians()] == []  # completed
    await one(repo, completed("c2", T0))  # no enrolment yet: created, not active
    c2 = await repo.clinician("c2")
    assert c2 is not None and not c2.get("opted_out") and "enrolled_at" not in c2
    await one(repo, reported("c3", date(2026, 5, 1)))
    await one(repo, reported("c3", date(2026, 4, 1)))
    await one(repo, reported("c3", date(2026, 5, 1)))
    c3 = await repo.clinician("c3")
    assert c3 is not None and c3["delivery_reports"] == ["2026-05-01", "2026-04-01"]


async def test_an_answered_survey_cancels_only_the_pending_nudges_whose_window_holds_it(
    repo: NotificationsRepository,
) -> None:
    await repo.create_reminder("s4", reminder_fields("c1", "survey", "2026-06-01", "2026-06-30"))
    await repo.create_reminder("s12", reminder_fields("c1", "survey", "2026-09-01", "2026-09-30"))
    await repo.create_reminder("o4", reminder_fields("c2", "survey", "2026-06-01", "2026-06-30"))
    await repo.create_reminder("t1", reminder_fields("c1", "training"))
    await repo.cancel_answered_surveys([])
    await repo.cancel_answered_surveys([("c1", date(2026, 6, 30)), ("c1", date(2026, 8, 1))])
    assert await statuses(repo, "s4", "s12", "o4", "t1") == {
        "s4": ("cancelled", "survey answered"),
        "s12": ("pending", None),
        "o4": ("pending", None),
        "t1": ("pending", None),
    }
    # Reports stored before the nudges existed cancel them once they are created: those
    # inside the windows just written (c1's report of 1 September is outside them).
    await one(repo, reported("c2", date(2026, 6, 1)))
    await one(repo, reported("c9", date(2026, 6, 1)))
    await one(repo, reported("c1", date(2026, 9, 1)))
    june = [("2026-06-01", "2026-06-30")]
    await repo.cancel_surveys_answered_before({"c2": june, "c1": june, "c8": june})
    assert await statuses(repo, "s12", "o4") == {
        "s12": ("pending", None),
        "o4": ("cancelled", "survey answered"),
    }
    await repo.cancel_surveys_answered_before({"c1": [("2026-09-01", "2026-09-30")]})
    assert await statuses(repo, "s12") == {"s12": ("cancelled", "survey answered")}


async def test_training_reminders_are_listed_cancelled_and_thanked_once(
    repo: NotificationsRepository,
) -> None:
    await repo.create_reminder("c1-start", reminder_fields("c1", "training", minutes=0))
    await repo.create_reminder("c1-continue", reminder_fields("c1", "training"))
    await repo.create_reminder("c2-start", reminder_fields("c2", "training"))
    await repo.create_reminder("c1-survey", reminder_fields("c1", "survey", "2026-06-01", "x"))
    await repo.create_reminder("c3-thanks", reminder_fields("c3", "thanks"))
    listed = await repo.training_reminders()
    assert {ref: sorted(d["_id"] for d in docs) for ref, docs in listed.items()} == {
        "c1": ["c1-continue", "c1-start"],
        "c2": ["c2-start"],
    }
    claimed = await repo.claim(T0, "a", LEASE)  # being sent: left alone
    assert claimed is not None and claimed["_id"] == "c1-start"
    await repo.cancel_clinician_reminders("c1", ["training"], "opted out")
    assert await statuses(repo, "c1-start", "c1-continue", "c1-survey") == {
        "c1-start": ("sending", None),
        "c1-continue": ("cancelled", "opted out"),
        "c1-survey": ("pending", None),
    }

    thanks = reminder_fields("c2", "thanks")
    created = await repo.complete_training(
        ["c2", "c3"],
        ["training", "survey"],
        "completed",
        [("c2-thanks", thanks), ("c3-thanks", {**thanks, "recipient_ref": "changed"})],
    )
    assert created == {"c2-thanks"}  # c3's existed: left as it was, not created
    assert await statuses(repo, "c2-start", "c2-thanks", "c3-thanks", "c1-survey") == {
        "c2-start": ("cancelled", "completed"),
        "c2-thanks": ("pending", None),
        "c3-thanks": ("pending", None),
        "c1-survey": ("pending", None),
    }
    c3 = await repo.reminder("c3-thanks")
    assert c3 is not None and c3["recipient_ref"] == "c3"  # created once, left as it was
    c2 = await repo.reminder("c2-thanks")
    assert c2 is not None and (c2["family"], c2["attempts"]) == ("thanks", 0)


async def test_a_batch_of_patient_changes_keeps_collected_follow_ups_and_the_latest_baseline(
    repo: NotificationsRepository,
) -> None:
    assert await repo.apply_patients([]) == {}
    later = T0 + timedelta(days=1)
    stored = await repo.apply_patients(
        [
            PatientChange("RTH", "p1", baseline=(later, "RTH08", "b1")),
            PatientChange("RTH", "p2", collected=["month_3"]),
        ]
    )
    # Issue 26: the `_id` says the trust and reference, the key says the time: none stored again.
    assert stored == {
        "RTH:p1": {
            "_id": "RTH:p1",
            "sitecode": "RTH08",
            "latest_baseline": latest_key(later, "RTH", "b1"),
        }
    }
    again = await repo.apply_patients(
        [PatientChange("RTH", "p1", collected=["month_12"], baseline=(T0, "RTH09", "b2"))]
    )
    assert again["RTH:p1"]["sitecode"] == "RTH08"  # the earlier baseline does not win
    assert again["RTH:p1"]["collected"] == {"month_12": True}
    assert await repo.apply_patients([PatientChange("RTH", "p2", collected=["month_12"])]) == {}
    assert await repo.collected_of(["RTH:p1", "RTH:p2", "RTH:p9"]) == {
        "RTH:p1": {"month_12"},
        "RTH:p2": {"month_3", "month_12"},
    }
    corrected = await baseline(repo, "p1", "RTH07", later + timedelta(hours=1), "b3")
    assert corrected["sitecode"] == "RTH07"
    assert baseline_time(corrected) == later + timedelta(hours=1)
    assert corrected["collected"] == {"month_12": True}
    kept = await baseline(repo, "p1", "RTH06", T0, "b4")  # older: a no-op
    assert kept == corrected


def item(site: str, patient: str, timepoint: str, remind_on: str) -> Document:
    return {
        "trustcode": site[:3],
        "sitecode": site,
        "patient_ref": patient,
        "timepoint": timepoint,
        "remind_on": remind_on,
        "closes": "2026-12-31",
    }


async def item_statuses(repo: Any, digest: str, site: str, today: str) -> dict[str, str]:
    return {d["_id"]: d["status"] for d in await repo.take_items_into(digest, site, today)}


async def test_follow_up_items_are_created_once_moved_while_pending_and_taken_into_digests(
    repo: NotificationsRepository,
) -> None:
    await repo.write_items([("i1", item("RTH08", "p1", "month_3", "2026-05-01"))], [])
    await repo.write_items([("i1", item("RTH08", "p1", "month_3", "2026-05-03"))], [])  # moved
    await repo.write_items(
        [
            ("i2", item("RTH08", "p2", "month_3", "2026-05-02")),
            ("i3", item("RTH09", "p3", "month_3", "2026-05-01")),
            ("i4", item("RNU01", "p4", "month_12", "2026-09-01")),
            ("i5", item("RTH08", "p5", "month_3", "2026-05-01")),
        ],
        [("RTH", "p5", "month_3")],  # cancelled in the same write
    )
    await repo.write_items([], [])
    assert await repo.sites_with_due_items("2026-04-30") == {}
    assert await repo.sites_with_due_items("2026-05-02") == {"RTH08": "RTH", "RTH09": "RTH"}
    assert await item_statuses(repo, "d1", "RTH08", "2026-05-02") == {"i2": "queued"}
    await repo.write_items(
        [("i2", item("RTH08", "p2", "month_3", "2026-06-01"))], []
    )  # queued: kept
    # Already in the digest plus those now due.
    assert await item_statuses(repo, "d1", "RTH08", "2026-05-03") == {
        "i1": "queued",
        "i2": "queued",
    }
    taken = await repo.take_items_into("d1", "RTH08", "2026-05-03")
    assert {d["_id"]: d["remind_on"] for d in taken} == {"i1": "2026-05-03", "i2": "2026-05-02"}
    assert await repo.sites_with_due_items("2026-05-03") == {"RTH09": "RTH"}
    await repo.write_items(
        [], [("RTH", "p1", "month_3")]
    )  # a collected follow-up: queued cancelled
    assert await item_statuses(repo, "d1", "RTH08", "2026-05-03") == {"i2": "queued"}
    await repo.finish_items("d1", "sent")
    await repo.finish_items("d9", "sent")
    assert await item_statuses(repo, "d1", "RTH08", "2026-05-03") == {}
    await repo.write_items([], [("RTH", "p2", "month_3"), ("RTH", "p3", "month_3")])  # p2 sent
    await repo.write_items(
        [("i3", item("RTH09", "p3", "month_3", "2026-04-01"))], []
    )  # cancelled: kept
    assert await repo.sites_with_due_items("2026-12-31") == {"RNU01": "RNU"}
    assert await item_statuses(repo, "d2", "RNU01", "2026-12-31") == {"i4": "queued"}
    assert await item_statuses(repo, "d3", "RTH08", "2026-12-31") == {}
