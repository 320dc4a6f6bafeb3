"""The batch handler against the real database: the same schedule, and the same published
notifications, as the handlers applied one by one; and a failed write is raised (so the
backbone falls back to one by one), never swallowed."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from nats.aio.client import Client as NatsClient
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from ibest.backbone.audit import AuditLog
from ibest.backbone.settings import Settings
from services.notifications import bootstrap
from services.notifications.adapters.channels import LogChannel
from services.notifications.adapters.contacts import NatsContactDirectory
from services.notifications.adapters.repository import MongoNotificationsRepository
from services.notifications.application import NotificationsService
from services.notifications.settings import NotificationSettings
from shared.envelope import AnyEvent, parse_event
from shared.followup import assessment_date
from tests.fakes.publisher import FakePublisher
from tests.harness import ID_KEY, cloud_event
from tests.notifications.conftest import FakeClock

NOW = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)  # Monday, working hours
BASELINE = datetime(2025, 1, 6, 11, tzinfo=UTC)
COLLECTIONS = ("clinicians", "patients", "follow_up_items", "reminders")
Docs = dict[str, list[dict[str, Any]]]


def _event(name: str, data: dict[str, Any], when: datetime, site: str = "RTH08") -> AnyEvent:
    raw = cloud_event(name, data, site=site, time=when)
    return parse_event(None, json.dumps(raw).encode())


def clinician(name: str, ref: str, when: datetime, site: str = "RTH08") -> AnyEvent:
    data: dict[str, Any] = {"clinician_ref": ref}
    if name == "clinician.enrolled":
        data |= {
            "profession": "physiotherapist",
            "course_version": "1",
            "contact_email": f"{ref}@example.nhs.uk",
        }
    elif name.startswith("module."):
        data["module_id"] = "m01-understanding-back-pain"
    else:
        data["course_version"] = "1"
    return _event(name, data, when, site)


def assessed(patient: str, timepoint: str, when: datetime, site: str = "RTH08") -> AnyEvent:
    return _event(
        "patient.assessed",
        {"patient_ref": patient, "timepoint": timepoint, "measures": {"rmdq": 12}},
        when,
        site,
    )


def day(n: float) -> datetime:
    return NOW - timedelta(days=n)


def events() -> list[AnyEvent]:
    """Every kind of fact, with corrections, ties, replays and follow-ups before baselines."""
    return [
        # c-1: two enrolments (the later at RTH09 decides), started, no progress since
        clinician("clinician.enrolled", "c-1", day(40)),
        clinician("clinician.enrolled", "c-1", day(39), "RTH09"),
        clinician("clinician.training_started", "c-1", day(35)),
        clinician("module.started", "c-1", day(34)),
        # c-2: completes recently (pending reminder cancelled, thanked); ties on enrolment
        clinician("clinician.enrolled", "c-2", day(50), "RTH08"),
        clinician("clinician.enrolled", "c-2", day(50), "RTH09"),
        clinician("module.completed", "c-2", day(20)),
        clinician("clinician.training_completed", "c-2", day(3)),
        # c-3: completion known before enrolment; an old replayed completion is not thanked
        clinician("clinician.training_completed", "c-3", day(60), "RTH09"),
        clinician("clinician.enrolled", "c-3", day(90)),
        # c-4: enrolled only (a start reminder falls due); c-5: progress only
        clinician("clinician.enrolled", "c-4", day(12)),
        clinician("module.started", "c-5", day(2)),
        # c-6 and c-7: completed long ago, never enrolled here (a completion never sets the
        # clinician's trust and site, so no arrival order decides them)
        clinician("clinician.training_completed", "c-6", day(45), "RTH09"),
        clinician("module.started", "c-7", day(70)),
        clinician("clinician.training_completed", "c-7", day(45), "RTH09"),
        # c-8: completed long ago; answered the month 4 survey (window 9 Feb - 6 Apr 2025),
        # which cancels that survey's invitation and closing reminder in any order
        clinician("clinician.training_completed", "c-8", day(130), "RTH09"),
        _event(
            "clinician.delivery_reported",
            {"clinician_ref": "c-8", "delivering": True, "groups_delivered": 1},
            day(5),
        ),
        # patients: a baseline corrected to another site, a follow-up, group_end ignored
        assessed("p-a", "baseline", BASELINE),
        assessed("p-a", "baseline", BASELINE + timedelta(days=2), "RTH09"),
        assessed("p-b", "baseline", BASELINE),
        assessed("p-b", "month_3", BASELINE + timedelta(days=95)),
        assessed("p-c", "group_end", BASELINE + timedelta(days=40)),
        assessed("p-d", "month_12", BASELINE + timedelta(days=370)),
        assessed("p-d", "baseline", BASELINE),
        # an old baseline: its month-3 window has closed, month 12 has not
        assessed("p-e", "baseline", datetime(2024, 6, 3, 9, tzinfo=UTC)),
        # p-f stored before the batch with a later baseline: the batch's earlier one loses
        assessed("p-f", "baseline", BASELINE),
    ]


LATER_BASELINE = assessed("p-f", "baseline", BASELINE + timedelta(days=5), "RTH09")
"""One event (one id) stored in both databases before the batch."""


async def prepare(handlers: NotificationsService) -> None:
    """The same state before the batch, in both databases."""
    await handlers.repo.create_reminder(
        "training:c-2:1",
        {
            "family": "training",
            "kind": "training_start",
            "number": 1,
            "recipient_kind": "clinician",
            "recipient_ref": "c-2",
            "due_at": day(43),
            "send_after": day(43),
            "created_at": day(43),
        },
    )
    await handlers.apply_many([LATER_BASELINE])


@pytest.fixture
async def databases(settings: Settings) -> AsyncIterator[list[AsyncDatabase[dict[str, Any]]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_url, tz_aware=True)
    base = settings.database_of("notifications")
    yield [client[f"{base}_{i}"] for i in range(6)]
    await client.close()


def audit_next_to(db: AsyncDatabase[dict[str, Any]]) -> AuditLog:
    """A real audit log in a database of its own beside the test's."""
    return AuditLog(db.client[f"{db.name}_audit"])


def make_handlers(db: AsyncDatabase[dict[str, Any]], clock: FakeClock) -> NotificationsService:
    return bootstrap.build(NotificationSettings(), db, clock, audit=audit_next_to(db)).service


async def contents(db: AsyncDatabase[dict[str, Any]]) -> Docs:
    return {name: [d async for d in db[name].find().sort("_id")] for name in COLLECTIONS}


def assert_same(got: Docs, expected: Docs) -> None:
    """Equal documents, with the first difference named (collection, id, fields)."""
    for name in COLLECTIONS:
        assert [d["_id"] for d in got[name]] == [d["_id"] for d in expected[name]], name
        for mine, theirs in zip(got[name], expected[name], strict=True):
            differ = {k for k in {*mine, *theirs} if mine.get(k) != theirs.get(k)}
            assert not differ, (
                name,
                mine["_id"],
                {k: (mine.get(k), theirs.get(k)) for k in differ},
            )


class Addresses(NatsContactDirectory):
    async def email_of(self, clinician_ref: str) -> str | None:
        return f"{clinician_ref}@example.nhs.uk"


async def sent_later(db: AsyncDatabase[dict[str, Any]], nc: NatsClient) -> list[str]:
    """What the scheduler publishes from this schedule when follow-ups are due (as JSON)."""
    clock = FakeClock(datetime(2025, 4, 7, 9, 0, tzinfo=UTC))
    settings = NotificationSettings(
        IBEST_SITE_TEAMS=json.dumps({"RTH08": ["a@example.nhs.uk"], "RTH09": ["b@example.nhs.uk"]})
    )
    captured = FakePublisher()
    built = bootstrap.build(settings, db, clock, audit=audit_next_to(db))
    scheduler = built.scheduler(Addresses(nc, 1.0), captured, ID_KEY, LogChannel())
    await scheduler.run_once()
    return sorted(e.model_dump_json() for e in captured.published)


@pytest.mark.slow
async def test_batch_equals_one_by_one_in_any_order_with_duplicates(
    databases: list[AsyncDatabase[dict[str, Any]]],
    nc: NatsClient,
) -> None:
    clock = FakeClock(NOW)
    for seed in range(len(databases) // 2):
        rng = random.Random(seed)
        batch = [*events(), *rng.sample(events(), 6)]  # with redelivered duplicates
        rng.shuffle(batch)
        one_db, batch_db = databases[2 * seed : 2 * seed + 2]
        single, many = make_handlers(one_db, clock), make_handlers(batch_db, clock)
        for handlers in (single, many):
            await cast(MongoNotificationsRepository, handlers.repo).ensure_indexes()
            await prepare(handlers)
        for event in rng.sample(batch, len(batch)):  # one by one, in another order
            await single.apply_many([event])
        expected = await contents(one_db)
        assert [
            (d["_id"], d["status"]) for d in expected["reminders"] if d["family"] != "survey"
        ] == [("training:c-2:1", "cancelled"), ("training_thanks:c-2:1", "pending")]
        # Every completion whose windows are open has its four survey nudges; c-8's month 4
        # ones were answered.
        assert {
            (d["_id"], d["status"]) for d in expected["reminders"] if d["family"] == "survey"
        } == {
            (
                f"delivery_survey_{kind}:{ref}:{survey}",
                "cancelled" if (ref, survey) == ("c-8", "month_4") else "pending",
            )
            for kind in ("due", "closing")
            for survey in ("month_4", "month_12")
            for ref in ("c-2", "c-3", "c-6", "c-7", "c-8")
        }
        c1, c2 = (
            next(d for d in expected["clinicians"] if d["_id"] == ref) for ref in ("c-1", "c-2")
        )
        assert c1["sitecode"] == "RTH09" and c1["enrolled_at"] == day(40)
        # Equal times: the trust code, then the event id decide, in any order.
        tied = [e for e in batch if e.event_type.name == "clinician.enrolled"]
        tied = [e for e in tied if e.data.clinician_ref == "c-2"]
        assert c2["sitecode"] == max(tied, key=lambda e: (e.trustcode, str(e.id))).sitecode
        assert not any(
            "sitecode" in d for d in expected["clinicians"] if d["_id"] in ("c-6", "c-7")
        )
        assert len(expected["follow_up_items"]) == 4 * 4 + 2  # p-e: month 12 only
        assert sum(d["status"] == "cancelled" for d in expected["follow_up_items"]) == 4

        await many.apply_many(batch)
        assert_same(await contents(batch_db), expected)
        await many.apply_many(batch)  # a redelivered batch changes nothing
        assert_same(await contents(batch_db), expected)

        published = await sent_later(one_db, nc)
        assert sorted(json.loads(e)["data"]["notification_id"] for e in published) == [
            "site:RTH08:2025-04-07",
            "training:c-1:1",
            "training:c-4:1",
            "training_thanks:c-2:1",
        ]
        assert await sent_later(batch_db, nc) == published


async def test_two_instances_applying_batches_at_once_stay_exact(
    databases: list[AsyncDatabase[dict[str, Any]]],
) -> None:
    """Two instances apply overlapping batches concurrently (falling back to one by one if
    a batch raises, as the backbone does): the same documents as one instance alone."""
    clock = FakeClock(NOW)
    one_db, shared_db = databases[:2]
    batch = events()
    single = make_handlers(one_db, clock)
    for event in batch:
        await single.apply_many([event])
    first, second = make_handlers(shared_db, clock), make_handlers(shared_db, clock)
    rng = random.Random(7)

    async def instance(handlers: NotificationsService, events: list[AnyEvent]) -> None:
        try:
            await handlers.apply_many(events)
        except PyMongoError:
            for event in events:
                await handlers.apply_many([event])

    await asyncio.gather(
        instance(first, rng.sample(batch, len(batch))),
        instance(second, rng.sample(batch, len(batch))),
    )
    assert_same(await contents(shared_db), await contents(one_db))


async def test_a_failed_write_raises_so_the_batch_falls_back(
    databases: list[AsyncDatabase[dict[str, Any]]],
) -> None:
    db = databases[0]
    handlers = make_handlers(db, FakeClock(NOW))
    # a document the batch's update cannot apply to ($set on a field of a non-object)
    await db["patients"].insert_one({"_id": "RTH:p-x", "collected": "corrupt"})
    with pytest.raises(PyMongoError):
        await handlers.apply_many(
            [
                assessed("p-y", "baseline", BASELINE),
                assessed("p-x", "month_3", BASELINE + timedelta(days=95)),
            ]
        )


async def test_a_corrected_earlier_completion_moves_pending_nudges_in_the_database(
    databases: list[AsyncDatabase[dict[str, Any]]],
) -> None:
    """The MongoDB adapter's `retime_surveys`: whichever of a completion and its earlier
    correction (revision 2) arrives first, one by one or in one batch, the pending survey
    nudges end timed from the earlier one."""

    def completed(days_ago: float, revision: int | None) -> AnyEvent:
        data: dict[str, Any] = {"clinician_ref": "c-r", "course_version": "1"}
        data["completed_at"] = day(days_ago).isoformat()
        if revision:
            data["revision"] = revision
        return _event("clinician.training_completed", data, day(days_ago))

    first, corrected = completed(20, None), completed(30, 2)
    clock = FakeClock(NOW)
    ends = []
    for i, (order, together) in enumerate(
        [([first, corrected], False), ([corrected, first], False), ([first, corrected], True)]
    ):
        service = make_handlers(databases[i], clock)
        await cast(MongoNotificationsRepository, service.repo).ensure_indexes()
        if together:
            await service.apply_many(order)
        else:
            for event in order:
                await service.apply_many([event])
        ends.append(
            {
                d["_id"]: (d["status"], d["due"], d["remind_on"], d["send_after"])
                async for d in databases[i]["reminders"].find({"family": "survey"})
            }
        )
    assert ends[0] == ends[1] == ends[2] and len(ends[0]) == 4
    due = (assessment_date(day(30)) + timedelta(days=122)).isoformat()
    assert ends[0]["delivery_survey_due:c-r:month_4"][:2] == ("pending", due)
