"""Site records under a race, against the real database: a writer whose read of a site's
record went stale while another writer stored a newer one must not overwrite it, two
writers creating a site's record at once must both be counted, and a site is reported only
once something was counted there. And the in-memory fake of the store (tests/fakes) gives
the same summaries and monthly series as the real one for the same facts, so the
fake-based tests of the use cases prove what the service does."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from ibest.backbone.concurrency import ConcurrentUpdate
from ibest.backbone.settings import Settings
from services.reporting.adapters.store import (
    POINTER,
    RECORD_WRITE_ATTEMPTS,
    MongoGeneration,
    MongoGenerationStore,
)
from services.reporting.domain.facts import CLINICIANS, EntityFact, fact_of, facts_of
from services.reporting.domain.parts import DEPTHS, LEVELS, entity_hash
from services.reporting.ports import Generation
from shared.envelope import parse_event
from tests.fakes.reporting import FakeGeneration
from tests.harness import cloud_event
from tests.reporting import dataset as ds


def enrolled(ref: str, site: str = "RTH08", time: datetime | None = None) -> EntityFact:
    raw = cloud_event(
        "clinician.enrolled",
        {
            "clinician_ref": ref,
            "profession": "nurse",
            "course_version": "1",
            "contact_email": f"{ref}@example.nhs.uk",
        },
        site=site,
        time=time,
    )
    return fact_of(parse_event(None, json.dumps(raw).encode()))


class ThenMeanwhile:
    """A collection whose next `find` (or next `times` finds) yields its documents, then
    runs `meanwhile` (another writer acting after this reader has read)."""

    def __init__(
        self,
        real: AsyncCollection[dict[str, Any]],
        meanwhile: Callable[[], Awaitable[object]],
        times: int = 1,
    ) -> None:
        self.real, self.meanwhile, self.times = real, meanwhile, times

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    async def find(self, *args: Any, **kwargs: Any) -> AsyncIterator[dict[str, Any]]:
        async for doc in self.real.find(*args, **kwargs):
            yield doc
        if self.times > 0:
            self.times -= 1
            await self.meanwhile()


Database = AsyncDatabase[dict[str, Any]]


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    """A fresh reporting database, dropped afterwards."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_url, tz_aware=True)
    database = client[settings.database_of("reporting_store")]
    try:
        yield database
    finally:
        await client.drop_database(database)
        await client.close()


async def nurses(generation: MongoGeneration) -> list[dict[str, int]]:
    return [s["clinicians"]["enrolled"] for s in await generation.summaries()]


async def test_a_stale_record_never_overwrites_a_newer_one(db: Database) -> None:
    slow, other = MongoGeneration(db, 1), MongoGeneration(db, 1)
    await other.apply_many([enrolled("c-1")])
    # `slow` stores a second clinician without summarising, then summarises: after it
    # has read the site's record, `other` stores a third clinician and its record.
    await slow.apply_many([enrolled("c-2")], summarise=False)
    slow.counted = ThenMeanwhile(  # type: ignore[assignment]
        slow.counted, lambda: other.apply_many([enrolled("c-3")])
    )
    stored = await slow.summarise(["RTH08"])

    assert await nurses(other) == [{"nurse": 3}]
    assert stored == ["RTH08"]  # its first, stale write lost; the second, fresh one was stored


def same_leaf(ref: str, count: int) -> list[str]:
    """`count` other clinician refs whose entries share `ref`'s leaf of the site's parts."""
    leaf = entity_hash(CLINICIANS, ref)[:LEVELS]
    refs = (f"c-{i}" for i in range(10**6))
    return [r for r in refs if entity_hash(CLINICIANS, r)[:LEVELS] == leaf][:count]


async def test_a_writer_that_keeps_losing_leaves_its_batch_to_redelivery(db: Database) -> None:
    slow, other = MongoGeneration(db, 1), MongoGeneration(db, 1)
    refs = same_leaf("c-mine", 2 * RECORD_WRITE_ATTEMPTS + 1)
    await other.apply_many([enrolled(refs[0])])
    # Every time `slow` reads the leaf its clinician counts in, `other` stores a newer one.
    others = iter(range(1, 1000))
    real = slow.counted
    slow.counted = ThenMeanwhile(  # type: ignore[assignment]
        real, lambda: other.apply_many([enrolled(refs[next(others)])]), times=1000
    )
    mine = [enrolled("c-mine")]
    with pytest.raises(ConcurrentUpdate):
        await slow.apply_many(mine)
    # RECORD_WRITE_ATTEMPTS passes, each a read of the leaves and one of their revisions.
    assert next(others) == 2 * RECORD_WRITE_ATTEMPTS + 1
    assert await nurses(other) == [{"nurse": 2 * RECORD_WRITE_ATTEMPTS + 1}]

    slow.counted = real  # the redelivered batch, once the race is over, is counted
    await slow.apply_many(mine)
    assert await nurses(other) == [{"nurse": 2 * RECORD_WRITE_ATTEMPTS + 2}]


async def test_two_writers_creating_a_site_record_are_both_counted(db: Database) -> None:
    slow, other = MongoGeneration(db, 1), MongoGeneration(db, 1)
    first, second = same_leaf("c-1", 2)
    # `slow` finds no leaf for its clinician; before it creates one, `other` does.
    slow.counted = ThenMeanwhile(  # type: ignore[assignment]
        slow.counted, lambda: other.apply_many([enrolled(second)])
    )
    await slow.apply_many([enrolled(first)])

    assert await nurses(other) == [{"nurse": 2}]
    leaves = [d async for d in other.counted.find()]
    assert [len(leaf["e"]) for leaf in leaves] == [2]


async def test_a_site_is_reported_once_an_event_places_something_there(db: Database) -> None:
    generation = MongoGeneration(db, 1)
    # An older enrolment at RTH01 arrives after the latest one, at RTH08: RTH01 is reported
    # (with zeros), as it is when the enrolments arrive in time order (issue 25: which
    # sites are listed depends on the set of events, not on their order); a move away
    # from a site leaves it reported, with zeros.
    await generation.apply_many([enrolled("c-1", "RTH08", datetime(2025, 3, 1, tzinfo=UTC))])
    await generation.apply_many([enrolled("c-1", "RTH01", datetime(2025, 2, 1, tzinfo=UTC))])
    assert sorted(s["site"] for s in await generation.summaries()) == ["RTH01", "RTH08"]

    await generation.apply_many([enrolled("c-1", "RTH02", datetime(2025, 4, 1, tzinfo=UTC))])
    by_site = {s["site"]: s["clinicians"]["enrolled"] for s in await generation.summaries()}
    assert by_site == {"RTH01": {}, "RTH08": {}, "RTH02": {"nurse": 1}}


async def by_site(generation: Generation) -> tuple[dict[str, Any], dict[str, Any]]:
    """Its summaries and its site_months documents, each keyed by site."""
    return (
        {s["site"]: s for s in await generation.summaries()},
        {d["_id"]: d for d in await generation.site_months()},
    )


@pytest.mark.parametrize("replay", [False, True], ids=["live batches", "rebuild replay"])
async def test_the_fake_store_summarises_as_the_real_one(db: Database, replay: bool) -> None:
    # The dataset (a mover, corrections, late and duplicated events, reminders), shuffled
    # with duplicates, in batches as the live consumer applies them, or replayed unsummarised
    # then summarised at once as a rebuild does.
    facts = [f for raw, _ in ds.shuffled_with_duplicates() for f in facts_of(ds.parsed(raw))]
    real, fake = MongoGeneration(db, 1), FakeGeneration(1)
    for generation in (real, fake):
        for start in range(0, len(facts), 40):
            await generation.apply_many(facts[start : start + 40], summarise=not replay)
        if replay:
            assert await generation.summarise_all() == 4
    summaries, months = await by_site(real)
    assert sorted(summaries) == ["R0A02", "RTH01", "RTH08", "RXF01"]
    assert all(d["months"] for d in months.values())
    assert await by_site(fake) == (summaries, months)


@pytest.mark.parametrize("same_process", [True, False], ids=["same process", "restarted"])
async def test_a_writer_that_dies_between_its_leaves_and_its_site_is_mended_by_redelivery(
    db: Database, same_process: bool
) -> None:
    generation = MongoGeneration(db, 1)
    await generation.apply_many([enrolled("c-1")])

    async def dies(*_: object) -> int:
        raise RuntimeError("the writer died after storing its leaves")

    real = generation._sum_sites
    generation._sum_sites = dies  # type: ignore[method-assign,assignment]
    with pytest.raises(RuntimeError):
        await generation.apply_many([enrolled("c-2")])
    generation._sum_sites = real  # type: ignore[method-assign]
    assert await nurses(generation) == [{"nurse": 1}]  # the site does not count c-2 yet

    # The batch is redelivered: its leaves have nothing newer, the site is summed afresh.
    again = generation if same_process else MongoGeneration(db, 1)
    await again.apply_many([enrolled("c-2")])
    assert await nurses(again) == [{"nurse": 2}]
    await again.apply_many([enrolled("c-3")])  # and later batches move it incrementally
    assert await nurses(again) == [{"nurse": 3}]


async def test_a_leaf_keeps_entries_only_and_sites_are_summed_from_them(db: Database) -> None:
    """A leaf carries no sums, no entity key and no place (its site says it): the site's
    sums move by what the batch's entries changed, and when the site must be summed afresh
    they come from every entry of its leaves. A leaf stored by an earlier version, with sums
    of its own, is never read for them and loses them at its next write."""
    generation = MongoGeneration(db, 1)
    first, second, third = same_leaf("c-1", 3)
    await generation.apply_many([enrolled(first), enrolled(second)])
    [leaf] = [d async for d in generation.counted.find()]
    assert set(leaf) == {"_id", "site", "n", "rev", "e"}
    for entry in leaf["e"].values():
        assert set(entry) == {"k", "v", "c", "m"}
        assert "site" not in entry["c"] and "trust" not in entry["c"]

    # As an earlier version left it: wrong sums beside the entries, a site without its
    # exact sums (so it is summed afresh), and a writer that never saw the site.
    await generation.counted.update_one(
        {"_id": leaf["_id"]}, {"$set": {"s": {"clinicians": {"enrolled": {"nurse": 9}}}, "k": 9}}
    )
    await generation.sites.update_one({"_id": "RTH08"}, {"$unset": {"x": "", "ln": ""}})
    again = MongoGeneration(db, 1)
    await again.apply_many([enrolled(third)])
    assert await nurses(again) == [{"nurse": 3}]
    [leaf] = [d async for d in again.counted.find()]
    assert set(leaf) == {"_id", "site", "n", "rev", "e"}
    await again.apply_many([enrolled("c-4")])  # and later batches move it incrementally
    assert await nurses(again) == [{"nurse": 4}]


async def leaf_ids(generation: MongoGeneration) -> list[str]:
    return sorted([d["_id"] async for d in generation.counted.find({}, {"_id": 1})])


async def test_a_small_site_keeps_its_entities_in_one_leaf(db: Database) -> None:
    """A batch writes one document per leaf it touches: a small site's entities share one
    leaf, so a batch of them writes one; past `DEPTHS` new entities go to 16 leaves."""
    generation = MongoGeneration(db, 1)
    first = DEPTHS[0][0]
    await generation.apply_many([enrolled(f"c-{i}") for i in range(first)])
    assert await leaf_ids(generation) == ["RTH08/-"]
    await generation.apply_many([enrolled(f"c-{i}") for i in range(first, first + 40)])
    ids = await leaf_ids(generation)
    assert ids[0] == "RTH08/-" and 1 < len(ids) <= 17
    assert all(len(i.rsplit("/", 1)[1]) == 1 for i in ids[1:])
    assert await nurses(generation) == [{"nurse": first + 40}]


async def test_an_entity_two_writers_place_at_two_depths_counts_once(db: Database) -> None:
    """Two writers that judge a site's size differently place one clinician in two leaves:
    the clinician records both depths and counts at the shallower, whichever writer stores
    its leaves last, and the site summed afresh agrees."""
    large, small = MongoGeneration(db, 1), MongoGeneration(db, 1)
    large._placed["RTH08"] = 10_000  # it takes the site for a large one: 256 leaves
    t0 = datetime(2025, 3, 1, tzinfo=UTC)
    # `large` reads its clinician back; before it stores its leaves, `small` places the same
    # clinician again (a second enrolment) and stores everything.
    large.entities[CLINICIANS] = ThenMeanwhile(  # type: ignore[assignment]
        large.entities[CLINICIANS], lambda: small.apply_many([enrolled("c-1", time=t0)])
    )
    await large.apply_many([enrolled("c-1", time=t0.replace(month=2))])
    clinician = await small.entities[CLINICIANS].find_one({"_id": "c-1"})
    assert clinician is not None
    digits = entity_hash(CLINICIANS, "c-1")[:LEVELS]
    assert sorted(clinician["at"]) == ["RTH08/0", "RTH08/2"]
    assert await leaf_ids(small) == ["RTH08/-", f"RTH08/{digits}"]
    assert await nurses(small) == [{"nurse": 1}]
    deep = await small.counted.find_one({"_id": f"RTH08/{digits}"})
    assert deep is not None and [e["c"] for e in deep["e"].values()] == [None]

    await small.sites.update_one({"_id": "RTH08"}, {"$unset": {"x": "", "ln": ""}})
    again = MongoGeneration(db, 1)
    await again.apply_many([enrolled("c-2")])
    assert await nurses(again) == [{"nurse": 2}]


async def test_a_generation_made_before_adaptive_leaves_keeps_256_per_site(
    db: Database,
) -> None:
    """A pointer written by an earlier version names no adaptive generation: its entities
    record no depth and go to one of 256 leaves, as they did; a rebuild's new generation is
    adaptive."""
    store = MongoGenerationStore(db)
    await db[POINTER].insert_one({"_id": "active", "generation": 1, "building": None, "next": 2})
    [generation] = await store.writable()
    assert not generation.adaptive
    await generation.apply_many([enrolled("c-1"), enrolled("c-2")])
    digits = sorted({entity_hash(CLINICIANS, r)[:LEVELS] for r in ("c-1", "c-2")})
    assert await leaf_ids(generation) == [f"RTH08/{d}" for d in digits]
    assert "at" not in (await generation.entities[CLINICIANS].find_one({"_id": "c-1"}) or {})
    building = await store.start_building()
    assert building.adaptive
    assert [g.adaptive for g in await store.writable()] == [False, True]
