"""What reporting stores, and documents stored by the version before it, against the real
database: a deployed platform upgrades in place, so entities, leaves and site documents in
the earlier shape (facts whole, outcomes as `{change, improved}`, a site's monthly series
stored beside its steps) must read, and merge with new writes, exactly as if the new
version had written them (the in-memory fake, which keeps no stored shape, is the oracle)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from ibest.backbone.settings import Settings
from services.reporting.adapters.store import MongoGeneration
from services.reporting.domain.facts import EntityFact, facts_of
from services.reporting.domain.parts import series_of
from services.reporting.ports import Generation
from tests.fakes.reporting import FakeGeneration
from tests.reporting import dataset as ds

Database = AsyncDatabase[dict[str, Any]]
BATCH = 40


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_url, tz_aware=True)
    database = client[settings.database_of("reporting_shapes")]
    try:
        yield database
    finally:
        await client.drop_database(database)
        await client.close()


def dataset() -> list[EntityFact]:
    """The scripted dataset (a mover, corrections, an outcome revision, late and duplicated
    events, reminders), shuffled with duplicates."""
    return [f for raw, _ in ds.shuffled_with_duplicates() for f in facts_of(ds.parsed(raw))]


async def applied(generation: Generation, facts: list[EntityFact]) -> None:
    for start in range(0, len(facts), BATCH):
        await generation.apply_many(facts[start : start + BATCH])


async def by_site(generation: Generation) -> tuple[dict[str, Any], dict[str, Any]]:
    return (
        {s["site"]: s for s in await generation.summaries()},
        {d["_id"]: d for d in await generation.site_months()},
    )


def whole(outcomes: dict[str, Any]) -> dict[str, Any]:
    """A leaf entry's outcomes as the earlier version kept them: `{change, improved}`."""
    return {
        tp: {m: {"change": pair[0], "improved": pair[1]} for m, pair in measures.items()}
        for tp, measures in outcomes.items()
    }


def earlier_step(step: list[Any]) -> list[Any]:
    """A step as the earlier version kept it: `["YYYY-MM", {count: change}, 1 or 0]`."""
    month, delta, *flag = step
    return [f"{month // 100}-{month % 100:02d}", delta, int(flag[0]) if flag else 1]


async def as_earlier_version(
    generation: MongoGeneration, facts: list[EntityFact], without_x: str
) -> None:
    """Rewrite every document of `generation` as the earlier version stored it: each fact
    whole (with its trust, its site, its kind, a revision of 1, a facilitator's class,
    measures as `{change, improved}`), leaf entries' outcomes the same and their steps
    as `["YYYY-MM", delta, 1 or 0]`, every site document with its
    monthly series (`months`) beside its steps, and `without_x` as a version before exact
    sums kept it (a summary and series, no `x`)."""
    earlier = {(f.entity, f.key, f.fact_id): f.fact for f in facts}
    for kind, coll in generation.entities.items():
        async for doc in coll.find():
            restored = {fid: earlier[(kind, doc["_id"], fid)] for fid in doc["facts"]}
            await coll.update_one({"_id": doc["_id"]}, {"$set": {"facts": restored}})
    async for leaf in generation.counted.find():
        entries = leaf["e"]
        for entry in entries.values():
            if entry["c"] and "outcomes" in entry["c"]:
                entry["c"]["outcomes"] = whole(entry["c"]["outcomes"])
            entry["m"] = [earlier_step(step) for step in entry["m"] or []] or entry["m"]
        await generation.counted.update_one({"_id": leaf["_id"]}, {"$set": {"e": entries}})
    async for site in generation.sites.find({"x": {"$exists": True}}):
        await generation.sites.update_one(
            {"_id": site["_id"]}, {"$set": {"months": series_of(site["x"]["m"])}}
        )
    await generation.sites.update_one({"_id": without_x}, {"$unset": {"x": "", "ln": ""}})


async def test_what_is_stored_says_nothing_twice(db: Database) -> None:
    """A fact keeps neither its trust (its key starts with it) nor, unless it places its
    entity, its site; an outcome is a `[change, improved]` pair, in facts and leaf entries;
    a site document keeps its steps by month, not the series they sum to."""
    facts = dataset()
    generation = MongoGeneration(db, 1)
    await applied(generation, facts)

    stored = [f async for d in generation.entities["patients"].find() for f in d["facts"].values()]
    assert stored and all("trust" not in f and "k" not in f for f in stored)
    outcomes = [f for f in stored if "measures" in f]  # the kind a patient fact does not say
    assert outcomes and {"site" in f for f in outcomes} == {False}
    assert {f.get("rev") for f in outcomes} == {None, 2}  # a revision of 1 is implied
    pairs = [o for f in outcomes for o in f["measures"].values()]
    assert pairs and all(isinstance(o, list) and len(o) == 2 for o in pairs)
    baselines = [f for f in stored if f.get("tp") == "baseline"]
    assert baselines and all("site" in f for f in baselines)  # it places the patient
    entries = [e async for leaf in generation.counted.find() for e in leaf["e"].values() if e["c"]]
    changes = [o for e in entries for m in e["c"].get("outcomes", {}).values() for o in m.values()]
    assert changes and all(isinstance(o, list) for o in changes)
    steps = [step for e in entries for step in e["m"] or []]
    assert {type(step[0]) for step in steps} == {int}  # YYYYMM
    assert {tuple(step[2:]) for step in steps} == {(), (False,)}  # a state change: no flag
    assert [202501, {"clinicians_enrolled": 1, "clinicians_started": 1}] in steps
    sites = [d async for d in generation.sites.find()]
    assert sites and all("months" not in d and "m" in d["x"] for d in sites)

    fake = FakeGeneration(1)
    await applied(fake, facts)
    assert await by_site(generation) == await by_site(fake)


async def test_documents_of_the_earlier_version_read_and_merge_as_new_ones(db: Database) -> None:
    facts = dataset()
    half = len(facts) // 2
    generation = MongoGeneration(db, 1)
    await applied(generation, facts[:half])
    await as_earlier_version(generation, facts[:half], without_x="RXF01")
    before = {d["_id"]: d.get("rev") async for d in generation.sites.find()}
    assert [d async for d in generation.sites.find({"months": {"$exists": True}})]

    upgraded = MongoGeneration(db, 1)  # the new version, started over the earlier documents
    fake = FakeGeneration(1)
    await applied(fake, facts[:half])
    assert await by_site(upgraded) == await by_site(fake)

    # Redelivered and new events merge with the earlier documents; every site written
    # since loses its stored series.
    await applied(upgraded, facts)
    await applied(fake, facts[half:])
    assert await by_site(upgraded) == await by_site(fake)
    assert await by_site(MongoGeneration(db, 1)) == await by_site(fake)
    written = [d async for d in upgraded.sites.find() if before.get(d["_id"]) != d.get("rev")]
    assert written and all("months" not in d for d in written)

    # And a rebuild's summary of every site from the earlier facts gives the same.
    assert await upgraded.summarise_all() == 4
    assert await by_site(upgraded) == await by_site(fake)
