"""The outcomes repository port, held to one contract: every assertion here runs against the
in-memory fake (tests/fakes/outcomes.py) and against the MongoDB adapter on the real
database, so the fake-based use-case tests (test_application.py) prove what the service
does (the pattern of tests/reporting/test_store.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ibest.backbone.concurrency import ConcurrentUpdate
from ibest.backbone.document import Document
from ibest.backbone.outbox_values import OutboxEntry
from services.outcomes.adapters.repository import MongoOutcomesRepository
from services.outcomes.domain.assessments import Assessment
from services.outcomes.domain.outcomes import PatientState
from services.outcomes.ports import Commit, Loaded, OutcomesRepository
from shared.followup import Timepoint
from shared.measures import Measure
from tests.fakes.outcomes import FakeOutcomesRepository
from tests.harness import scratch_database

T0 = datetime(2026, 2, 2, 10, 0, tzinfo=UTC)


@pytest.fixture(params=["fake", "mongo"])
async def repo(request: pytest.FixtureRequest, mongodb_url: str) -> AsyncIterator[Any]:
    if request.param == "fake":
        yield FakeOutcomesRepository()
        return
    async with scratch_database(mongodb_url, "outcomes") as db:
        real = MongoOutcomesRepository(db)
        await real.create_indexes()
        yield real


def assessment(event_id: str, ref: str, timepoint: Timepoint, minutes: int = 0) -> Assessment:
    return Assessment(
        event_id=event_id,
        trustcode="RTH",
        sitecode="RTH08",
        patient_ref=ref,
        timepoint=timepoint,
        time=T0 + timedelta(minutes=minutes),
        measures={Measure.RMDQ: 12.0},
    )


def commit(ref: str, version: int | None, changes: int = 1, *ids: str) -> Commit:
    state = PatientState(winners={Timepoint.BASELINE: assessment("e1", ref, Timepoint.BASELINE)})
    entries = [OutboxEntry(id=i, name="outcome.recorded", body="{}") for i in ids]
    return Commit("RTH", ref, version, changes, state, entries)


def class_start(class_id: str, minutes: int, event_id: str, trust: str = "RTH") -> Document:
    return {
        "trustcode": trust,
        "sitecode": f"{trust}08",
        "class_id": class_id,
        "facilitator_refs": [],
        "planned_sessions": 6,
        "time": (T0 + timedelta(minutes=minutes)).isoformat(),
        "event_id": event_id,
    }


async def test_an_assessment_is_kept_once_and_history_is_in_timepoint_order(
    repo: OutcomesRepository,
) -> None:
    follow_up = assessment("e2", "p1", Timepoint.MONTH_3, minutes=5)
    base = assessment("e1", "p1", Timepoint.BASELINE)
    await repo.record_assessments([follow_up], T0)
    await repo.record_assessments([base, follow_up, base], T0)  # a redelivery changes nothing
    await repo.record_assessments([assessment("e3", "p2", Timepoint.BASELINE)], T0)
    history = await repo.history("RTH", "p1")
    assert [a.event_id for a in history] == ["e1", "e2"]
    assert history[0] == base
    assert await repo.history("RNU", "p1") == []


async def test_a_patient_is_written_only_at_the_version_it_was_read(
    repo: OutcomesRepository,
) -> None:
    assert await repo.load("RTH", "p1") == (PatientState(), None)
    await repo.commit_many([commit("p1", None, 1, "o1")])
    state, version = await repo.load("RTH", "p1")
    assert version == 1 and Timepoint.BASELINE in state.winners
    with pytest.raises(ConcurrentUpdate):
        await repo.commit_many([commit("p1", None)])  # inserted meanwhile
    with pytest.raises(ConcurrentUpdate):
        await repo.commit_many([commit("p1", 0)])  # read at a version since passed
    await repo.commit_many([commit("p1", 1, 2, "o2")])  # two events' changes in one write
    assert (await repo.load("RTH", "p1"))[1] == 3
    assert [e.id for e in await repo.outbox.entries("RTH/p1")] == ["o1", "o2"]


async def test_a_batch_is_loaded_and_committed_together_and_a_lost_race_is_raised(
    repo: OutcomesRepository,
) -> None:
    await repo.commit_many([commit("p1", None, 1, "o1")])
    loaded = await repo.load_many({("RTH", "p1"), ("RTH", "p2")})
    assert loaded[("RTH", "p2")] == Loaded(PatientState(), None, [])
    assert loaded[("RTH", "p1")].version == 1
    assert [e.id for e in loaded[("RTH", "p1")].outbox] == ["o1"]
    await repo.commit_many([commit("p1", 1), commit("p2", None)])
    assert (await repo.load("RTH", "p1"))[1] == 2 and (await repo.load("RTH", "p2"))[1] == 1
    with pytest.raises(ConcurrentUpdate):
        await repo.commit_many([commit("p1", 1), commit("p3", None)])
    await repo.commit_many([])


async def test_the_latest_start_of_a_class_wins_in_any_order(repo: OutcomesRepository) -> None:
    await repo.record_classes([class_start("c1", 10, "b")])  # one event: a batch of one
    await repo.record_classes([class_start("c1", 5, "z")])  # earlier: kept out
    await repo.record_classes([class_start("c1", 10, "a")])  # same time, smaller id: kept out
    await repo.record_classes(
        [class_start("c2", 1, "x"), class_start("c2", 3, "y"), class_start("c2", 2, "w")]
    )
    await repo.record_classes([class_start("c1", 10, "b")])  # the same start again
    await repo.record_classes([class_start("c1", 1, "q", trust="RNU")])
    found = await repo.classes("RTH", {"c1", "c2", "c9"})
    assert {cid: doc["event_id"] for cid, doc in found.items()} == {"c1": "b", "c2": "y"}
    assert set(await repo.classes("RNU", {"c1"})) == {"c1"}
