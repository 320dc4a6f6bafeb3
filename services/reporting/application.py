"""The reporting service's write use cases: apply events to the aggregates, rebuild them.

Every consumed event becomes facts of its entities (domain.facts), stored in every
generation being written; a rebuild replays the stored events into a fresh generation and
switches readers to it. The reports (reports.py) read what these store.
"""

from __future__ import annotations

import logging

from services.reporting.declaration import DECLARATION
from services.reporting.domain.facts import CONSUMES, EntityFact, facts_of
from services.reporting.ports import EventHistory, GenerationStore
from shared.envelope import AnyEvent

log = logging.getLogger(__name__)
NAME = DECLARATION.name
REBUILD_CHUNK = 1000
"""Facts a rebuild stores per bulk write (bounded memory, few round trips)."""


class ReportingService:
    """What the handlers and the `ibest reporting rebuild` command use."""

    def __init__(self, store: GenerationStore) -> None:
        self.store = store

    async def apply_many(self, events: list[AnyEvent]) -> None:
        """Store a batch's facts with bulk writes, summarising each touched site once
        (idempotent; one event is a batch of one)."""
        facts = [fact for event in events for fact in facts_of(event)]
        for generation in await self.store.writable():
            await generation.apply_many(facts)

    async def rebuild(self, history: EventHistory) -> dict[str, int]:
        """Replay the stored events into a fresh generation and switch readers to it.

        The new generation is opened before the history is read, so every event stored
        later is applied by the live consumer to both generations; every earlier one is
        replayed here. Nothing is lost between the replay and the switch.
        """
        generation = await self.store.start_building()
        replayed = 0
        chunk: list[EntityFact] = []
        async for event in history.stored(CONSUMES):
            chunk.extend(facts_of(event))
            replayed += 1
            if len(chunk) >= REBUILD_CHUNK:
                await generation.apply_many(chunk, summarise=False)
                chunk = []
        if chunk:
            await generation.apply_many(chunk, summarise=False)
        sites = await generation.summarise_all()
        previous = await self.store.switch_to(generation)
        dropped = await self.store.drop_except([generation.number])
        log.info(
            "reporting rebuilt: generation %d replaced %d (%d events, %d sites, "
            "%d collections dropped)",
            generation.number,
            previous,
            replayed,
            sites,
            len(dropped),
        )
        return {
            "generation": generation.number,
            "previous": previous,
            "events": replayed,
            "sites": sites,
        }
