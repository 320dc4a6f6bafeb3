"""The batch use case (`apply_many`) given a whole batch, against the real database: the same
documents and derived events as applying the events one by one (each a batch of one), and a
lost race raises so the backbone falls back."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from ibest.backbone.concurrency import ConcurrentUpdate
from ibest.backbone.consumer import Handlers
from ibest.backbone.document import Document
from services.enrolment import bootstrap
from services.enrolment.adapters.repository import MongoClinicianRepository
from services.enrolment.settings import EnrolmentSettings
from shared.catalogue import catalogue as load_catalogue
from shared.envelope import AnyEvent, parse_event
from tests.fakes.publisher import FakePublisher
from tests.harness import ID_KEY, cloud_event

CATALOGUE = load_catalogue()
MODULES = list(CATALOGUE.courses[0].required_modules)
T0 = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)


def event(name: str, ref: str, minutes: int, site: str = "RTH08", **data: Any) -> AnyEvent:
    raw = cloud_event(
        name,
        {"clinician_ref": ref, **data},
        trust=site[:3],
        site=site,
        time=T0 + timedelta(minutes=minutes),
    )
    return parse_event(None, json.dumps(raw).encode())


def enrolled(ref: str, minutes: int, site: str = "RTH08", **extra: Any) -> AnyEvent:
    return event(
        "clinician.enrolled",
        ref,
        minutes,
        site,
        profession="physiotherapist",
        course_version="1",
        **extra,
    )


def module(ref: str, verb: str, module_id: str, minutes: int) -> AnyEvent:
    return event(f"module.{verb}", ref, minutes, module_id=module_id)


@pytest.fixture
async def client(mongodb_url: str) -> AsyncIterator[AsyncMongoClient[Document]]:
    c: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_url)
    yield c
    await c.close()


async def service(
    client: AsyncMongoClient[Document],
) -> tuple[AsyncDatabase[Document], Handlers, FakePublisher]:
    """The service as the runtime builds it, publishing to a fake stream that keeps every
    publish (each derived event must be published exactly once)."""
    db = client[f"t{uuid.uuid4().hex[:10]}_enrolment"]
    recorder = FakePublisher()
    built = bootstrap.build(EnrolmentSettings(), db, recorder, ID_KEY)
    await built.repository.create_indexes()
    return db, built.handlers, recorder


async def documents(db: AsyncDatabase[Document]) -> dict[str, Document]:
    """Every clinician document without `rev` (its count of writes differs by design) and
    without its outbox (the published entries a record keeps until its next write, and
    when they were stored, differ by design too: ibest/backbone/outbox.py, stamped)."""
    return {
        d["_id"]: {k: v for k, v in d.items() if k not in ("rev", "outbox", "outbox_at")}
        async for d in db["clinicians"].find({})
    }


async def unpublished(db: AsyncDatabase[Document], published: FakePublisher) -> list[str]:
    """The ids of outbox entries the stream does not have (its window: before `clear`)."""
    sent = {event_id for _, event_id in published.window}
    return [
        o["id"]
        async for d in db["clinicians"].find({})
        for o in d.get("outbox", [])
        if o["id"] not in sent
    ]


def scenario(rng: random.Random) -> tuple[list[AnyEvent], list[AnyEvent]]:
    """Events already stored, and a shuffled batch with duplicates and out-of-order events."""
    before = [
        enrolled("c-old", 0, contact_email="old@nhs.net"),
        *(module("c-old", "completed", m, 10 + i) for i, m in enumerate(MODULES[:5])),
        module("c-early", "started", MODULES[0], 3),
    ]
    batch: list[AnyEvent] = [
        *(module("c-old", "completed", m, 20 + i) for i, m in enumerate(MODULES[5:])),
        enrolled("c-old", 40, site="RNU02"),  # re-enrolment elsewhere, no email
        enrolled("c-early", 1, contact_email="early@nhs.net"),
        module("c-early", "completed", MODULES[0], 4),
        enrolled("c-new", 0),
        *(module("c-new", "completed", m, 5 + i) for i, m in enumerate(MODULES)),
        module("c-new", "started", MODULES[1], 2),
        event("clinician.intention_reported", "c-new", 60, intends_to_deliver=True, confidence=4),
        event("clinician.delivery_reported", "c-solo", 70, delivering=False, groups_delivered=0),
    ]
    batch += rng.sample(batch, 5) + rng.sample(before, 3)  # redeliveries, also of stored ones
    rng.shuffle(batch)
    return before, batch


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_batch_stores_and_publishes_what_one_by_one_does(
    client: AsyncMongoClient[Document],
    seed: int,
) -> None:
    before, batch = scenario(random.Random(seed))
    one_db, one, one_published = await service(client)
    many_db, many, many_published = await service(client)
    for e in before:
        await one.apply([e])
        await many.apply([e])
    assert one_published.sent() == many_published.sent()
    one_published.clear()
    many_published.clear()

    for e in batch:
        await one.apply([e])
    await many.apply(batch)

    stored = await documents(many_db)
    assert stored == await documents(one_db)
    assert set(stored) == {"c-old", "c-early", "c-new", "c-solo"}
    assert await unpublished(many_db, many_published) == []
    assert stored["c-old"]["state"]["status"] == "completed"
    assert stored["c-old"]["state"]["enrolment"]["sitecode"] == "RNU02"
    assert stored["c-old"]["contact"]["email"] == "old@nhs.net"
    assert stored["c-early"]["contact"]["email"] == "early@nhs.net"
    assert sorted(many_published.sent()) == sorted(one_published.sent())
    ids = [i for i, _ in many_published.sent()]
    assert len(ids) == len(set(ids))
    # The latest revisions: started by early, new and old (moved to RNU02 by its
    # re-enrolment), completed by old and new, each at the time its facts give.
    latest = many_published.latest_derived()
    assert sorted((ref, name[10:], e.sitecode) for (ref, _, name), e in latest.items()) == [
        ("c-early", "training_started", "RTH08"),
        ("c-new", "training_completed", "RTH08"),
        ("c-new", "training_started", "RTH08"),
        ("c-old", "training_completed", "RNU02"),
        ("c-old", "training_started", "RNU02"),
    ]
    assert latest[("c-new", "1", "clinician.training_started")].time == T0 + timedelta(minutes=2)

    # A redelivered batch changes nothing and publishes nothing.
    sent = len(many_published.sent())
    await many.apply(batch)
    assert await documents(many_db) == stored
    assert len(many_published.sent()) == sent


Race = Callable[[AsyncCollection[Document]], Awaitable[object]]


class Racing:
    """The clinicians collection with another writer that gets in between read and write."""

    def __init__(self, real: AsyncCollection[Document], race: Race) -> None:
        self._real = real
        self._race = race

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    async def bulk_write(self, requests: Any, **options: Any) -> Any:
        await self._race(self._real)
        return await self._real.bulk_write(requests, **options)


@pytest.mark.parametrize("race", ["update", "insert"])
async def test_a_batch_that_lost_a_race_is_read_again_or_left_to_one_by_one(
    client: AsyncMongoClient[Document],
    race: str,
) -> None:
    db, handlers, published = await service(client)
    await handlers.apply([enrolled("c-1", 0)])
    other = module("c-2", "started", MODULES[0], 1)
    batch = [module("c-1", "started", MODULES[0], 1), enrolled("c-2", 0), enrolled("c-3", 0)]

    async def update(coll: AsyncCollection[Document]) -> object:
        return await coll.update_one({"_id": "c-1"}, {"$inc": {"rev": 1}})

    async def insert(coll: AsyncCollection[Document]) -> object:
        # Another replica stores c-2's first event meanwhile.
        replica = bootstrap.build(EnrolmentSettings(), db, published, ID_KEY).handlers
        await replica.apply([other])
        return None

    bound: Any = handlers.apply  # the service's bound `apply_many`
    repository: MongoClinicianRepository = bound.__self__.repository
    repository._clinicians = Racing(db["clinicians"], update if race == "update" else insert)  # type: ignore[assignment]
    if race == "update":  # it races every attempt: the batch gives up
        with pytest.raises(ConcurrentUpdate):
            await handlers.apply(batch)
        # What the backbone does next: each event again, one by one.
        repository._clinicians = db["clinicians"]
        for e in batch:
            await handlers.apply([e])
    else:  # the other replica's write is done once: the batch is read and applied again
        await handlers.apply(batch)
    stored = await documents(db)
    facts = {ref: {f["id"] for f in doc["facts"]} for ref, doc in stored.items()}
    assert {str(e.id) for e in batch} <= {i for ids in facts.values() for i in ids}
    assert stored["c-1"]["state"]["status"] == "started"
    if race == "insert":
        assert facts["c-2"] == {str(batch[1].id), str(other.id)}
        assert stored["c-2"]["state"]["status"] == "started"
    ids = [i for i, _ in published.sent()]
    assert len(ids) == len(set(ids))
