"""What the reporting use cases need from the outside world (adapters/ implements these;
tests/fakes/reporting.py implements them in memory).

Figures live in generations: readers use the active one; a rebuild fills a new one, which
writers feed alongside the active one until the rebuild switches readers to it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ibest.backbone.document import Document
from services.reporting.domain.facts import EntityFact
from services.reporting.domain.figures import Summary
from shared.envelope import AnyEvent

SiteMonths = Document
"""A reported site as the months answers read it: {"_id": sitecode, "summary": its
summary, "months": its monthly series (`domain.months.fold_months`) or None}."""


@dataclass(frozen=True)
class SummaryChanges:
    """What changed among the reported sites' summaries since a reader last read them
    (`Generation.summaries_since`)."""

    changed: dict[str, tuple[Any, Document]]
    """Per site whose summary is new or changed: its change stamp and its summary (or, from
    `site_months_since`, its `SiteMonths` document)."""
    gone: list[str]
    """Sites the reader held that are reported no more."""


class Generation(Protocol):
    """The aggregates of one generation: entities with their facts, and per site what it
    counts and its summary."""

    @property
    def number(self) -> int: ...

    async def create_indexes(self) -> None: ...

    async def apply_many(self, facts: list[EntityFact], *, summarise: bool = True) -> None:
        """Store facts (idempotent: keyed by event id) and, unless told not to, refresh the
        summary of every site they touched; then move the generation's stamp."""
        ...

    async def summarise_all(self) -> int:
        """Summarise every site any entity may be counted at; return how many sites."""
        ...

    async def summaries(self) -> list[Summary]:
        """Every reported site's summary."""
        ...

    async def summaries_since(
        self, held: Mapping[str, Any], since: int | None = None
    ) -> SummaryChanges:
        """The summaries that differ from those a reader holds (`held`: site -> the change
        stamp it read with the site's summary), each with its stamp; all of them when
        `held` is empty. Applied to what the reader holds, the result equals `summaries()`
        read at the same moment. `since`: the generation's count of changes the reader saw
        before it read what it holds (lets the store read only the sites stored since)."""
        ...

    async def site_months(self) -> list[SiteMonths]:
        """Every reported site's summary with its monthly series, from the same record."""
        ...

    async def site_months_since(
        self, held: Mapping[str, Any], since: int | None = None
    ) -> SummaryChanges:
        """As `summaries_since`, each changed site's `SiteMonths` document."""
        ...


class GenerationStore(Protocol):
    """Which generation readers use and which ones writers feed."""

    def generation(self, number: int) -> Generation:
        """Generation `number` (no I/O)."""
        ...

    async def active_stamp(self) -> tuple[Generation, datetime | None, int]:
        """The active generation with its `as_of` and its count of stored summaries (which
        moves whenever its figures do), in one read."""
        ...

    async def writable(self) -> Sequence[Generation]:
        """The active generation and, during a rebuild, the one being built."""
        ...

    async def start_building(self) -> Generation:
        """Open a fresh generation that writers feed alongside the active one from now on."""
        ...

    async def switch_to(self, generation: Generation) -> int:
        """Make `generation` the one readers use; return the one it replaced."""
        ...

    async def drop_except(self, keep: Iterable[int]) -> list[str]:
        """Drop every other generation; return what was dropped."""
        ...


class EventHistory(Protocol):
    """The events stored so far, for a rebuild."""

    def stored(self, consumes: Iterable[str]) -> AsyncIterator[AnyEvent]:
        """Every valid stored event named in `consumes`, in the order stored, as the live
        consumer would apply it (an id reused for other content is skipped; a later copy
        of an id is passed on: applying is idempotent)."""
        ...
