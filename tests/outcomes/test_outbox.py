"""The outbox against the real database: a crash between storing and publishing loses
nothing and duplicates nothing; concurrent corrections never lose a revision."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from services.outcomes.adapters.repository import MongoOutcomesRepository
from services.outcomes.application import OutcomesService
from services.outcomes.ports import patient_key
from services.outcomes.settings import OutcomesSettings
from shared.followup import Timepoint
from shared.measures import Measure
from tests.fakes.publisher import FakePublisher
from tests.harness import ID_KEY
from tests.outcomes.test_batch import assessed, one

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
async def repo(mongodb_url: str) -> AsyncIterator[MongoOutcomesRepository]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url, tz_aware=True)
    name = f"t{uuid.uuid4().hex[:10]}_outcomes"
    repository = MongoOutcomesRepository(client[name])
    await repository.create_indexes()
    yield repository
    await client.drop_database(name)
    await client.close()


async def test_crash_before_publish_is_republished_with_the_same_id(
    repo: MongoOutcomesRepository,
) -> None:
    publisher = FakePublisher()
    service = OutcomesService(repo, publisher, lambda: T0, OutcomesSettings(), id_key=ID_KEY)
    base, m3 = assessed("p-1", Timepoint.BASELINE, 12, 0), assessed("p-1", Timepoint.MONTH_3, 6, 91)
    await service.apply_many([base])
    publisher.failures = 1
    with pytest.raises(ConnectionError):
        await service.apply_many([m3])  # stored with its outbox, then the publish failed
    pending = await repo.outbox.entries(patient_key("RTH", "p-1"))
    assert publisher.stored == {} and len(pending) == 1
    await service.apply_many([m3])  # the redelivery publishes what was pending, nothing new
    [event_id] = publisher.stored
    assert publisher.attempts == [event_id, event_id]
    assert publisher.stored[event_id].data.revision == 1
    assert await repo.outbox.entries(patient_key("RTH", "p-1")) == []


async def test_sweep_publishes_what_a_crash_left_behind(repo: MongoOutcomesRepository) -> None:
    publisher = FakePublisher()
    service = OutcomesService(repo, publisher, lambda: T0, OutcomesSettings(), id_key=ID_KEY)
    await service.apply_many([assessed("p-2", Timepoint.BASELINE, 12, 0)])
    publisher.failures = 1
    with pytest.raises(ConnectionError):
        await service.apply_many([assessed("p-2", Timepoint.MONTH_12, 3, 364)])
    assert [k for k, _ in await repo.outbox.pending(10)] == [patient_key("RTH", "p-2")]
    assert await service.sweep_once() == 1
    assert [e.data.timepoint for e in publisher.stored.values()] == [Timepoint.MONTH_12]
    assert await repo.outbox.pending(10) == []
    assert await service.sweep_once() == 0


async def test_concurrent_corrections_of_one_patient_lose_nothing(
    repo: MongoOutcomesRepository,
) -> None:
    publisher = FakePublisher()
    service = OutcomesService(repo, publisher, lambda: T0, OutcomesSettings(), id_key=ID_KEY)
    await service.apply_many([assessed("p-1", Timepoint.MONTH_3, 6, 91)])
    corrections = [assessed("p-1", Timepoint.BASELINE, 10 + i, i / 24) for i in range(8)]
    await asyncio.gather(*(service.apply_many([a]) for a in corrections))
    state, _ = await repo.load("RTH", "p-1")
    assert state.winners[Timepoint.BASELINE] == one(corrections[-1])
    revisions = sorted(e.data.revision for e in publisher.stored.values())
    assert revisions == list(range(1, len(revisions) + 1))  # no gap, no repeat
    latest = max(publisher.stored.values(), key=lambda e: e.data.revision)
    assert latest.data.measures[Measure.RMDQ].baseline == 17
    assert latest.data.revision == state.revisions[Timepoint.MONTH_3]
