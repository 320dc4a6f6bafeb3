"""MongoDB storage of the reporting aggregates, in generations that a rebuild swaps.

Collections of generation N: `gN_clinicians`, `gN_patients`, `gN_classes`,
`gN_notifications` (one document per entity: its facts by event id, a version `v`, and its
current contribution) and `gN_sites` (per site: the summary computed for it and its
revision `rev`). In the small `generations` collection, the pointer document `active` names
the generation readers use and, while a rebuild runs, the one being built (writers feed
both); beside it, one stamp document per generation, `gN`, holds `as_of` and `changes` (how
many summaries were stored), so a reader learns in one read which generation to use and
whether its figures moved.

Exactness with several instances: an entity's contribution is written only if the entity
is unchanged since it was read (`v`), and a site summary only if no other summary of the
site was stored since its revision was read (`rev`; a writer that loses reads again), so a
slow writer can never overwrite a newer state.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pymongo import ReturnDocument, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from ..domain.facts import (
    CLASSES,
    CLINICIANS,
    CONTRIBUTION,
    ENTITY_KINDS,
    NOTIFICATIONS,
    PATIENTS,
    EntityFact,
)
from ..domain.figures import Summary, fold_site

Document = dict[str, Any]
POINTER = "generations"
SUMMARY_KINDS = (CLINICIANS, PATIENTS, CLASSES, NOTIFICATIONS)
"""Entity kinds in the order `fold_site` takes their contributions."""
SUMMARISE_CHUNK = 5
"""Sites a rebuild summarises per pass (bounded memory: their entities are read at once)."""


class Generation:
    """The aggregates of one generation."""

    def __init__(self, db: AsyncDatabase[Document], number: int) -> None:
        self.number = number
        self._db = db
        self.entities = {kind: db[f"g{number}_{kind}"] for kind in ENTITY_KINDS}
        self.sites = db[f"g{number}_sites"]
        self.stamps = db[POINTER]
        self.stamp_id = f"g{number}"

    async def create_indexes(self) -> None:
        for coll in self.entities.values():
            await coll.create_index("site")

    async def apply(self, fact: EntityFact, *, summarise: bool = True) -> set[str]:
        """Store one fact, refresh its entity's contribution; return the sites it touched."""
        return await self.apply_many([fact], summarise=summarise)

    async def apply_many(self, facts: list[EntityFact], *, summarise: bool = True) -> set[str]:
        """Store facts, refresh their entities' contributions and (unless told not to) the
        summaries of every site they touched; return those sites.

        Per entity kind: one bulk write of the facts, one read of the entities, one bulk
        write of their contributions; then each touched site is summarised once. Applying
        the facts one at a time gives the same documents (facts are keyed by event id).
        """
        by_kind: dict[str, dict[str, Document]] = {}
        for fact in facts:
            by_kind.setdefault(fact.entity, {}).setdefault(fact.key, {})[
                f"facts.{fact.fact_id}"] = fact.fact
        touched: set[str] = set()
        for kind, entities in by_kind.items():
            coll = self.entities[kind]
            await coll.bulk_write([UpdateOne({"_id": key}, {"$set": fields, "$inc": {"v": 1}},
                                             upsert=True)
                                   for key, fields in entities.items()], ordered=False)
            updates = []
            async for doc in coll.find({"_id": {"$in": list(entities)}}):
                contribution = CONTRIBUTION[kind](doc["facts"])
                site = contribution["site"] if contribution else None
                update: Document = {"$set": {"contribution": contribution, "site": site}}
                if site is not None:
                    update["$addToSet"] = {"sites": site}
                # Written only if no newer write of the entity came since this read: that
                # writer's read includes these facts and refreshes the contribution itself.
                updates.append(UpdateOne({"_id": doc["_id"], "v": doc["v"]}, update))
                # Every site the entity was ever counted at, so a move (or a crash part-way
                # through a move, redelivered) leaves the old site's summary too.
                touched.update({*doc.get("sites", []), *([site] if site else [])})
            if updates:
                await coll.bulk_write(updates, ordered=False)
        stored = await self.summarise(touched) if summarise else 0
        await self.stamp_changes(max(f.fact["t"] for f in facts), stored)
        return touched

    async def summarise(self, sites: Iterable[str]) -> int:
        """Recompute the summaries of `sites` from their entities; return how many were stored.

        Optimistic and batched: read each site's revision `rev`, then the entities of every
        site in one query per kind, then store each summary under a new unique `rev` only if
        the read one is still there (a bulk of conditional writes). A site another writer
        stored meanwhile is summarised again from a fresh read, so the last stored summary
        of a site was read after every entity write that preceded it, and an older read
        never overwrites a newer one.
        """
        pending = sorted(set(sites))
        stored = 0
        while pending:
            await self.sites.bulk_write([UpdateOne({"_id": site}, {"$setOnInsert": {"rev": None}},
                                                   upsert=True) for site in pending],
                                        ordered=False)
            read = {d["_id"]: d.get("rev") async for d in
                    self.sites.find({"_id": {"$in": pending}}, {"rev": 1})}
            found: dict[str, dict[str, list[Document]]] = {
                site: {kind: [] for kind in self.entities} for site in pending}
            for kind, coll in self.entities.items():
                async for d in coll.find({"site": {"$in": pending}},
                                         {"contribution": 1, "site": 1}):
                    found[d["site"]][kind].append(d["contribution"])
            mine = {site: uuid.uuid4().hex for site in pending}
            result = await self.sites.bulk_write([UpdateOne(
                {"_id": site, "rev": read.get(site)},
                {"$set": {"rev": mine[site], "summary": fold_site(
                    site, site[:3], *(found[site][kind] for kind in SUMMARY_KINDS))}})
                for site in pending], ordered=False)
            stored += result.modified_count
            if result.modified_count == len(pending):
                break
            pending = sorted([d["_id"] async for d in self.sites.find(
                {"_id": {"$in": pending}}, {"rev": 1}) if d.get("rev") != mine[d["_id"]]])
        return stored

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
        """Recompute every site any entity is counted at (after a bulk replay)."""
        sites: set[str] = set()
        for coll in self.entities.values():
            sites.update(s for s in await coll.distinct("site") if s)
        sites.update(await self.sites.distinct("_id"))
        stored = 0
        for chunk in range(0, len(sites), SUMMARISE_CHUNK):
            stored += await self.summarise(sorted(sites)[chunk:chunk + SUMMARISE_CHUNK])
        await self.stamp_changes(None, stored)
        return len(sites)

    async def summaries(self) -> list[Summary]:
        return [d["summary"] async for d in self.sites.find({"summary": {"$exists": True}})]

    async def drop(self) -> None:
        for coll in (*self.entities.values(), self.sites):
            await coll.drop()
        await self.stamps.delete_one({"_id": self.stamp_id})


class Store:
    """Chooses the generations to read and write from the pointer document."""

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
            upsert=True, return_document=ReturnDocument.AFTER,
        )
        assert doc is not None
        return doc

    async def active(self) -> Generation:
        return Generation(self.db, int((await self.pointer())["generation"]))

    async def active_stamp(self) -> tuple[Generation, datetime | None, int]:
        """The active generation with its `as_of` and `changes`, in one read of the small
        `generations` collection (the pointer and every generation's stamp)."""
        docs = {d["_id"]: d async for d in self._pointer.find()}
        pointer = docs.get("active") or await self.pointer()
        generation = Generation(self.db, int(pointer["generation"]))
        stamp = docs.get(generation.stamp_id, {})
        return generation, stamp.get("as_of"), int(stamp.get("changes", 0))

    async def writable(self) -> list[Generation]:
        """The active generation and, during a rebuild, the one being built."""
        doc = await self.pointer()
        numbers = [doc["generation"], *([doc["building"]] if doc.get("building") else [])]
        return [Generation(self.db, int(n)) for n in numbers]

    async def start_building(self) -> Generation:
        """Open a fresh generation that writers feed alongside the active one from now on."""
        await self.pointer()
        doc = await self._pointer.find_one_and_update(
            {"_id": "active"}, {"$inc": {"next": 1}}, return_document=ReturnDocument.BEFORE)
        assert doc is not None
        number = int(doc["next"])
        await self._pointer.update_one({"_id": "active"}, {"$set": {"building": number}})
        generation = Generation(self.db, number)
        await generation.create_indexes()
        return generation

    async def switch_to(self, generation: Generation) -> int:
        """Make `generation` the one readers use (one write: readers move over at once)."""
        before = await self._pointer.find_one_and_update(
            {"_id": "active", "building": generation.number},
            {"$set": {"generation": generation.number, "building": None}},
        )
        if before is None:
            raise RuntimeError(f"generation {generation.number} is no longer being built "
                               "(another rebuild started); not switching")
        return int(before["generation"])

    async def drop_except(self, keep: Iterable[int]) -> list[str]:
        """Drop every collection and stamp of other generations (left-overs of rebuilds)."""
        keep = list(keep)
        await self._pointer.delete_many(
            {"_id": {"$regex": r"^g\d+$", "$nin": [f"g{n}" for n in keep]}})
        keep_prefixes = tuple(f"g{n}_" for n in keep)
        dropped = []
        for name in await self.db.list_collection_names():
            if name.startswith("g") and "_" in name and name[1:name.index("_")].isdigit() \
                    and not name.startswith(keep_prefixes):
                await self.db.drop_collection(name)
                dropped.append(name)
        return dropped
