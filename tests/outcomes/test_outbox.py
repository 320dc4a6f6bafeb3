"""The outbox against the real database: a crash between storing and publishing loses
nothing and duplicates nothing; concurrent corrections never lose a revision."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from services.outcomes.adapters.repository import OutcomesRepository
from services.outcomes.application import OutcomesService
from services.outcomes.domain.assessments import Assessment
from services.outcomes.settings import OutcomesSettings
from shared.envelope import AnyEvent
from shared.followup import Timepoint
from shared.measures import Measure

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


class FlakyPublisher:
    """Records what reaches 'the stream'; fails the next `failures` publishes."""

    def __init__(self) -> None:
        self.failures = 0
        self.stored: dict[str, AnyEvent] = {}
        self.attempts: list[str] = []

    async def publish(self, event: AnyEvent) -> bool:
        self.attempts.append(str(event.id))
        if self.failures:
            self.failures -= 1
            raise ConnectionError("NATS unavailable (simulated crash before the ack)")
        fresh = str(event.id) not in self.stored
        self.stored.setdefault(str(event.id), event)
        return fresh


@pytest.fixture
async def repo(mongodb_url: str) -> AsyncIterator[OutcomesRepository]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url, tz_aware=True)
    name = f"t{uuid.uuid4().hex[:10]}_outcomes"
    repository = OutcomesRepository(client[name])
    await repository.create_indexes()
    yield repository
    await client.drop_database(name)
    await client.close()


def assessment(timepoint: Timepoint, rmdq: float, days: float, ref: str = "p-1") -> Assessment:
    return Assessment(str(uuid.uuid4()), "RTH", "RTH08", ref, timepoint,
                      T0 + timedelta(days=days), {Measure.RMDQ: rmdq})


async def test_crash_before_publish_is_republished_with_the_same_id(
    repo: OutcomesRepository,
) -> None:
    publisher = FlakyPublisher()
    service = OutcomesService(repo, publisher, lambda: T0, OutcomesSettings())
    base, m3 = assessment(Timepoint.BASELINE, 12, 0), assessment(Timepoint.MONTH_3, 6, 91)
    await service.assessed(base)
    publisher.failures = 1
    with pytest.raises(ConnectionError):
        await service.assessed(m3)  # stored with its outbox, then the publish failed
    assert publisher.stored == {} and len(await repo.outbox("RTH", "p-1")) == 1
    await service.assessed(m3)  # the redelivery publishes what was pending, nothing new
    [event_id] = publisher.stored
    assert publisher.attempts == [event_id, event_id]
    assert publisher.stored[event_id].data.revision == 1
    assert await repo.outbox("RTH", "p-1") == []


async def test_sweep_publishes_what_a_crash_left_behind(repo: OutcomesRepository) -> None:
    publisher = FlakyPublisher()
    service = OutcomesService(repo, publisher, lambda: T0, OutcomesSettings())
    await service.assessed(assessment(Timepoint.BASELINE, 12, 0, ref="p-2"))
    publisher.failures = 1
    with pytest.raises(ConnectionError):
        await service.assessed(assessment(Timepoint.MONTH_12, 3, 364, ref="p-2"))
    assert await repo.patients_with_outbox(10) == [("RTH", "p-2")]
    assert await service.sweep_once() == 1
    assert [e.data.timepoint for e in publisher.stored.values()] == [Timepoint.MONTH_12]
    assert await repo.patients_with_outbox(10) == []
    assert await service.sweep_once() == 0


async def test_concurrent_corrections_of_one_patient_lose_nothing(
    repo: OutcomesRepository,
) -> None:
    publisher = FlakyPublisher()
    service = OutcomesService(repo, publisher, lambda: T0, OutcomesSettings())
    await service.assessed(assessment(Timepoint.MONTH_3, 6, 91))
    corrections = [assessment(Timepoint.BASELINE, 10 + i, i / 24) for i in range(8)]
    await asyncio.gather(*(service.assessed(a) for a in corrections))
    state, _ = await repo.load("RTH", "p-1")
    assert state.winners[Timepoint.BASELINE] == corrections[-1]
    revisions = sorted(e.data.revision for e in publisher.stored.values())
    assert revisions == list(range(1, len(revisions) + 1))  # no gap, no repeat
    latest = max(publisher.stored.values(), key=lambda e: e.data.revision)
    assert latest.data.measures[Measure.RMDQ].baseline == 17
    assert latest.data.revision == state.revisions[Timepoint.MONTH_3]
