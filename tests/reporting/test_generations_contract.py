"""Reporting's `GenerationStore` port, held to one contract: every assertion here runs
against the in-memory fake (tests/fakes/reporting.py `FakeGenerationStore`), which the
use-case tests rebuild on, and against `MongoGenerationStore` on the real database (its
generations' figures are held to the fake by tests/reporting/test_store.py): generation 1
is active from the start; a rebuild's generation is fed with the active one until it is
switched to, which only the latest rebuild may do; the active stamp moves with the
figures; dropping the other generations leaves the kept one's figures whole."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from services.reporting.adapters.store import MongoGenerationStore
from services.reporting.ports import GenerationStore
from tests.fakes.reporting import FakeGenerationStore
from tests.harness import scratch_database
from tests.reporting.test_store import enrolled

T1 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["fake", "mongo"])
async def store(request: pytest.FixtureRequest, mongodb_url: str) -> AsyncIterator[Any]:
    if request.param == "fake":
        yield FakeGenerationStore()
        return
    async with scratch_database(mongodb_url, "reporting") as db:
        yield MongoGenerationStore(db)


async def numbers(store: GenerationStore) -> list[int]:
    return [g.number for g in await store.writable()]


async def enrolled_at(store: GenerationStore, number: int) -> list[dict[str, int]]:
    return [s["clinicians"]["enrolled"] for s in await store.generation(number).summaries()]


async def test_a_rebuild_is_fed_with_the_active_generation_and_only_the_latest_switches(
    store: GenerationStore,
) -> None:
    active, as_of, changes = await store.active_stamp()
    assert (active.number, as_of, changes) == (1, None, 0)
    assert await numbers(store) == [1]
    for generation in await store.writable():
        await generation.apply_many([enrolled("c1", time=T1)])
    active, as_of, moved = await store.active_stamp()
    assert (active.number, as_of) == (1, T1) and moved != changes

    superseded = await store.start_building()
    assert superseded.number == 2 and await numbers(store) == [1, 2]
    latest = await store.start_building()  # another rebuild started meanwhile
    assert latest.number == 3 and await numbers(store) == [1, 3]
    for generation in await store.writable():
        await generation.apply_many([enrolled("c2", time=T1)])
    with pytest.raises(RuntimeError):
        await store.switch_to(superseded)
    assert (await store.active_stamp())[0].number == 1
    assert await store.switch_to(latest) == 1
    assert (await store.active_stamp())[0].number == 3 and await numbers(store) == [3]
    with pytest.raises(RuntimeError):
        await store.switch_to(latest)  # no longer being built

    kept = await enrolled_at(store, 3)
    assert kept == [{"nurse": 1}]  # c2, fed to it (a rebuild replays the rest)
    assert await enrolled_at(store, 1) == [{"nurse": 2}]  # c1 and c2
    dropped = await store.drop_except([3])
    assert {name.split("_")[0] for name in dropped} == {"g1", "g2"}
    assert await enrolled_at(store, 1) == []
    assert await enrolled_at(store, 3) == kept
    assert await store.drop_except([3]) == []
