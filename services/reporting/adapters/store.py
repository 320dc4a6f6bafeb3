"""MongoDB storage of the reporting aggregates, in generations that a rebuild swaps.

Collections of generation N:
- `gN_clinicians`, `gN_patients`, `gN_classes`, `gN_notifications`: one document per
  entity: its facts by event id, a version `v` (incremented by every write of facts) and
  `sites`, the sites of its placing facts (every site it may be counted at; see
  `EntityFact.places`);
- `gN_counted`: per site, the entities counted there, each with its contribution and the
  version it was computed from (`domain.counted`), and a revision (`n`, `rev`);
- `gN_sites`: per site, the summary folded from its `gN_counted` record (what reports read)
  and the `n` of that record.
In the small `generations` collection, the pointer document `active` names the generation
readers use and, while a rebuild runs, the one being built (writers feed both); beside it,
one stamp document per generation, `gN`, holds `as_of` and `changes` (how many summaries
were stored), so a reader learns in one read which generation to use and whether its
figures moved.

A batch reads back only its own entities, computes their contributions and merges them into
the records of the sites they touch: reading a site's record costs one document, however
many entities the site counts. Exactness with several instances and after crashes: merging
keeps each entity's newest version, a record is written only if unchanged since it was read
(a writer that loses reads again and merges again), and a summary only if it comes from a
newer record than the stored one. A writer that dies between the two has not acknowledged
its events; their redelivery merges (changing nothing) and stores the summary.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime

from pymongo import ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from ibest.backbone.concurrency import ConcurrentUpdate, retry_on_conflict
from ibest.backbone.document import Document
from ibest.backbone.mongo import only_duplicate_keys
from services.reporting.domain.counted import Counted, EntityId, counted_of, fold_counted, merge
from services.reporting.domain.facts import ENTITY_KINDS, EntityFact, newest_time
from services.reporting.domain.figures import Summary
from services.reporting.domain.months import fold_months
from services.reporting.ports import Generation, SiteMonths

Counts = dict[str, dict[EntityId, Counted]]
"""Per site, the entities whose contribution there is to be merged into its record."""
POINTER = "generations"
SUMMARISE_CHUNK = 5
"""Sites a rebuild summarises per pass (bounded memory: their entities are read at once)."""
RECORD_WRITE_ATTEMPTS = 20
"""Passes over the sites whose records other writers keep storing first, before the batch
is left to redelivery (each lost write means another writer stored that site)."""


class MongoGeneration:
    """The aggregates of one generation (the `Generation` port)."""

    def __init__(self, db: AsyncDatabase[Document], number: int) -> None:
        self.number = number
        self._db = db
        self.entities = {kind: db[f"g{number}_{kind}"] for kind in ENTITY_KINDS}
        self.counted = db[f"g{number}_counted"]
        self.sites = db[f"g{number}_sites"]
        self.stamps = db[POINTER]
        self.stamp_id = f"g{number}"

    async def create_indexes(self) -> None:
        for coll in self.entities.values():
            await coll.create_index("sites")

    async def apply_many(self, facts: list[EntityFact], *, summarise: bool = True) -> None:
        """Store facts and (unless told not to: a rebuild's replay, which summarises every
        site at its end) refresh the summaries of every site they touched.

        Per entity kind: one bulk write of the facts and one read of those entities; then one
        pass over the touched sites (`store_counted`). Applying the facts one at a time gives
        the same documents (facts are keyed by event id).
        """
        by_kind: dict[str, dict[str, Document]] = {}
        for fact in facts:
            update = by_kind.setdefault(fact.entity, {}).setdefault(
                fact.key, {"$set": {}, "$inc": {"v": 1}}
            )
            update["$set"][f"facts.{fact.fact_id}"] = fact.fact
            if fact.places:
                update.setdefault("$addToSet", {"sites": {"$each": []}})["sites"]["$each"].append(
                    fact.fact["site"]
                )
        counts: Counts = {}
        for kind, entities in by_kind.items():
            coll = self.entities[kind]
            await coll.bulk_write(
                [UpdateOne({"_id": key}, update, upsert=True) for key, update in entities.items()],
                ordered=False,
            )
            if not summarise:
                continue
            async for doc in coll.find({"_id": {"$in": list(entities)}}):
                for site, entity, counted in _counted(kind, doc):
                    counts.setdefault(site, {})[entity] = counted
        stored = await self.store_counted(counts)
        await self.stamp_changes(newest_time(facts), stored)

    async def summarise(self, sites: Iterable[str]) -> int:
        """Recompute the records and summaries of `sites` from every entity that may be
        counted there (a rebuild's last step); return how many summaries were stored."""
        return await self.store_counted(await self._counted_at(sorted(set(sites))))

    async def _counted_at(self, sites: list[str]) -> Counts:
        found: Counts = {site: {} for site in sites}
        if not sites:
            return found
        for kind, coll in self.entities.items():
            async for doc in coll.find({"sites": {"$in": sites}}):
                for site, entity, counted in _counted(kind, doc):
                    if site in found:
                        found[site][entity] = counted
        return found

    async def store_counted(self, counts: Counts) -> int:
        """Merge `counts` into each site's record and store the site's summary; return how
        many summaries were stored.

        Optimistic, in bulk: read the records; merge; write each record under a new `rev`
        only if its `n` is still the one read (a missing record is created, seeded from the
        entities at its site: a site new to this generation, or one summarised before
        records existed); then write the summaries of the records this writer stored, each
        only over an older one. The sites another writer stored meanwhile raise
        `ConcurrentUpdate`, and the backbone's `retry_on_conflict` runs the pass again for
        those sites only (the others are stored and stay stored): the same read-merge-write
        on fresh records, bounded like every other compare-and-set of the platform.
        """
        pending = sorted(counts)
        stored = 0

        async def attempt() -> None:
            nonlocal pending, stored
            won, summaries = await self._merge_records(pending, counts)
            pending = [site for site in pending if site not in won]
            stored += await _write(
                self.sites,
                [
                    UpdateOne(
                        {"_id": site, "$or": [{"n": {"$lt": n}}, {"n": {"$exists": False}}]},
                        {"$set": {"n": n, "summary": summary, "months": months}},
                        upsert=True,
                    )
                    for site, (n, summary, months) in summaries.items()
                    if site in won
                ],
            )
            if pending:
                raise ConcurrentUpdate(f"{len(pending)} site record(s) changed under us")

        await retry_on_conflict(attempt, RECORD_WRITE_ATTEMPTS)
        return stored

    async def _merge_records(
        self, pending: list[str], counts: Counts
    ) -> tuple[set[str], dict[str, tuple[int, Summary, Document | None]]]:
        """One pass of `store_counted`: the sites whose record this writer stored, and the
        summary (with the record's `n` and the monthly series) of every shown site."""
        records = {d["_id"]: d async for d in self.counted.find({"_id": {"$in": pending}})}
        missing = [s for s in pending if s not in records]
        seeds = await self._counted_at(missing)
        mine = {site: uuid.uuid4().hex for site in pending}
        writes, summaries = [], {}
        for site in pending:
            record = records.get(site)
            entries = merge(
                merge(record["entities"] if record else [], seeds.get(site, {})), counts[site]
            )
            n = record["n"] + 1 if record else 1
            # A site is reported once any placing fact names it (an enrolment, a baseline,
            # a class start there), counted there now or not: which sites are listed is a
            # function of the set of events, never of their order (an older enrolment
            # arriving late lists its site as it did in live operation). Issue 25.
            shown = True
            writes.append(
                UpdateOne(
                    {"_id": site, "n": record["n"] if record else {"$exists": False}},
                    {"$set": {"n": n, "rev": mine[site], "shown": shown, "entities": entries}},
                    upsert=record is None,
                )
            )
            if shown:
                summaries[site] = (
                    n,
                    fold_counted(site, entries),
                    fold_months(e.get("m") or [] for e in entries if e["c"] is not None),
                )
        if await _write(self.counted, writes) == len(writes):
            return set(pending), summaries
        current = {
            d["_id"]: d.get("rev")
            async for d in self.counted.find({"_id": {"$in": pending}}, {"rev": 1})
        }
        return {site for site in pending if current.get(site) == mine[site]}, summaries

    async def stamp_changes(self, as_of: datetime | None, stored: int) -> None:
        """Count `stored` new summaries and move `as_of` forward, in one write.

        After the summaries, never before: a reader that sees the new count reads summaries
        at least this new (Reporting caches its view by this count). A writer that dies in
        between has not acknowledged its events; their redelivery summarises and counts again.
        """
        update: Document = {"$inc": {"changes": stored}}
        if as_of is not None:
            update["$max"] = {"as_of": as_of}
        await self.stamps.update_one({"_id": self.stamp_id}, update, upsert=True)

    async def summarise_all(self) -> int:
        """Recompute every site any entity may be counted at (after a bulk replay)."""
        sites: set[str] = set()
        for coll in self.entities.values():
            sites.update(s for s in await coll.distinct("sites") if s)
        sites.update(await self.counted.distinct("_id"))
        stored = 0
        for chunk in range(0, len(sites), SUMMARISE_CHUNK):
            stored += await self.summarise(sorted(sites)[chunk : chunk + SUMMARISE_CHUNK])
        await self.stamp_changes(None, stored)
        return len(sites)

    async def site_months(self) -> list[SiteMonths]:
        """Every reported site's summary with its monthly series (`domain.months`), read
        together so the two always come from the same record."""
        return [
            d
            async for d in self.sites.find(
                {"summary": {"$exists": True}}, {"summary": 1, "months": 1}
            )
        ]

    async def summaries(self) -> list[Summary]:
        return [
            d["summary"]
            async for d in self.sites.find({"summary": {"$exists": True}}, {"summary": 1})
        ]

    async def drop(self) -> None:
        for coll in (*self.entities.values(), self.counted, self.sites):
            await coll.drop()
        await self.stamps.delete_one({"_id": self.stamp_id})


def _counted(kind: str, doc: Document) -> Iterator[tuple[str, EntityId, Counted]]:
    """`domain.counted.counted_of` of a stored entity document."""
    return counted_of(kind, doc["_id"], doc["v"], doc["facts"], doc.get("sites", []))


async def _write(coll: AsyncCollection[Document], ops: list[UpdateOne]) -> int:
    """Apply conditional writes unordered; return how many documents they matched or
    created. An upsert that lost the race to create its document (duplicate key) counts
    as not matched, like a condition that no longer holds."""
    if not ops:
        return 0
    try:
        result = await coll.bulk_write(ops, ordered=False)
        return result.matched_count + result.upserted_count
    except BulkWriteError as exc:
        if not only_duplicate_keys(exc):
            raise
        return int(exc.details["nMatched"]) + int(exc.details["nUpserted"])


class MongoGenerationStore:
    """Chooses the generations to read and write from the pointer document (the
    `GenerationStore` port)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db
        self._pointer = db[POINTER]

    async def pointer(self) -> Document:
        """The pointer document, created (generation 1) on first use; a read when it exists."""
        found = await self._pointer.find_one({"_id": "active"})
        if found is not None:
            return found
        doc = await self._pointer.find_one_and_update(
            {"_id": "active"},
            {"$setOnInsert": {"generation": 1, "building": None, "next": 2}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert doc is not None
        return doc

    def generation(self, number: int) -> MongoGeneration:
        return MongoGeneration(self.db, number)

    async def active(self) -> MongoGeneration:
        return self.generation(int((await self.pointer())["generation"]))

    async def active_stamp(self) -> tuple[MongoGeneration, datetime | None, int]:
        """The active generation with its `as_of` and `changes`, in one read of the small
        `generations` collection (the pointer and every generation's stamp)."""
        docs = {d["_id"]: d async for d in self._pointer.find()}
        pointer = docs.get("active") or await self.pointer()
        generation = self.generation(int(pointer["generation"]))
        stamp = docs.get(generation.stamp_id, {})
        return generation, stamp.get("as_of"), int(stamp.get("changes", 0))

    async def writable(self) -> list[MongoGeneration]:
        """The active generation and, during a rebuild, the one being built."""
        doc = await self.pointer()
        numbers = [doc["generation"], *([doc["building"]] if doc.get("building") else [])]
        return [self.generation(int(n)) for n in numbers]

    async def start_building(self) -> MongoGeneration:
        """Open a fresh generation that writers feed alongside the active one from now on."""
        await self.pointer()
        doc = await self._pointer.find_one_and_update(
            {"_id": "active"}, {"$inc": {"next": 1}}, return_document=ReturnDocument.BEFORE
        )
        assert doc is not None
        number = int(doc["next"])
        await self._pointer.update_one({"_id": "active"}, {"$set": {"building": number}})
        generation = self.generation(number)
        await generation.create_indexes()
        return generation

    async def switch_to(self, generation: Generation) -> int:
        """Make `generation` the one readers use (one write: readers move over at once)."""
        before = await self._pointer.find_one_and_update(
            {"_id": "active", "building": generation.number},
            {"$set": {"generation": generation.number, "building": None}},
        )
        if before is None:
            raise RuntimeError(
                f"generation {generation.number} is no longer being built "
                "(another rebuild started); not switching"
            )
        return int(before["generation"])

    async def drop_except(self, keep: Iterable[int]) -> list[str]:
        """Drop every collection and stamp of other generations (left-overs of rebuilds)."""
        keep = list(keep)
        await self._pointer.delete_many(
            {"_id": {"$regex": r"^g\d+$", "$nin": [f"g{n}" for n in keep]}}
        )
        keep_prefixes = tuple(f"g{n}_" for n in keep)
        dropped = []
        for name in await self.db.list_collection_names():
            if (
                name.startswith("g")
                and "_" in name
                and name[1 : name.index("_")].isdigit()
                and not name.startswith(keep_prefixes)
            ):
                await self.db.drop_collection(name)
                dropped.append(name)
        return dropped
