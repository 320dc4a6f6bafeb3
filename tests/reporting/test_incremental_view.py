"""The view read incrementally (issue 26), against the real database: a long-lived reader
re-reads only the summaries (and monthly series) whose change stamp moved and moves its
totals by them; after random batches its view is a full read of every summary, and its
answers, current and monthly, a fresh reader's (a full read and sum)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from ibest.backbone.settings import Settings
from services.reporting.adapters import store as store_module
from services.reporting.adapters.store import MongoGeneration, MongoGenerationStore
from services.reporting.domain.facts import EntityFact, facts_of
from services.reporting.domain.figures import total
from services.reporting.reports import Reporting
from tests.reporting import dataset as ds
from tests.reporting.test_application import Clock
from tests.reporting.test_moved import canonical

Database = AsyncDatabase[dict[str, Any]]
SITES = ["RTH01", "RTH08", "RXF01", "RXF02", "R0A02", "RYJ01"]


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_url, tz_aware=True)
    database = client[settings.database_of("reporting_view")]
    try:
        yield database
    finally:
        await client.drop_database(database)
        await client.close()


def random_batch(rng: random.Random, serial: int) -> list[EntityFact]:
    """A few events at random sites: enrolments (some moving a clinician), training steps,
    baselines and month-3 outcomes, class starts."""
    raws = []
    for i in range(rng.randrange(1, 7)):
        site, when = rng.choice(SITES), ds._t(1, 5) + timedelta(days=rng.randrange(120))
        ref, kind = f"x{rng.randrange(12)}", rng.randrange(5)
        if kind == 0:
            raws.append(ds._enrol(f"c-{ref}", rng.choice(["nurse", "doctor"]), site, when))
        elif kind == 1:
            raws.append(ds._derived(rng.choice(["started", "completed"]), f"c-{ref}", site, when))
        elif kind == 2:
            raws.append(ds._assessed(f"p-{ref}", "baseline", site, when))
        elif kind == 3:
            after = when + timedelta(days=95)
            raws.append(
                ds._outcome(f"p-{ref}", site, when, after, serial * 10 + i + 1, rmdq=(14, 6 + i))
            )
        else:
            raws.append(ds._class(f"k-{serial}-{i}", site, when))
    return [f for raw in raws for f in facts_of(ds.parsed(raw))]


async def full_read(generation: MongoGeneration) -> list[dict[str, Any]]:
    return sorted(await generation.summaries(), key=lambda s: str(s["site"]))


async def test_the_view_read_incrementally_is_a_full_read_after_random_changes(
    db: Database,
) -> None:
    store = MongoGenerationStore(db)
    generation = await store.active()
    await generation.create_indexes()
    clock = Clock()
    live = Reporting(store, clock, [])
    rng = random.Random(26)
    moved_views = 0
    for serial in range(16):
        await generation.apply_many(random_batch(rng, serial))
        if serial % 5 == 4:
            continue  # nobody asks: the next view moves by two batches' changes
        view = await live.view()
        assert view.summaries == await full_read(generation)
        moved_views += "national" in view.shared.get("previous", {})
        fresh = Reporting(store, clock, [])
        for raw in (False, True):
            assert await live.national(raw) == await fresh.national(raw)
            assert await live.trusts(raw) == await fresh.trusts(raw)
            for trust in (None, "RTH"):  # the monthly series, read incrementally too
                months = (trust, None, raw, None, None)
                assert await live.months.report(*months) == await fresh.months.report(*months)
        assert canonical(view.national_totals()) == canonical(total(view.summaries))
    assert moved_views >= 10, "most views moved the previous one's totals"

    # A site reported no more (as when a document is removed) leaves the view too.
    await generation.sites.delete_one({"_id": "RXF02"})
    await generation.stamp_changes(None, ["RXF02"])
    view = await live.view()
    assert view.summaries == await full_read(generation)
    assert "RXF02" not in {s["site"] for s in view.summaries}
    assert await live.national(True) == await Reporting(store, clock, []).national(True)


async def test_only_the_changed_summaries_are_read_again(db: Database) -> None:
    store = MongoGenerationStore(db)
    generation = await store.active()
    rng = random.Random(8)
    await generation.apply_many([f for s in range(8) for f in random_batch(rng, s)])
    held = {d["_id"]: d.get("rev") async for d in generation.sites.find({}, {"rev": 1})}
    assert held, "the batches reported some sites"

    nothing = await generation.summaries_since(held)
    assert (nothing.changed, nothing.gone) == ({}, [])

    await generation.apply_many(
        facts_of(ds.parsed(ds._enrol("c-new", "nurse", "RTH08", ds.LATEST)))
    )
    found = await generation.summaries_since(held)
    assert list(found.changed) == ["RTH08"] and found.gone == []
    stamp, summary = found.changed["RTH08"]
    assert stamp != held["RTH08"] and summary["clinicians"]["enrolled"]["nurse"] >= 1
    months = await generation.site_months_since(held)
    assert months.changed == {
        "RTH08": (stamp, next(d for d in await generation.site_months() if d["_id"] == "RTH08"))
    }


@pytest.mark.parametrize("listed", [512, 2])
async def test_a_reader_behind_reads_the_sites_listed_since_or_every_stamp_beyond(
    db: Database, monkeypatch: pytest.MonkeyPatch, listed: int
) -> None:
    """The stamp document lists the latest stored sites: a reader a few batches behind
    reads only those (no read of every site's stamp); one further behind than the list
    reaches reads every stamp. Either way its view is a full read."""
    monkeypatch.setattr(store_module, "RECENT", listed)
    store = MongoGenerationStore(db)
    generation = await store.active()
    await generation.create_indexes()
    live = Reporting(store, Clock(), [])
    rng = random.Random(27)
    await generation.apply_many(random_batch(rng, 0))
    await live.months.report(None, None, True, None, None)  # holds a view and the series
    every_stamp = MongoGeneration._since_stamps
    read_every_stamp = 0

    async def counted(self: MongoGeneration, held: Any, fields: Any) -> Any:
        nonlocal read_every_stamp
        read_every_stamp += bool(held)  # a reader holding something read every stamp
        return await every_stamp(self, held, fields)

    monkeypatch.setattr(MongoGeneration, "_since_stamps", counted)
    for serial in range(1, 4):
        await generation.apply_many(random_batch(rng, serial))
    view = await live.view()
    assert view.summaries == await full_read(generation)
    assert await live.months.report(None, None, True, None, None) == await Reporting(
        store, Clock(), []
    ).months.report(None, None, True, None, None)
    assert read_every_stamp == (0 if listed > 100 else 2)  # the view's and the months'
