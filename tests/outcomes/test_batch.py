"""The batch handler against the real database: a shuffled batch with duplicates ends in the
same documents and publishes the same events as applying it one event at a time, and a
concurrent writer makes it raise (so the consumer falls back to one by one)."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from ibest.backbone.concurrency import ConcurrentUpdate
from ibest.backbone.document import Document
from services.outcomes.adapters.repository import MongoOutcomesRepository, state_of
from services.outcomes.application import OutcomesService
from services.outcomes.domain.assessments import Assessment
from services.outcomes.settings import OutcomesSettings
from shared.envelope import AnyEvent, new_event
from shared.events import ClassStarted, Measures, PatientAssessed
from shared.followup import Timepoint
from tests.fakes.publisher import FakePublisher
from tests.harness import ID_KEY

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


Made = tuple[OutcomesService, FakePublisher, AsyncDatabase[Document]]


@pytest.fixture
async def make(mongodb_url: str) -> AsyncIterator[Callable[[], Awaitable[Made]]]:
    """Makes services, each over its own fresh database (dropped afterwards)."""
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_url, tz_aware=True)
    names: list[str] = []

    async def fresh_service() -> Made:
        names.append(f"t{uuid.uuid4().hex[:10]}_outcomes")
        repo = MongoOutcomesRepository(client[names[-1]])
        await repo.create_indexes()
        publisher = FakePublisher()
        return (
            OutcomesService(repo, publisher, lambda: NOW, OutcomesSettings(), id_key=ID_KEY),
            publisher,
            client[names[-1]],
        )

    yield fresh_service
    for name in names:
        await client.drop_database(name)
    await client.close()


def one(event: AnyEvent) -> Assessment:
    return Assessment.from_event(
        str(event.id), event.trustcode, event.sitecode, event.time, event.data
    )


def assessed(
    ref: str,
    timepoint: Timepoint,
    rmdq: int,
    days: float,
    *,
    event_id: uuid.UUID | None = None,
    class_id: str | None = None,
) -> AnyEvent:
    return new_event(
        PatientAssessed(
            patient_ref=ref, timepoint=timepoint, measures=Measures(rmdq=rmdq), class_id=class_id
        ),
        trustcode="RTH",
        sitecode="RTH08",
        source="/test",
        time=T0 + timedelta(days=days),
        event_id=event_id,
    )


def started(class_id: str, days: float, sessions: int) -> AnyEvent:
    return new_event(
        ClassStarted(class_id=class_id, facilitator_refs=["c-1"], planned_sessions=sessions),
        trustcode="RTH",
        sitecode="RTH08",
        source="/test",
        time=T0 + timedelta(days=days),
    )


def rollout() -> tuple[list[AnyEvent], list[AnyEvent]]:
    """(events applied before the batch, the batch): corrections, early follow-ups, ties."""
    earlier = [
        assessed("p-old", Timepoint.BASELINE, 14, 0),
        assessed("p-old", Timepoint.MONTH_3, 9, 91),
    ]
    batch = [
        assessed("p-old", Timepoint.BASELINE, 16, 0.5),  # a correction of a stored patient
        assessed("p-old", Timepoint.MONTH_12, 4, 364),
        assessed("p-old", Timepoint.BASELINE, 13, 0.25),  # older than the kept one
        started("k-1", 2, 6),
        started("k-1", 1, 4),
        started("k-2", 3, 5),
    ]
    for i in range(4):
        ref = f"p-{i}"
        batch += [
            assessed(ref, Timepoint.MONTH_3, 5 + i, 90, class_id="k-1"),  # early follow-up
            assessed(ref, Timepoint.BASELINE, 12 + i, 0),
            assessed(ref, Timepoint.BASELINE, 20 - i, 0.1),
            assessed(ref, Timepoint.GROUP_END, 8, 42),
            assessed(ref, Timepoint.GROUP_END, 7, 43),
        ]
    # Two corrections at the same instant: the greater id wins whatever the order.
    batch += [
        assessed("p-tie", Timepoint.BASELINE, b, 0, event_id=uuid.UUID(int=n))
        for b, n in ((10, 1), (11, 2))
    ]
    batch += [assessed("p-tie", Timepoint.MONTH_3, 3, 91)]
    return earlier, batch


OUTBOX = ("outbox", "outbox_at")
"""A patient's outbox: the published entries it keeps until its next write, and when they
were stored, differ between one by one and a batch by design (ibest/backbone/outbox.py)."""


async def documents(db: AsyncDatabase[Document]) -> dict[str, list[Document]]:
    return {
        name: [
            {k: v for k, v in doc.items() if k not in OUTBOX}
            async for doc in db[name].find().sort("_id")
        ]
        for name in ("assessments", "patients", "classes")
    }


async def unpublished(db: AsyncDatabase[Document], published: FakePublisher) -> list[str]:
    """The ids of outbox entries the stream does not have."""
    sent = {event_id for _, event_id in published.window}
    return [
        o["id"]
        async for doc in db["patients"].find()
        for o in doc.get("outbox", [])
        if o["id"] not in sent
    ]


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_batch_matches_one_by_one(make: Callable[[], Awaitable[Made]], seed: int) -> None:
    earlier, batch = rollout()
    rng = random.Random(seed)
    batch = batch + rng.sample(batch, 6)  # redeliveries inside the same batch
    rng.shuffle(batch)

    single, single_published, single_db = await make()
    bulk, bulk_published, bulk_db = await make()
    for event in earlier:
        await single.apply_many([event])
    await bulk.apply_many(earlier)
    for event in batch:
        await single.apply_many([event])
    await bulk.apply_many(batch)

    expected = await documents(single_db)
    assert await documents(bulk_db) == expected
    assert bulk_published.stored == single_published.stored
    assert len(expected["patients"]) == 6 and len(expected["classes"]) == 2
    assert await unpublished(bulk_db, bulk_published) == []
    assert await unpublished(single_db, single_published) == []
    tie = next(d for d in expected["patients"] if d["_id"] == "RTH/p-tie")
    assert tie["winners"]["baseline"]["event_id"] == str(uuid.UUID(int=2))

    await bulk.apply_many(batch)  # a redelivery of the whole batch changes nothing
    assert await documents(bulk_db) == expected
    assert bulk_published.stored == single_published.stored


class InterferingRepository(MongoOutcomesRepository):
    """Lets another instance write a patient between the batch's read and its write, on the
    first `interfere` reads."""

    other: OutcomesService
    interfere = 1

    async def load_many(self, keys: set[tuple[str, str]]) -> Any:
        loaded = await super().load_many(keys)
        if self.interfere:
            self.interfere -= 1  # each a later baseline, so each moves the patient on
            await self.other.apply_many(
                [assessed("p-1", Timepoint.BASELINE, 20, 5 + 1 / (1 + self.interfere))]
            )
        return loaded


@pytest.mark.parametrize("stored_before", [False, True])
async def test_a_batch_that_lost_a_race_is_read_and_applied_again(
    make: Callable[[], Awaitable[Made]],
    stored_before: bool,
) -> None:
    plain, published, db = await make()
    repo = InterferingRepository(db)
    repo.other = plain
    bulk = OutcomesService(repo, published, lambda: NOW, OutcomesSettings(), id_key=ID_KEY)
    if stored_before:
        await plain.apply_many([assessed("p-1", Timepoint.BASELINE, 12, 0)])
    batch = [assessed("p-1", Timepoint.MONTH_3, 6, 91), assessed("p-2", Timepoint.BASELINE, 9, 0)]

    await bulk.apply_many(batch)  # the first write loses to the other writer; read again

    assert repo.interfere == 0
    patient = await db["patients"].find_one({"_id": "RTH/p-1"})
    assert patient is not None and await unpublished(db, published) == []
    assert patient["winners"]["baseline"]["measures"] == {"rmdq": 20}
    outcome = state_of(patient, "RTH", "p-1").outcomes()[Timepoint.MONTH_3].to_doc()
    assert outcome["measures"]["rmdq"]["change"] == -14 and "outcomes" not in patient
    revisions = sorted(e.data.revision for e in published.stored.values())
    assert revisions == [1]


async def test_a_batch_that_keeps_losing_its_race_raises(
    make: Callable[[], Awaitable[Made]],
) -> None:
    plain, published, db = await make()
    repo = InterferingRepository(db)
    repo.other, repo.interfere = plain, OutcomesSettings().max_write_attempts
    bulk = OutcomesService(repo, published, lambda: NOW, OutcomesSettings(), id_key=ID_KEY)
    batch = [assessed("p-1", Timepoint.MONTH_3, 6, 91), assessed("p-2", Timepoint.BASELINE, 9, 0)]
    with pytest.raises(ConcurrentUpdate):  # the consumer then applies each event alone
        await bulk.apply_many(batch)
    for event in batch:
        await plain.apply_many([event])
    patient = await db["patients"].find_one({"_id": "RTH/p-1"})
    assert patient is not None and await unpublished(db, published) == []
    outcome = state_of(patient, "RTH", "p-1").outcomes()[Timepoint.MONTH_3].to_doc()
    assert outcome["measures"]["rmdq"]["change"] == -14


async def test_a_patient_document_keeps_each_fact_once_and_the_older_shape_is_read(
    make: Callable[[], Awaitable[Made]],
) -> None:
    """Issue 26: a winner is stored without what its document already says, the outcomes
    (computed from winners and revisions) are not stored; a document of the older shape
    (whole winners, an `outcomes` copy) is read alike and rewritten when next changed."""
    service, published, db = await make()
    base, m3 = assessed("p-1", Timepoint.BASELINE, 20, 0), assessed("p-1", Timepoint.MONTH_3, 6, 91)
    await service.apply_many([base, assessed("p-2", Timepoint.BASELINE, 9, 0)])
    await service.apply_many([m3, assessed("p-2", Timepoint.MONTH_3, 5, 91)])
    patient = await db["patients"].find_one({"_id": "RTH/p-1"})
    assert patient is not None and "outcomes" not in patient
    assert set(patient["winners"]["baseline"]) == {"event_id", "sitecode", "time", "measures"}
    # The `_id` says the trust and the reference: no field repeats them; no `updated_at`.
    assert {"_id", "version", "winners", "revisions"} <= set(patient)
    assert not {"trustcode", "patient_ref", "updated_at"} & set(patient)
    state, _ = await service.repo.load("RTH", "p-1")
    assert state.winners == {Timepoint.BASELINE: one(base), Timepoint.MONTH_3: one(m3)}
    refs = MongoOutcomesRepository(db).patient_refs  # `ibest purge-nhs-numbers` reads these
    found = [(where, ref) async for where, _, ref in refs.stored()]
    assert sorted(r for w, r in found if w == "patients") == ["p-1", "p-2"]

    # p-1's state as the previous version stored it (whole winners, the outcomes beside
    # them), under another patient; then its month 12.
    older = {
        "_id": "RTH/p-3",
        "trustcode": "RTH",
        "patient_ref": "p-3",
        "version": 2,
        "outbox": [],
        **state.to_doc(),
        "updated_at": NOW,
    }
    older["winners"] = {tp: {**a, "patient_ref": "p-3"} for tp, a in older["winners"].items()}
    await db["patients"].insert_one(older)
    m12 = assessed("p-3", Timepoint.MONTH_12, 2, 364)
    await service.apply_many([m12, assessed("p-2", Timepoint.MONTH_12, 1, 364)])
    [event] = [e for e in published.stored.values() if e.data.patient_ref == "p-3"]
    assert event.data.timepoint == Timepoint.MONTH_12
    assert event.data.measures["rmdq"].baseline == 20 and event.data.revision == 1
    rewritten = await db["patients"].find_one({"_id": "RTH/p-3"})
    assert rewritten is not None and "outcomes" not in rewritten
    assert set(rewritten["winners"]["month_12"]) == {"event_id", "sitecode", "time", "measures"}
    assert "patient_ref" not in rewritten["winners"]["baseline"]
    view = await service.patient("RTH", "p-3")
    assert view is not None and set(view["assessments"]) == {"baseline", "month_3", "month_12"}


async def test_a_patient_keeps_no_empty_revisions_nor_class_id_and_the_history_no_event_id(
    make: Callable[[], Awaitable[Made]],
) -> None:
    """Issue 26: a baseline alone stores no empty `revisions`, a winner no `class_id` (the
    patient view takes it from the audit history); an assessment in the audit history
    holds neither the event id its `_id` says nor a null `class_id`, and one stored in the
    older shape (both present) is read alike beside it."""
    service, _, db = await make()
    base = assessed("p-1", Timepoint.BASELINE, 20, 0)
    linked = assessed("p-1", Timepoint.MONTH_3, 6, 91, class_id="c-7")
    await service.apply_many([base])
    patient = await db["patients"].find_one({"_id": "RTH/p-1"})
    assert patient is not None and "revisions" not in patient
    await service.apply_many([linked])
    patient = await db["patients"].find_one({"_id": "RTH/p-1"})
    assert patient is not None and patient["revisions"] == {"month_3": 1}
    assert "class_id" not in patient["winners"]["month_3"]  # the audit history keeps it
    stored = await db["assessments"].find_one({"_id": f"RTH:{base.id}"})
    assert stored is not None and "event_id" not in stored and "class_id" not in stored
    kept = await db["assessments"].find_one({"_id": f"RTH:{linked.id}"})
    assert kept is not None and kept["class_id"] == "c-7" and "event_id" not in kept
    older = assessed("p-1", Timepoint.GROUP_END, 9, 40)
    await db["assessments"].insert_one(
        {"_id": f"RTH:{older.id}", **one(older).to_doc(), "received_at": NOW}
    )
    assert one(older).to_doc()["class_id"] is None  # the older shape: null stored
    history = await service.repo.history("RTH", "p-1")
    assert history == sorted([one(base), one(linked), one(older)], key=lambda a: a.timepoint.value)
    view = await service.patient("RTH", "p-1")
    assert view is not None and view["assessments"]["month_3"]["class_id"] == "c-7"
    assert view["assessments"]["month_3"] == {
        k: v for k, v in view["history"][2].items() if k not in ("timepoint", "winner")
    }
    assert [(h["event_id"], h["class_id"]) for h in view["history"]] == [
        (str(base.id), None),
        (str(older.id), None),
        (str(linked.id), "c-7"),
    ]
