"""In memory: reporting's `GenerationStore`, `Generation` and `EventHistory` ports.

The fake summarises simply: every site a batch touched is recomputed from all the entities
that may be counted there, with the same domain functions the MongoDB adapter folds its
site records with (`domain.counted`), so it gives the same summaries and monthly series
for the same facts (tests/reporting/test_store.py holds the two together).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ibest.backbone.ledger import content_digest
from services.reporting.domain.counted import Counted, EntityId, counted_of, fold_counted, merge
from services.reporting.domain.facts import ENTITY_KINDS, EntityFact, newest_time, stored_fact
from services.reporting.domain.figures import Summary
from services.reporting.domain.months import fold_months
from services.reporting.ports import Generation, SiteMonths, SummaryChanges
from shared.envelope import AnyEvent


@dataclass
class Entity:
    """An entity as the store keeps it: its facts by event id, its version and the sites of
    its placing facts."""

    kind: str
    key: str
    facts: dict[str, Any] = field(default_factory=dict)
    v: int = 0
    sites: list[str] = field(default_factory=list)
    _counted: tuple[int, list[tuple[str, EntityId, Counted]]] | None = None

    def counted(self) -> list[tuple[str, EntityId, Counted]]:
        """`domain.counted.counted_of`, computed once per version."""
        if self._counted is None or self._counted[0] != self.v:
            found = list(counted_of(self.kind, self.key, self.v, self.facts, self.sites))
            self._counted = (self.v, found)
        return self._counted[1]


class FakeGeneration:
    def __init__(self, number: int) -> None:
        self.number = number
        self.entities: dict[str, dict[str, Entity]] = {kind: {} for kind in ENTITY_KINDS}
        self.sites: dict[str, SiteMonths] = {}
        """Reported sites, in the order first reported."""
        self.shown: set[str] = set()
        self.stamps: dict[str, int] = {}
        """Per site, the number of the summary write that stored it (a change stamp)."""
        self.as_of: datetime | None = None
        self.changes = 0
        self.indexed = False

    @property
    def exists(self) -> bool:
        """Whether the adapter would hold collections for it: indexed or written, never
        merely read."""
        return self.indexed or self.as_of is not None or any(self.entities.values())

    async def create_indexes(self) -> None:
        self.indexed = True

    async def apply_many(self, facts: list[EntityFact], *, summarise: bool = True) -> None:
        touched: dict[EntityId, Entity] = {}
        for fact in facts:
            entity = self.entities[fact.entity].setdefault(fact.key, Entity(fact.entity, fact.key))
            if (fact.entity, fact.key) not in touched:
                entity.v += 1  # one write per entity and batch, like the adapter's bulk
                touched[(fact.entity, fact.key)] = entity
            entity.facts[fact.fact_id] = stored_fact(fact)
            if fact.places and fact.fact["site"] not in entity.sites:
                entity.sites.append(fact.fact["site"])
        stored = 0
        if summarise:
            sites = {site for entity in touched.values() for site, _, _ in entity.counted()}
            stored = self._summarise(sites)
        self._stamp(newest_time(facts), stored)

    async def summarise_all(self) -> int:
        sites = {
            site
            for entities in self.entities.values()
            for entity in entities.values()
            for site, _, _ in entity.counted()
        }
        self._stamp(None, self._summarise(sites))
        return len(sites)

    async def summaries(self) -> list[Summary]:
        return [doc["summary"] for doc in self.sites.values()]

    async def summaries_since(
        self, held: Mapping[str, Any], since: int | None = None
    ) -> SummaryChanges:
        found = await self.site_months_since(held)
        changed = {site: (stamp, doc["summary"]) for site, (stamp, doc) in found.changed.items()}
        return SummaryChanges(changed, found.gone)

    async def site_months_since(
        self, held: Mapping[str, Any], since: int | None = None
    ) -> SummaryChanges:
        changed = {  # a document stored without a stamp (a test's) has None, as in MongoDB
            site: (self.stamps.get(site), doc)
            for site, doc in self.sites.items()
            if held.get(site, ...) != self.stamps.get(site)
        }
        return SummaryChanges(changed, [site for site in held if site not in self.sites])

    async def site_months(self) -> list[SiteMonths]:
        return list(self.sites.values())

    def _summarise(self, sites: Iterable[str]) -> int:
        """Recompute each site from every entity that may be counted there; a site is
        reported once a placing fact names it. Return how many summaries changed."""
        wanted = set(sites)
        counts: dict[str, dict[EntityId, Counted]] = {}
        for entities in self.entities.values():
            for entity in entities.values():
                for site, entity_id, counted in entity.counted():
                    if site in wanted:
                        counts.setdefault(site, {})[entity_id] = counted
        stored = 0
        for site in sorted(wanted):
            entries = merge([], counts.get(site, {}))
            self.shown.add(site)
            self.sites[site] = {
                "_id": site,
                "summary": fold_counted(site, entries),
                "months": fold_months(e["m"] or [] for e in entries if e["c"] is not None),
            }
            self.stamps[site] = max(self.stamps.values(), default=0) + 1
            stored += 1
        return stored

    def _stamp(self, as_of: datetime | None, stored: int) -> None:
        self.changes += stored
        if as_of is not None and (self.as_of is None or as_of > self.as_of):
            self.as_of = as_of


class FakeGenerationStore:
    """The pointer: generation 1 active from the start, as the adapter's first read makes."""

    def __init__(self) -> None:
        self.generations: dict[int, FakeGeneration] = {}
        self.active = 1
        self.building: int | None = None
        self.next = 2

    def generation(self, number: int) -> FakeGeneration:
        return self.generations.setdefault(number, FakeGeneration(number))

    async def active_stamp(self) -> tuple[FakeGeneration, datetime | None, int]:
        generation = self.generation(self.active)
        return generation, generation.as_of, generation.changes

    async def writable(self) -> list[FakeGeneration]:
        numbers = [self.active, *([self.building] if self.building else [])]
        return [self.generation(n) for n in numbers]

    async def start_building(self) -> FakeGeneration:
        self.building, self.next = self.next, self.next + 1
        generation = self.generation(self.building)
        await generation.create_indexes()  # as the adapter does
        return generation

    async def switch_to(self, generation: Generation) -> int:
        if self.building != generation.number:
            raise RuntimeError(f"generation {generation.number} is no longer being built")
        previous, self.active, self.building = self.active, generation.number, None
        return previous

    async def drop_except(self, keep: Iterable[int]) -> list[str]:
        dropped = [n for n in self.generations if n not in set(keep)]
        gone = [f"g{n}" for n in dropped if self.generations[n].exists]
        for n in dropped:
            del self.generations[n]
        return gone


class FakeEventHistory:
    """A list of valid events as the stream stored them (the contract check is the NATS
    adapter's, proven by the real-server rebuild tests), each (trust, id) judged as the live
    consumer's ledger does (tests/reporting/test_history_contract.py holds it to the
    adapter); `meanwhile` runs once they are all read (what the live service does during a
    rebuild)."""

    def __init__(
        self,
        events: Iterable[AnyEvent],
        meanwhile: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.events = list(events)
        self.meanwhile = meanwhile

    async def stored(self, consumes: Iterable[str]) -> AsyncIterator[AnyEvent]:
        names = set(consumes)
        digests: dict[tuple[str, str], str] = {}
        for event in self.events:
            if event.event_type.name not in names:
                continue
            digest = content_digest(event)
            if digests.setdefault((event.trustcode, str(event.id)), digest) == digest:
                yield event  # an id its trust reused for other content is skipped
        if self.meanwhile is not None:
            await self.meanwhile()
