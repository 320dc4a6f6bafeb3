"""MongoDB storage of the reporting aggregates, in generations that a rebuild swaps.

Collections of generation N:
- `gN_clinicians`, `gN_patients`, `gN_classes`, `gN_notifications`: one document per
  entity: its facts by event id (as `domain.facts.stored_fact` keeps them), a version `v`
  (incremented by every write of facts), `sites`, the sites of its placing facts (every
  site it may be counted at; see `EntityFact.places`), and `at`, the leaf depth it was
  placed at at each;
- `gN_counted`: per site, 1 to 273 leaves (`domain.parts`: one while the site is small, 16
  more while middling, 256 more beyond), each holding the entries of the entities placed
  in it: their contribution there and the version it was computed from
  (`domain.counted`), with a revision (`n`, and `rev`: the mark of its last writer);
- `gN_sites`: per site, the summary reports read, with what the exact sums it is rounded
  from hold beyond it (`x`, whose steps by month `x.m` readers fold the monthly series
  from) and the `n` of each leaf those include (`ln`).
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

import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from ibest.backbone.concurrency import ConcurrentUpdate, retry_on_conflict
from ibest.backbone.document import Document
from ibest.backbone.mongo import only_duplicate_keys, update_of
from services.reporting.domain.counted import (
    Counted,
    Entry,
    counted_of,
    stored_contribution,
    stored_steps,
)
from services.reporting.domain.facts import ENTITY_KINDS, EntityFact, newest_time, stored_fact
from services.reporting.domain.figures import Summary
from services.reporting.domain.parts import (
    LEVELS,
    combine,
    depth_for,
    entity_hash,
    entry_node,
    leaf_digits,
    leaf_node,
    part_id,
    residue,
    restored,
    series_of,
    site_figures,
)
from services.reporting.ports import Generation, SiteMonths, SummaryChanges

Placed = tuple[str, str, int]
"""An entity in the leaf it is placed in at a site: (entity kind, entity key, depth)."""
Counts = dict[str, dict[Placed, Counted]]
Move = tuple[int, int, Document | None, Document | None]
"""A leaf as a batch left it: the `n` it was found at, the `n` it is at, what its newer
entries add and what the entries they replaced took (None, None: the batch found nothing
newer for it)."""
Moves = dict[str, Move]
"""Per site, the entities whose contribution there is to be merged into its record."""
POINTER = "generations"
ADAPTIVE = "adaptive"
"""The pointer's list of the generations whose leaves are as deep as their sites' sizes ask
(`MongoGeneration.adaptive`): every generation made by this version; one made before keeps
256 leaves per site until a rebuild replaces it."""
SUMMARISE_CHUNK = 5
"""Sites a rebuild summarises per pass (bounded memory: their entities are read at once)."""
PROJECTED_ENTRIES = 5_000
"""Entries a pass reads by name from their leaves; a pass with more (a rebuild's) reads the
leaves whole."""
LEAF_SUMS = ("s", "m", "k")
"""What a leaf kept before its sums were left to its site (`k` says a leaf still has them)."""
RECORD_WRITE_ATTEMPTS = 20
"""Passes over the sites whose records other writers keep storing first, before the batch
is left to redelivery (each lost write means another writer stored that site)."""
RECENT = 512
"""How many of the latest stored summaries' sites a generation's stamp document lists (about
5 KB: every batch rewrites the whole document), so a reader a few batches behind reads only
those sites (`summaries_since`); one further behind reads every site's stamp."""
DERIVED_SERIES = ("months",)
"""What a site document of an earlier version kept beside its sums: its monthly series, the
running sum of `x.m` (`domain.parts.series_of`), rewritten for every later month whenever
an earlier one moved. Readers fold it from `x.m`; a writer unsets it at the site's next
write (`_sum_sites`)."""
SERIES_FIELDS: Document = {"summary": 1, "months": 1, "x.m": 1}
"""What `site_months` reads of a site document: its summary and what its series is folded
from (`x.m`), or, in a document of a version before `x`, the series itself (`months`)."""
SUMMARY_STAMP = "rev"
"""The field of a site document that every write of its summary sets afresh (the
compare-and-set token of `_sum_sites`): readers re-read only the summaries whose stamp
differs from the one they hold (`summaries_since`). Whatever writes a summary must renew it."""


class MongoGeneration:
    """The aggregates of one generation (the `Generation` port)."""

    def __init__(self, db: AsyncDatabase[Document], number: int, *, adaptive: bool = True) -> None:
        self.number = number
        self.adaptive = adaptive
        """Whether an entity placed at a site goes to a leaf as deep as the site's size asks
        (`domain.parts.depth_for`, recorded on the entity as `at`), or always to one of 256
        (a generation made before that: its entities record no depth)."""
        self._placed: dict[str, int] = {}
        """Placing facts this process stored per site: a site's size while it has no summary."""
        self._db = db
        self.entities = {kind: db[f"g{number}_{kind}"] for kind in ENTITY_KINDS}
        self.counted = db[f"g{number}_counted"]
        self.sites = db[f"g{number}_sites"]
        self._seeded: set[str] = set()
        self._roots: dict[str, Document] = {}
        """Site documents as this process last read or wrote them (one per site)."""
        self.stamps = db[POINTER]
        self.stamp_id = f"g{number}"

    async def create_indexes(self) -> None:
        for coll in self.entities.values():
            await coll.create_index("sites")
        await self.counted.create_index("site")

    async def apply_many(self, facts: list[EntityFact], *, summarise: bool = True) -> None:
        """Store facts and (unless told not to: a rebuild's replay, which summarises every
        site at its end) refresh the summaries of every site they touched.

        Per entity kind: one bulk write of the facts and one read of those entities; then one
        pass over the touched sites (`store_counted`). Applying the facts one at a time gives
        the same documents (facts are keyed by event id).
        """
        sizes = await self._sizes({f.fact["site"] for f in facts if f.places}, summarise)
        by_kind: dict[str, dict[str, Document]] = {}
        for fact in facts:
            update = by_kind.setdefault(fact.entity, {}).setdefault(
                fact.key, {"$set": {}, "$inc": {"v": 1}}
            )
            update["$set"][f"facts.{fact.fact_id}"] = stored_fact(fact)
            if fact.places:
                site = fact.fact["site"]
                places = update.setdefault("$addToSet", {"sites": {"$each": []}})
                places["sites"]["$each"].append(site)
                if self.adaptive:
                    depth = depth_for(sizes[site])
                    places.setdefault("at", {"$each": []})["$each"].append(f"{site}/{depth}")
                sizes[site] += 1  # a large batch at a small site fills its leaf no further
                self._placed[site] = self._placed.get(site, 0) + 1
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

    async def _sizes(self, sites: set[str], summarise: bool) -> dict[str, int]:
        """How many entities each of `sites` counts, as far as this writer knows, to choose
        the depth of the leaf an entity placed there now goes to (`depth_for`): its
        summary's sums (read once per process and kept in `_roots` for `_sum_sites`) or,
        where it has none yet, the placing facts this process stored there. Writers that
        judge a site differently may place one entity at two depths: the entity records
        both (`at`) and counts at the shallower (`_counted`)."""
        unknown = [site for site in sites if site not in self._roots]
        if self.adaptive and summarise and unknown:
            async for d in self.sites.find({"_id": {"$in": unknown}}):
                self._roots[d["_id"]] = d
        return {
            site: max(
                self._placed.get(site, 0),
                int(self._roots.get(site, {}).get("x", {}).get("k", 0)),
            )
            for site in sites
        }

    async def summarise(self, sites: Iterable[str]) -> list[str]:
        """Recompute the records and summaries of `sites` from every entity that may be
        counted there (a rebuild's last step); return the sites whose summaries were stored."""
        return await self.store_counted(await self._counted_at(sorted(set(sites))), seeded=True)

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

    async def store_counted(self, counts: Counts, *, seeded: bool = False) -> list[str]:
        """Merge `counts` into the sites' parts (`domain.parts`) and store the summaries of
        the sites whose figures moved; return those sites.

        Two passes, each one read and one bulk of conditional writes, bottom up:
        1. leaves (`gN_counted`): merge the entries (newest version wins) and write only
           the changed entries (`update_of`) under a compare-and-set on the leaf's `n`; a
           leaf another writer stored first is read and merged again
           (`retry_on_conflict`). A leaf keeps entries only, no sums: each write yields
           the move it makes (what its newer entries add less what they replaced);
        2. sites (`gN_sites`, the summaries reports read): the site's exact sums moved by
           those moves, or summed afresh from every entry of its leaves when the site
           document does not record the leaves at the `n` the moves started from
           (`_sum_sites`), again writing only what changed.
        A site this generation never had is first seeded from the entities whose `sites`
        name it (a new site, a rebuild's live writes, or an upgrade from one record per
        site). Every write is bounded by what the batch changed, not by the site's size.
        """
        if not counts:
            return []
        if not seeded:
            await self._seed(counts)
        leaves: dict[str, dict[str, Entry]] = {}
        for site, entities in counts.items():
            for (kind, key, depth), counted in entities.items():
                digest = entity_hash(kind, key)
                leaves.setdefault(part_id(site, leaf_digits(digest, depth)), {})[digest] = _entry(
                    kind, counted
                )
        moves = await self._store_leaves(leaves)
        stored = await self._sum_sites(sorted(counts), moves)
        self._seeded.update(counts)
        return stored

    async def _seed(self, counts: Counts) -> None:
        """Add to `counts` every entity that may be counted at a site this generation has
        not summarised in parts yet (its root has no stamp `w`)."""
        unknown = [site for site in counts if site not in self._seeded]
        if not unknown:
            return
        known = {
            d["_id"]
            async for d in self.sites.find(
                {"_id": {"$in": unknown}, "w": {"$exists": True}}, {"_id": 1}
            )
        }
        self._seeded.update(known)
        missing = [site for site in unknown if site not in known]
        for site, found in (await self._counted_at(missing)).items():
            mine = counts[site]
            for entity, counted in found.items():
                if entity not in mine or mine[entity].v < counted.v:
                    mine[entity] = counted

    async def _store_leaves(self, leaves: dict[str, dict[str, Entry]]) -> Moves:
        """Merge entries into their leaves, compare-and-set on each leaf's `n`.

        A leaf is read without its other entries (a projection of the batch's own) and
        keeps no sums of its own: what the batch moves the site by is what the newer
        entries add less what the entries they replace took, exactly
        (`domain.parts.combine`), so the read and the write stay the size of the batch's
        share of the leaf, whatever the leaf holds."""
        pending = sorted(leaves)
        moves: Moves = {}

        async def attempt() -> None:
            nonlocal pending
            wanted = {f"e.{digest}": 1 for leaf in pending for digest in leaves[leaf]}
            projection = {**dict.fromkeys(("n", "rev", "k"), 1), **wanted}
            stored = {
                d["_id"]: d
                async for d in self.counted.find(
                    {"_id": {"$in": pending}},
                    projection if len(wanted) <= PROJECTED_ENTRIES else None,
                )
            }
            mine = {leaf: revision() for leaf in pending}
            writes = []
            tried: Moves = {}
            for leaf in pending:
                old = stored.get(leaf)
                have = (old or {}).get("e", {})
                newer = {
                    digest: entry
                    for digest, entry in leaves[leaf].items()
                    if digest not in have or have[digest]["v"] < entry["v"]
                }
                if old is not None and not newer:
                    mine[leaf] = old.get("rev", "")  # nothing new: already as merged
                    tried[leaf] = (int(old["n"]), int(old["n"]), None, None)
                    continue
                site = leaf.rsplit("/", 1)[0]
                replaced = {digest: have[digest] for digest in newer if digest in have}
                base: Document = {"e": replaced} if old is not None else {}
                if old is not None and "k" in old:
                    # A leaf of an earlier version kept its sums (`s`, `m`, `k`): dropped.
                    base.update(dict.fromkeys(LEAF_SUMS))
                new = {"e": newer} if old is not None else {"site": site, "e": newer}
                n = old["n"] + 1 if old else 1
                tried[leaf] = (
                    n - 1,
                    n,
                    combine(entry_node(site, entry) for entry in newer.values()),
                    combine(entry_node(site, entry) for entry in replaced.values()),
                )
                writes.append(
                    UpdateOne(
                        {"_id": leaf, "n": old["n"] if old else {"$exists": False}},
                        update_of(base, new, {"n": n, "rev": mine[leaf]}),
                        upsert=old is None,
                    )
                )
            if await _write(self.counted, writes) == len(writes):
                moves.update(tried)
                pending = []
                return
            current = {
                d["_id"]: d.get("rev")
                async for d in self.counted.find({"_id": {"$in": pending}}, {"rev": 1})
            }
            moves.update((leaf, tried[leaf]) for leaf in pending if current.get(leaf) == mine[leaf])
            pending = [leaf for leaf in pending if current.get(leaf) != mine[leaf]]
            if pending:
                raise ConcurrentUpdate(f"{len(pending)} counted part(s) changed under us")

        await retry_on_conflict(attempt, RECORD_WRITE_ATTEMPTS)
        return moves

    async def _sum_sites(self, sites: list[str], moves: Moves) -> list[str]:
        """Store each site's summary and monthly series, the sum of its leaves, writing only
        what changed; return how many summaries were stored.

        A site document keeps its exact sums (`x`: of `s`, only what its summary cannot
        say, `domain.parts.residue`) and the `n` of each leaf they include (`ln`; `w` their
        total). Where `ln` holds, for every leaf this batch touched, the `n` the batch
        found it at, the sums move by what the batch's leaf writes moved (what their newer
        entries add less what they replaced), with no read of the site's leaves; otherwise
        (a writer that died between its leaves and the site, another that got there first,
        a site without `x`) they are summed afresh from every entry of its leaves. Either
        way the stored sums are always the sum of the leaves at the `n` recorded beside
        them, and the last writer of a leaf records its final `n`. A compare-and-set on
        `rev` makes each write apply to the document it was computed from. The site
        documents this process last read or wrote are kept (`_roots`, one per site); a
        stale copy's write matches nothing and is read afresh."""
        by_site: dict[str, dict[str, Move]] = {}
        for leaf, move in moves.items():
            site, digits = leaf.rsplit("/", 1)
            by_site.setdefault(site, {})[digits] = move
        pending = sites
        stored: list[str] = []

        async def attempt() -> None:
            nonlocal pending
            unknown = [site for site in pending if site not in self._roots]
            if unknown:
                async for d in self.sites.find({"_id": {"$in": unknown}}):
                    self._roots[d["_id"]] = d
            sums: dict[str, tuple[Document, dict[str, int]]] = {}
            afresh = []
            for site in pending:
                moved = _moved(self._roots.get(site), by_site.get(site, {}))
                if moved is None:
                    afresh.append(site)
                else:
                    sums[site] = moved
            if afresh:
                children: dict[str, list[Document]] = {site: [] for site in afresh}
                async for d in self.counted.find(
                    {"site": {"$in": afresh}}, {"n": 1, "site": 1, "e": 1}
                ):
                    children[d["site"]].append(d)
                for site, found in children.items():
                    ln = {d["_id"].rsplit("/", 1)[1]: int(d["n"]) for d in found}
                    entries = (entry for d in found for entry in d.get("e", {}).values())
                    sums[site] = (leaf_node(site, entries), ln)
            mine = {site: revision() for site in pending}
            writes, after = [], {}
            for site in pending:
                old = self._roots.get(site)
                x, ln = sums[site]
                summary, _, _ = site_figures(site, [x])
                # A site is reported once any placing fact names it (an enrolment, a
                # baseline, a class start there), counted there now or not: which sites are
                # listed is a function of the set of events, never of their order (an older
                # enrolment arriving late lists its site as it did in live operation).
                # Its monthly series is not stored: readers fold it from `x.m` (`_series`).
                new: Document = {
                    "shown": True,
                    "x": {**x, "s": residue(x["s"])},
                    "ln": ln,
                    "summary": summary,
                }
                if old is not None and all(old.get(k) == v for k, v in new.items()):
                    continue  # nothing moved
                base = {k: old[k] for k in (*new, *DERIVED_SERIES) if k in old} if old else {}
                always = {"w": sum(ln.values()), "rev": mine[site]}
                writes.append(
                    UpdateOne(
                        {"_id": site, "rev": old.get("rev", {"$exists": False})}
                        if old is not None
                        else {"_id": site, "rev": {"$exists": False}},
                        update_of(base, new, always),
                        upsert=old is None,
                    )
                )
                kept = {k: v for k, v in (old or {"_id": site}).items() if k not in DERIVED_SERIES}
                after[site] = {**kept, **new, **always}
            if await _write(self.sites, writes) == len(writes):
                won = set(after)
            else:
                won = {
                    d["_id"]
                    async for d in self.sites.find(
                        {"_id": {"$in": list(after)}, "rev": {"$in": list(mine.values())}},
                        {"_id": 1},
                    )
                }
            for site in after:
                if site in won:
                    self._roots[site] = after[site]
                    if after[site]["shown"]:
                        stored.append(site)
                else:
                    self._roots.pop(site, None)  # read afresh next time
            pending = [site for site in pending if site in after and site not in won]
            if pending:
                raise ConcurrentUpdate(f"{len(pending)} site summaries changed under us")

        await retry_on_conflict(attempt, RECORD_WRITE_ATTEMPTS)
        return stored

    async def stamp_changes(self, as_of: datetime | None, stored: Sequence[str]) -> None:
        """Count the summaries just stored (of the sites `stored`), list those sites last
        in `recent` (the latest `RECENT`), and move `as_of` forward, in one write.

        After the summaries, never before: a reader that sees the new count reads summaries
        at least this new (Reporting caches its view by this count), and the last `changes
        - c` sites of `recent` are every site stored since the count was `c`
        (`summaries_since`). A writer that dies in between has not acknowledged its events;
        their redelivery summarises and counts again.
        """
        update: Document = {"$inc": {"changes": len(stored)}}
        if stored:
            update["$push"] = {"recent": {"$each": list(stored), "$slice": -RECENT}}
        if as_of is not None:
            update["$max"] = {"as_of": as_of}
        await self.stamps.update_one({"_id": self.stamp_id}, update, upsert=True)

    async def summarise_all(self) -> int:
        """Recompute every site any entity may be counted at (after a bulk replay)."""
        sites: set[str] = set()
        for coll in self.entities.values():
            sites.update(s for s in await coll.distinct("sites") if s)
        sites.update(await self.sites.distinct("_id"))
        stored: list[str] = []
        for chunk in range(0, len(sites), SUMMARISE_CHUNK):
            stored += await self.summarise(sorted(sites)[chunk : chunk + SUMMARISE_CHUNK])
        await self.stamp_changes(None, stored)
        return len(sites)

    async def site_months(self) -> list[SiteMonths]:
        """Every reported site's summary with its monthly series (`domain.months`), read
        together so the two always come from the same record."""
        return [
            _series(d) async for d in self.sites.find({"summary": {"$exists": True}}, SERIES_FIELDS)
        ]

    async def summaries(self) -> list[Summary]:
        return [
            d["summary"]
            async for d in self.sites.find({"summary": {"$exists": True}}, {"summary": 1})
        ]

    async def summaries_since(
        self, held: Mapping[str, Any], since: int | None = None
    ) -> SummaryChanges:
        """The summaries whose stamp (`SUMMARY_STAMP`) differs from the one `held` has for
        their site, and the held sites reported no more (`_since`)."""
        found = await self._since(held, {"summary": 1}, since)
        changed = {site: (stamp, doc["summary"]) for site, (stamp, doc) in found.changed.items()}
        return SummaryChanges(changed, found.gone)

    async def site_months_since(
        self, held: Mapping[str, Any], since: int | None = None
    ) -> SummaryChanges:
        """As `summaries_since`, each changed site as `site_months` reads it (its summary
        and monthly series, from the same document)."""
        found = await self._since(held, SERIES_FIELDS, since)
        changed = {site: (stamp, _series(doc)) for site, (stamp, doc) in found.changed.items()}
        return SummaryChanges(changed, found.gone)

    async def _since(
        self, held: Mapping[str, Any], fields: Document, since: int | None
    ) -> SummaryChanges:
        """The reported site documents (`fields` of them) whose stamp differs from `held`'s.

        When the reader says at which count of changes it read what it holds (`since`) and
        the stamp document still lists every site stored since (`recent`), only those are
        read: two small reads. Otherwise two reads: every site document's stamp (a few
        dozen bytes each: no summary decoded; on SecantusDB about 170 ms for 2,000 sites),
        then the changed ones by id. Decoding 2,000 summaries costs 100 - 270 ms of CPU
        (docs/performance.md); a batch changes a few. A document comes with the stamp it
        was stored with (the same read), so one stored in between is held with its own
        stamp: never missed, at worst read again."""
        if held and since is not None:
            listed = await self._stored_since(since)
            if listed is not None:
                changed: dict[str, tuple[Any, Document]] = {}
                query = {"_id": {"$in": sorted(listed)}, "summary": {"$exists": True}}
                async for d in self.sites.find(query, {**fields, SUMMARY_STAMP: 1}):
                    changed[d["_id"]] = (d.pop(SUMMARY_STAMP, None), d)
                return SummaryChanges(
                    changed, [s for s in listed if s in held and s not in changed]
                )
        return await self._since_stamps(held, fields)

    async def _stored_since(self, since: int) -> set[str] | None:
        """The sites whose summaries were stored since the count of changes was `since`, or
        None when the stamp document no longer lists them all."""
        stamp = await self.stamps.find_one({"_id": self.stamp_id}, {"changes": 1, "recent": 1})
        recent: list[str] = list((stamp or {}).get("recent") or [])
        behind = int((stamp or {}).get("changes", 0)) - since
        if behind < 0 or behind > len(recent):
            return None
        return set(recent[len(recent) - behind :]) if behind else set()

    async def _since_stamps(self, held: Mapping[str, Any], fields: Document) -> SummaryChanges:
        reported: Document = {"summary": {"$exists": True}}
        stamps: dict[str, Any] = {}
        if held:
            async for d in self.sites.find({}, {SUMMARY_STAMP: 1}):
                stamps[d["_id"]] = d.get(SUMMARY_STAMP)
            ids = [site for site, stamp in stamps.items() if held.get(site, ...) != stamp]
            reported = {**reported, "_id": {"$in": ids}} if ids else {}
        changed: dict[str, tuple[Any, Document]] = {}
        if reported:
            async for d in self.sites.find(reported, {**fields, SUMMARY_STAMP: 1}):
                changed[d["_id"]] = (d.pop(SUMMARY_STAMP, None), d)
        # Held and not changed: gone when unlisted, or listed as changed but no longer
        # reported by the time of the second read.
        gone = [s for s in held if s not in changed and stamps.get(s, ...) != held[s]]
        return SummaryChanges(changed, gone)

    async def drop(self) -> None:
        self._seeded.clear()
        self._roots.clear()
        self._placed.clear()
        for coll in (*self.entities.values(), self.counted, self.sites):
            await coll.drop()
        await self.stamps.delete_one({"_id": self.stamp_id})


def _series(doc: Document) -> SiteMonths:
    """A site document as `site_months` answers it: `{_id, summary, months}`, its series
    folded from its steps by month (`x.m`) or, a document of a version before `x`, as it
    stored it."""
    x = doc.pop("x", None)
    if x is not None and "m" in x:
        doc["months"] = series_of(x["m"])
    return doc


def _counted(kind: str, doc: Document) -> Iterator[tuple[str, Placed, Counted]]:
    """`domain.counted.counted_of` of a stored entity document, in the leaves it is placed
    in: at each site, every depth it recorded there (`at`; none recorded: the deepest), its
    contribution at the shallowest and none at the others, so an entity two writers placed
    at two depths counts once, as an entity that moved counts at one site."""
    depths: dict[str, set[int]] = {}
    for place in doc.get("at", []):
        site, depth = place.rsplit("/", 1)
        depths.setdefault(site, set()).add(int(depth))
    for site, (kind_, key), counted in counted_of(
        kind, doc["_id"], doc["v"], doc["facts"], doc.get("sites", [])
    ):
        here = depths.get(site) or {LEVELS}
        lowest = min(here)
        for depth in sorted(here):
            yield (
                site,
                (kind_, key, depth),
                counted if depth == lowest else Counted(counted.v, None, None),
            )


PLACE = ("trust", "site")
"""What a contribution says of its place, which its leaf says already: not stored in it."""


def _entry(kind: str, counted: Counted) -> Entry:
    """An entity's entry as its leaf stores it (`domain.counted.Entry` without `id`: its
    field name in the leaf is its hash, and nothing reads the key back), its contribution
    without its place (the leaf's site; `fold_counted` takes the place from the site), its
    outcomes as pairs and its steps compact (`domain.counted.stored_steps`)."""
    contribution = stored_contribution(counted.contribution)
    if contribution is not None:
        contribution = {k: v for k, v in contribution.items() if k not in PLACE}
    return {"k": kind, "v": counted.v, "c": contribution, "m": stored_steps(counted.months)}


def _moved(root: Document | None, moves: dict[str, Move]) -> tuple[Document, dict[str, int]] | None:
    """A site's sums moved by its leaves' `moves` (leaf digits -> move), or None when its
    document does not record every moved leaf at the `n` the move started from."""
    if root is None or "x" not in root or "ln" not in root or "summary" not in root:
        return None
    ln = dict(root["ln"])
    plus, minus = [], []
    for digits, (start, end, added, taken) in moves.items():
        have = ln.get(digits, 0)
        if have >= end:
            continue  # the site already includes this leaf at least this new
        if have != start or added is None or taken is None:
            return None
        plus.append(added)
        minus.append(taken)
        ln[digits] = end
    # The site keeps only what its summary cannot say of its exact sums (`residue`).
    x = {**root["x"], "s": restored(root["summary"], root["x"].get("s", {}))}
    if not plus:
        return x, ln
    return combine([x, *plus], minus), ln


def revision() -> int:
    """A write's mark on the document it wrote (`rev`), to learn after an unordered bulk of
    compare-and-sets which of them won: 63 random bits, a BSON int64 (8 bytes where a UUID's
    hex took 33; two writers of one document at one `n` draw the same one 2^-63 of the time)."""
    return secrets.randbits(63)


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
        self._generations: dict[int, MongoGeneration] = {}

    async def pointer(self) -> Document:
        """The pointer document, created (generation 1) on first use; a read when it exists."""
        found = await self._pointer.find_one({"_id": "active"})
        if found is not None:
            return found
        doc = await self._pointer.find_one_and_update(
            {"_id": "active"},
            {"$setOnInsert": {"generation": 1, "building": None, "next": 2, ADAPTIVE: [1]}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert doc is not None
        return doc

    def generation(self, number: int) -> MongoGeneration:
        """Generation `number`, the same object every time (it keeps what it learnt of its
        sites: which are seeded, their documents as last written)."""
        if number not in self._generations:
            self._generations[number] = MongoGeneration(self.db, number)
        return self._generations[number]

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
        generations = [self.generation(int(n)) for n in numbers]
        for generation in generations:
            generation.adaptive = generation.number in doc.get(ADAPTIVE, [])
        return generations

    async def start_building(self) -> MongoGeneration:
        """Open a fresh generation that writers feed alongside the active one from now on."""
        await self.pointer()
        doc = await self._pointer.find_one_and_update(
            {"_id": "active"}, {"$inc": {"next": 1}}, return_document=ReturnDocument.BEFORE
        )
        assert doc is not None
        number = int(doc["next"])
        await self._pointer.update_one(
            {"_id": "active"}, {"$set": {"building": number}, "$addToSet": {ADAPTIVE: number}}
        )
        generation = self.generation(number)
        generation.adaptive = True
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
        self._generations = {n: g for n, g in self._generations.items() if n in keep}
        pointer = await self.pointer()
        await self._pointer.update_one(
            {"_id": "active"},
            {"$set": {ADAPTIVE: [n for n in pointer.get(ADAPTIVE, []) if n in keep]}},
        )
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
