"""Every outcomes use case on in-memory fakes (no servers): fast proof of the rules; the
real-server tests prove the MongoDB adapter keeps them."""

from __future__ import annotations

import pytest

from ibest.backbone.concurrency import ConcurrentUpdate
from services.outcomes.application import OutcomesService, outcome_event_id
from services.outcomes.ports import patient_key
from services.outcomes.settings import OutcomesSettings
from shared.followup import Timepoint
from tests.fakes.outcomes import FakeOutcomesRepository
from tests.fakes.publisher import FakePublisher
from tests.harness import ID_KEY
from tests.outcomes.test_batch import NOW, assessed, rollout, started


def make() -> tuple[OutcomesService, FakeOutcomesRepository, FakePublisher]:
    repo, publisher = FakeOutcomesRepository(), FakePublisher()
    return (
        OutcomesService(repo, publisher, lambda: NOW, OutcomesSettings(), id_key=ID_KEY),
        repo,
        publisher,
    )


async def test_a_follow_up_publishes_its_outcome_once() -> None:
    service, _, publisher = make()
    await service.apply_many([assessed("p-1", Timepoint.BASELINE, 14, 0)])
    m3 = assessed("p-1", Timepoint.MONTH_3, 8, 91)
    await service.apply_many([m3])
    await service.apply_many([m3])  # a redelivery changes nothing
    [event] = publisher.published
    assert event.id == outcome_event_id(ID_KEY, "RTH", "p-1", Timepoint.MONTH_3, 1)
    assert event.data.measures["rmdq"].change == -6 and event.data.revision == 1


async def test_a_baseline_correction_publishes_a_new_revision() -> None:
    service, _, publisher = make()
    await service.apply_many([assessed("p-2", Timepoint.MONTH_3, 8, 91)])
    await service.apply_many([assessed("p-2", Timepoint.BASELINE, 14, 0)])
    await service.apply_many([assessed("p-2", Timepoint.BASELINE, 12, 0.5)])
    assert [e.data.revision for e in publisher.published] == [1, 2]
    assert publisher.published[-1].data.measures["rmdq"].baseline == 12


async def test_a_publish_failure_is_repaired_by_redelivery_or_the_sweep() -> None:
    service, repo, publisher = make()
    await service.apply_many([assessed("p-3", Timepoint.BASELINE, 14, 0)])
    publisher.failures = 1
    m3 = assessed("p-3", Timepoint.MONTH_3, 8, 91)
    with pytest.raises(ConnectionError):
        await service.apply_many([m3])
    assert len(await repo.outbox.entries(patient_key("RTH", "p-3"))) == 1
    assert await service.sweep_once() == 1
    assert await service.sweep_once() == 0
    await service.apply_many([m3])
    assert len(publisher.stored) == 1 and publisher.attempts == [*publisher.stored] * 2


async def test_lost_races_are_retried_then_left_to_redelivery() -> None:
    service, repo, _ = make()
    repo.conflicts = 5
    await service.apply_many([assessed("p-4", Timepoint.BASELINE, 14, 0)])
    assert (await repo.load("RTH", "p-4"))[1] == 1
    repo.conflicts = OutcomesSettings().max_write_attempts
    with pytest.raises(ConcurrentUpdate):
        await service.apply_many([assessed("p-4", Timepoint.MONTH_3, 8, 91)])


async def test_a_batch_ends_where_one_by_one_does() -> None:
    earlier, batch = rollout()
    (single, single_repo, single_published), (bulk, bulk_repo, bulk_published) = make(), make()
    for service in (single, bulk):
        for event in earlier:
            await service.apply_many([event])
    for event in batch:
        await single.apply_many([event])
    await bulk.apply_many(batch)
    assert bulk_repo.patients == single_repo.patients
    assert bulk_repo.class_starts == single_repo.class_starts
    assert bulk_published.stored == single_published.stored
    assert await bulk_repo.outbox.pending(100) == []


async def test_a_batch_that_loses_a_race_is_read_again_then_left_to_the_consumer() -> None:
    service, repo, publisher = make()
    batch = [assessed("p-5", Timepoint.BASELINE, 14, 0), assessed("p-5b", Timepoint.BASELINE, 9, 0)]
    repo.conflicts = len(batch) * OutcomesSettings().max_write_attempts  # every write lost
    with pytest.raises(ConcurrentUpdate):  # the consumer then applies each alone
        await service.apply_many(batch)
    assert publisher.published == [] and repo.patients == {}
    repo.conflicts = 1
    await service.apply_many([*batch, assessed("p-5", Timepoint.MONTH_3, 8, 91)])
    assert set(repo.patients) == {("RTH", "p-5"), ("RTH", "p-5b")}
    [outcome] = publisher.published
    assert outcome.data.patient_ref == "p-5" and outcome.data.revision == 1


async def test_patient_and_follow_up_views() -> None:
    service, _, _ = make()
    assert await service.patient("RTH", "nobody") is None
    assert await service.followups("RTH", "nobody") is None
    await service.apply_many([started("k-1", 0, 6)])
    await service.apply_many([assessed("p-6", Timepoint.BASELINE, 14, 1, class_id="k-1")])
    await service.apply_many([assessed("p-6", Timepoint.MONTH_3, 8, 92)])
    view = await service.patient("RTH", "p-6")
    assert view is not None and view["sitecode"] == "RTH08"
    assert set(view["outcomes"]) == {"month_3"} and view["classes"]["k-1"]["planned_sessions"] == 6
    assert [h["winner"] for h in view["history"]] == [True, True]
    schedule = await service.followups("RTH", "p-6")
    assert schedule is not None and schedule["baseline_date"] is not None
