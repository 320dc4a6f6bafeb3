"""The view of the figures that reports read, and the answers computed from it.

Reports read the active generation's site summaries only (one document per site), so their
cost grows with the number of sites, never with the history of events. One view is kept
and read again only when the figures moved, and then only the summaries that changed; its
totals are the previous view's moved by them (`domain.moved`). Every answer is a pure
function of the view, so it is computed once per view and kept, bounded in entries and
bytes.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from ibest.backbone.clock import Clock
from services.reporting.cache import BoundedCache, deep_size
from services.reporting.domain.disclosure import (
    controlled_names,
    protect_national,
    published_figures,
)
from services.reporting.domain.figures import Figures, Summary, Totals, raw_figures, total
from services.reporting.domain.moved import Change, moved
from services.reporting.pacing import Slices
from services.reporting.ports import GenerationStore, SummaryChanges
from shared.followup import assessment_date

ANSWERS_KEPT = 4096
"""Answers kept per view: every report of a few thousand sites, raw and published."""
ANSWER_BYTES_KEPT = 64 * 1024 * 1024
"""Bytes of answers kept, as the Python objects they are (`deep_size`), not their JSON:
every trust's figures at national scale are 950 KB of JSON and several times that in
memory."""
CHANGES_CARRIED = 256
"""Changed sites a view's totals are moved by; past that (a rebuild, a reader that was not
asked for a long while) a sum afresh of a few thousand sites costs about the same."""
ENCODED_KEPT = 512
"""Encoded answers kept (least recently used dropped first): more than a dashboard's
distinct requests between two changes of the figures."""
ENCODED_BYTES_KEPT = 64 * 1024 * 1024
"""Bytes of encoded answers kept: each counts its JSON and its gzipped copy."""


Held = dict[str, tuple[Any, Any]]
"""Per site, what a reader read of it (its summary, or its `SiteMonths` document) with the
change stamp it was stored with (`Generation.summaries_since`)."""


def stamps_of(held: Held) -> dict[str, Any]:
    """What a reader holds, as `Generation.summaries_since` asks for it."""
    return {site: stamp for site, (stamp, _) in held.items()}


def refreshed(held: Held, found: SummaryChanges) -> tuple[Held, list[tuple[Any, Any]]]:
    """What the reader holds once `found` is applied (`held` itself is left as it was), and
    each change as (what was held, what is now; None for a site new or gone). A new stamp
    over the same content is no change."""
    sites = dict(held)
    changes: list[tuple[Any, Any]] = [(sites.pop(site)[1], None) for site in found.gone]
    for site, (stamp, now) in found.changed.items():
        before = sites.get(site)
        sites[site] = (stamp, now)
        if before is None or before[1] != now:
            changes.append((None if before is None else before[1], now))
    return sites, changes


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
    """One consistent read of the active generation.

    What several answers share (the national totals, every trust's totals and figures) is
    computed once per view and kept in `shared`, which every `View` of the same key holds:
    before, the first national answer after a change summed all the sites twice (nationally
    and per trust, for secondary suppression), the trusts' answer a third time, each funnel
    twice more, and the metrics snapshot again (docs/performance.md, issue 26)."""

    summaries: list[Summary]
    as_of: datetime | None
    today: date
    key: tuple[Any, ...] = ()
    protect_national: bool = False
    """IBEST_REPORTING_PROTECT_NATIONAL: judge every national figure family, not only the
    by-profession breakdowns (disclosure.controlled_names)."""
    shared: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)
    """Per view: computed once, read by every answer of the view; never mutated after."""

    def _once(self, name: Any, compute: Callable[[], Any]) -> Any:
        if name not in self.shared:
            self.shared[name] = compute()
        return self.shared[name]

    def by_trust(self) -> dict[str, list[Summary]]:
        def group() -> dict[str, list[Summary]]:
            out: dict[str, list[Summary]] = defaultdict(list)
            for s in self.summaries:
                out[s["trust"]].append(s)
            return dict(sorted(out.items()))

        found: dict[str, list[Summary]] = self._once("by_trust", group)
        return found

    def national_totals(self) -> Totals:
        """Every site's summary summed, once per view: the previous view's totals moved by
        the sites that changed since (`domain.moved`), or `domain.figures.total` when there
        are none to move (the first view, another generation, too many changes)."""

        def compute() -> Totals:
            kept: tuple[Totals, list[Change]] | None = self._previous().get("national")
            if kept is None:
                return total(self.summaries)
            return moved(*kept) if kept[1] else kept[0]

        found: Totals = self._once("totals", compute)
        return found

    def trust_totals(self) -> dict[str, Totals]:
        """Each trust's sites summed, once per view, in trust order (`_trust_total`)."""
        found: dict[str, Totals] = self._once(
            "trust_totals", lambda: {t: self._trust_total(t, s) for t, s in self.by_trust().items()}
        )
        return found

    def _previous(self) -> dict[str, Any]:
        """What this view starts from (`carry_over` of the view before): the national
        totals and every trust's totals and figures, each with the changes since."""
        found: dict[str, Any] = self.shared.get("previous", {})
        return found

    def _trust_changes(self) -> dict[str, list[Change]]:
        """The changes since the carried trust totals, per trust they touch (a site that
        moved trust is taken out of one and put into the other)."""

        def group() -> dict[str, list[Change]]:
            out: dict[str, list[Change]] = defaultdict(list)
            kept = self._previous().get("trusts")
            for old, new in kept[3] if kept else []:
                if old is not None:
                    same = new is not None and new["trust"] == old["trust"]
                    out[old["trust"]].append((old, new if same else None))
                if new is not None and (old is None or new["trust"] != old["trust"]):
                    out[new["trust"]].append((None, new))
            return dict(out)

        found: dict[str, list[Change]] = self._once("trust_changes", group)
        return found

    def _trust_total(self, trust: str, summaries: list[Summary]) -> Totals:
        """One trust's totals: the previous view's moved by its changed sites (kept as
        they were when none changed), or summed afresh."""
        kept = self._previous().get("trusts")
        if kept is None or trust not in kept[0]:
            return total(summaries)
        changes = self._trust_changes().get(trust)
        return moved(kept[0][trust], changes) if changes else kept[0][trust]

    def _kept_figures(self, trust: str, raw: bool) -> Figures | None:
        """The previous view's figures of a trust none of whose sites changed since, on
        the same day (figures judge due dates against today)."""
        kept = self._previous().get("trusts")
        if kept is None or kept[2] != self.today or trust in self._trust_changes():
            return None
        found: Figures | None = kept[1].get(raw, {}).get(trust)
        return found

    def carry_over(self, changes: list[Change]) -> dict[str, Any]:
        """What the next view, `changes` later, starts from: this view's national totals
        and every trust's totals and figures where it computed them, else what it was
        handed itself with these changes added; nothing once the changes are too many to
        be worth moving by (`CHANGES_CARRIED`). Totals and figures, never summaries."""
        before = self._previous()
        out: dict[str, Any] = {}
        if "totals" in self.shared:
            out["national"] = (self.shared["totals"], changes)
        elif "national" in before:
            out["national"] = (before["national"][0], [*before["national"][1], *changes])
        if "trust_totals" in self.shared:
            figures = {
                raw: self.shared[("trust_figures", raw)]
                for raw in (False, True)
                if ("trust_figures", raw) in self.shared
            }
            out["trusts"] = (self.shared["trust_totals"], figures, self.today, changes)
        elif "trusts" in before:
            totals, figures, day, earlier = before["trusts"]
            out["trusts"] = (totals, figures, day, [*earlier, *changes])
        return {name: kept for name, kept in out.items() if len(kept[-1]) <= CHANGES_CARRIED}

    async def prepare_trusts(self, slices: Slices) -> None:
        """Compute every trust's totals and published figures a trust at a time, pausing
        between trusts (the metrics snapshot's way, so requests are served meanwhile; one
        that needs them before the end computes them itself, to the same values)."""
        if ("trust_figures", False) in self.shared:
            return
        totals: dict[str, Totals] = {}
        figures: dict[str, Figures] = {}
        for trust, summaries in self.by_trust().items():
            await slices.pause()
            totals[trust] = self._trust_total(trust, summaries)
            kept = self._kept_figures(trust, False)
            figures[trust] = kept if kept is not None else self.level(totals[trust], raw=False)
        self.shared.setdefault("trust_totals", totals)
        self.shared.setdefault(("trust_figures", False), figures)

    def level(self, totals: Totals, *, raw: bool, site: bool = False) -> Figures:
        """One trust's or site's figures from its totals: exact, or disclosure-controlled."""
        figures = raw_figures if raw else published_figures
        return figures(totals, self.today, with_sites_running=not site)

    def trust_figures(self, raw: bool) -> dict[str, Figures]:
        """Every trust's figures, once per view: the trusts' answer, secondary suppression
        of the national figures and the metrics snapshot all read these."""
        found: dict[str, Figures] = self._once(
            ("trust_figures", raw),
            lambda: {
                t: kept
                if (kept := self._kept_figures(t, raw)) is not None
                else self.level(tt, raw=raw)
                for t, tt in self.trust_totals().items()
            },
        )
        return found

    def national_figures(self, raw: bool) -> Figures:
        """The national figures (`figures(..., national=True)` of every site), once per view."""
        found: Figures = self._once(
            ("national", raw), lambda: self._national(self.national_totals(), raw=raw)
        )
        return found

    def figures(
        self, summaries: list[Summary], *, raw: bool, national: bool = False, site: bool = False
    ) -> Figures:
        """Exact figures for `raw`; disclosure-controlled below national; national exact
        except where, beside the trusts' published figures, a by-profession cell (or, with
        `protect_national`, any count) would give back a suppressed trust figure by
        difference (disclosure.protect_national)."""
        totals = total(summaries)
        if national:
            return self._national(totals, raw=raw)
        return self.level(totals, raw=raw, site=site)

    def _national(self, totals: Totals, *, raw: bool) -> Figures:
        exact = raw_figures(totals, self.today, with_sites_running=True)
        if raw:
            return exact
        controlled = published_figures(totals, self.today, with_sites_running=True)
        return protect_national(
            exact, controlled, self.published_trusts(), every_family=self.protect_national
        )

    def published_trusts(self) -> list[Figures]:
        """Every trust's published figures: what an outsider holds beside the national."""
        return list(self.trust_figures(raw=False).values())

    def national_controlled(self) -> set[str]:
        """The national counts published under control (disclosure.controlled_names)."""

        def judge() -> set[str]:
            totals = self.national_totals()
            return controlled_names(
                raw_figures(totals, self.today, with_sites_running=True),
                published_figures(totals, self.today, with_sites_running=True),
                self.published_trusts(),
                every_family=self.protect_national,
            )

        found: set[str] = self._once("national_controlled", judge)
        return found


class Views:
    """The current view of the figures and the answers computed from it."""

    def __init__(
        self, store: GenerationStore, clock: Clock, *, protect_national: bool = False
    ) -> None:
        self.store = store
        self.clock = clock
        self.protect_national = protect_national
        # One view (the active generation's summaries) is kept; answers are bounded too.
        self._cached: tuple[tuple[Any, ...], list[Summary], dict[Any, Any]] | None = None
        self._held: tuple[int, int, Held] | None = None
        """The generation the view was read from, its count of changes seen before the
        read, and per site the summary read with its change stamp: after a change only the
        summaries that differ are read (`Generation.summaries_since`)."""
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
        """The active generation's summaries, read again only when they changed, and then
        only those that changed.

        One small read (the pointer, with the active generation's `as_of` and count of
        summary changes) tells whether the cached summaries are still current; at national
        scale that saves reading and summing thousands of site documents per request. After
        a change, the sites' change stamps say which summaries to read, and the new view's
        totals are the previous view's moved by those sites (`View.carry_over`).
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
            held = self._held if self._held and self._held[0] == generation.number else None
            found = await generation.summaries_since(
                stamps_of(held[2] if held else {}), held[1] if held else None
            )
            sites, moves = refreshed(held[2] if held else {}, found)
            carried: dict[Any, Any] = {}
            if held is not None and self._cached is not None:
                carried = {"previous": self._view(self._cached, as_of).carry_over(moves)}
            self._held = (generation.number, changes, sites)
            self._cached = (key, [summary for _, (_, summary) in sorted(sites.items())], carried)
            self.answers.clear()
        return self._view(self._cached, as_of)

    def _view(
        self, cached: tuple[tuple[Any, ...], list[Summary], dict[Any, Any]], as_of: datetime | None
    ) -> View:
        key, summaries, shared = cached
        return View(summaries, as_of, key[3], key, self.protect_national, shared)

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
