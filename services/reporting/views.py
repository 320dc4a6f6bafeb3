"""The view of the figures that reports read, and the answers computed from it.

Reports read the active generation's site summaries only (one document per site), so their
cost grows with the number of sites, never with the history of events. One view is kept
and read again only when the figures moved; every answer is a pure function of the view,
so it is computed once per view and kept, bounded in entries and bytes.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ibest.backbone.clock import Clock
from services.reporting.cache import BoundedCache, deep_size
from services.reporting.domain.disclosure import (
    controlled_names,
    protect_national,
    published_figures,
)
from services.reporting.domain.figures import Figures, Summary, raw_figures, total
from services.reporting.ports import GenerationStore
from shared.followup import assessment_date

ANSWERS_KEPT = 4096
"""Answers kept per view: every report of a few thousand sites, raw and published."""
ANSWER_BYTES_KEPT = 64 * 1024 * 1024
"""Bytes of answers kept, as the Python objects they are (`deep_size`), not their JSON:
every trust's figures at national scale are 950 KB of JSON and several times that in
memory."""
ENCODED_KEPT = 512
"""Encoded answers kept (least recently used dropped first): more than a dashboard's
distinct requests between two changes of the figures."""
ENCODED_BYTES_KEPT = 64 * 1024 * 1024
"""Bytes of encoded answers kept: each counts its JSON and its gzipped copy."""


class Answer(dict[str, Any]):
    """A report as kept per view: a plain dict to every reader, that also carries the key
    it is kept under, so the HTTP edge can keep its encoding beside it (`Views.encoded`)
    without keying anything by object identity."""

    __slots__ = ("key",)

    def __init__(self, report: dict[str, Any], key: tuple[Any, ...]) -> None:
        super().__init__(report)
        self.key = key


@dataclass
class Encoded:
    """One answer as JSON, and gzipped once a client accepting gzip asks for it."""

    body: bytes
    gzipped: bytes | None = None

    def size(self) -> int:
        return len(self.body) + len(self.gzipped or b"")


@dataclass(frozen=True)
class View:
    """One consistent read of the active generation."""

    summaries: list[Summary]
    as_of: datetime | None
    today: date
    key: tuple[Any, ...] = ()
    protect_national: bool = False
    """IBEST_REPORTING_PROTECT_NATIONAL: judge every national figure family, not only the
    by-profession breakdowns (disclosure.controlled_names)."""

    def by_trust(self) -> dict[str, list[Summary]]:
        out: dict[str, list[Summary]] = defaultdict(list)
        for s in self.summaries:
            out[s["trust"]].append(s)
        return dict(sorted(out.items()))

    def figures(
        self, summaries: list[Summary], *, raw: bool, national: bool = False, site: bool = False
    ) -> Figures:
        """Exact figures for `raw`; disclosure-controlled below national; national exact
        except where, beside the trusts' published figures, a by-profession cell (or, with
        `protect_national`, any count) would give back a suppressed trust figure by
        difference (disclosure.protect_national)."""
        totals = total(summaries)
        if raw:
            return raw_figures(totals, self.today, with_sites_running=not site)
        controlled = published_figures(totals, self.today, with_sites_running=not site)
        if not national:
            return controlled
        exact = raw_figures(totals, self.today, with_sites_running=not site)
        return protect_national(
            exact, controlled, self.published_trusts(), every_family=self.protect_national
        )

    def published_trusts(self) -> list[Figures]:
        """Every trust's published figures: what an outsider holds beside the national."""
        return [self.figures(s, raw=False) for s in self.by_trust().values()]

    def national_controlled(self) -> set[str]:
        """The national counts published under control (disclosure.controlled_names)."""
        totals = total(self.summaries)
        return controlled_names(
            raw_figures(totals, self.today, with_sites_running=True),
            published_figures(totals, self.today, with_sites_running=True),
            self.published_trusts(),
            every_family=self.protect_national,
        )


class Views:
    """The current view of the figures and the answers computed from it."""

    def __init__(
        self, store: GenerationStore, clock: Clock, *, protect_national: bool = False
    ) -> None:
        self.store = store
        self.clock = clock
        self.protect_national = protect_national
        # One view (the active generation's summaries) is kept; answers are bounded too.
        self._cached: tuple[tuple[Any, ...], list[Summary]] | None = None
        self.answers: BoundedCache[tuple[Any, ...], dict[str, Any]] = BoundedCache(
            ANSWERS_KEPT, ANSWER_BYTES_KEPT
        )
        self.encoded: BoundedCache[tuple[Any, ...], Encoded] = BoundedCache(
            ENCODED_KEPT, ENCODED_BYTES_KEPT
        )
        """The answers' encodings (api/encoding.py), under the answers' keys: an answer is
        a pure function of its key, so its encoding is too."""
        self._checking: asyncio.Future[View] | None = None

    async def view(self) -> View:
        """The active generation's summaries, read again only when they changed.

        One small read (the pointer, with the active generation's `as_of` and count of
        summary changes) tells whether the cached summaries are still current; at national
        scale that saves reading and summing thousands of site documents per request.
        Requests arriving while a check is in flight share it, so concurrent readers cost the
        database one read, not one each.
        """
        if self._checking is None:
            self._checking = asyncio.ensure_future(self._current_view())
            self._checking.add_done_callback(self._checked)
        return await asyncio.shield(self._checking)

    def _checked(self, task: asyncio.Future[View]) -> None:
        self._checking = None
        if not task.cancelled():
            task.exception()  # retrieved here too, so an unawaited failure is not logged

    async def _current_view(self) -> View:
        generation, as_of, changes = await self.store.active_stamp()
        today = assessment_date(self.clock())
        key = (generation.number, as_of, changes, today)
        if self._cached is None or self._cached[0] != key:
            self._cached = (key, await generation.summaries())
            self.answers.clear()
        return View(self._cached[1], as_of, today, key, self.protect_national)

    async def answer(
        self, v: View, args: tuple[Any, ...], build: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """An answer computed once per view (reports are pure functions of the view). Only
        validated arguments reach here, so keys are few; the cache is bounded regardless."""
        key = (v.key, *args)
        found = self.answers.get(key)
        if found is None:
            found = Answer(build(), key)
            self.answers.put(key, found, deep_size(found))
        return found
