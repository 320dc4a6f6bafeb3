"""The reporting application: applies events to the aggregates, answers reports, rebuilds.

Reports read the active generation's site summaries only (one document per site), so their
cost grows with the number of sites, never with the history of events.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from nats.js import JetStreamContext

from ibest.backbone.audit import AuditLog
from ibest.backbone.runtime import Clock
from ibest.backbone.tokens import Token
from services.reporting.adapters.replay import stored_events
from services.reporting.adapters.store import Store
from services.reporting.cache import BoundedCache
from services.reporting.domain.disclosure import (
    control_count,
    controlled_names,
    funnel_bases,
    funnel_national,
    protect_national,
    published_figures,
)
from services.reporting.domain.facts import CONSUMES, EntityFact, facts_of
from services.reporting.domain.figures import (
    MEASURE_NAMES,
    OUTCOME_TIMEPOINTS,
    Figures,
    Summary,
    raw_figures,
    total,
)
from services.reporting.domain.funnel import (
    COMPARISON_FIGURES,
    FUNNEL_FIGURES,
    comparison_point,
    funnel_point,
    improvement_of,
    limit_curve,
    proportion_of,
    trial_band,
)
from shared.envelope import AnyEvent
from shared.followup import assessment_date

log = logging.getLogger(__name__)
TRUST_RE = re.compile(r"[A-Za-z0-9]{3}")
SITE_RE = re.compile(r"[A-Za-z0-9]{5}")
"""Codes are checked with a full match on the text as given, ASCII letters and digits only;
lower-case ASCII is accepted and upper-cased after the check (`rth` is RTH), so `QAT\n` or
`ﬀx` (which `.upper()` would turn into `FFX`) are refused."""
ANSWERS_KEPT = 4096
"""Answers kept per view: every report of a few thousand sites, raw and published."""
ANSWER_BYTES_KEPT = 64 * 1024 * 1024
"""Bytes of answers kept (as JSON): every trust's figures at national scale are 950 KB."""
REBUILD_CHUNK = 1000
"""Facts a rebuild stores per bulk write (bounded memory, few round trips)."""


class NotFound(LookupError):
    """An unknown trust or site (HTTP 404)."""


class Malformed(ValueError):
    """A code or parameter that cannot be valid (HTTP 422); `field` names it."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


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


def check_trust(trustcode: str) -> str:
    if not TRUST_RE.fullmatch(trustcode):
        raise Malformed(
            f"{trustcode[:40]!r} is not an ODS trust code: 3 ASCII letters or "
            "digits, for example RTH",
            "trustcode",
        )
    return trustcode.upper()


def check_site(trustcode: str, sitecode: str) -> str:
    if not SITE_RE.fullmatch(sitecode):
        raise Malformed(
            f"{sitecode[:40]!r} is not an ODS site code: 5 ASCII letters or "
            "digits beginning with the trust's code, for example RTH08",
            "sitecode",
        )
    code = sitecode.upper()
    if not code.startswith(trustcode):
        raise NotFound(
            f"site {code} is not a site of trust {trustcode} "
            "(a site's code begins with its trust's code)"
        )
    return code


def check_funnel_parameters(figure: str, measure: str | None, timepoint: str | None) -> None:
    """improved_share needs a known measure and timepoint; the other figures take neither
    (an ignored parameter would only make distinct requests for the same answer)."""
    if figure != "improved_share":
        for name, value in (("measure", measure), ("timepoint", timepoint)):
            if value is not None:
                raise Malformed(
                    f"the funnel of {figure} takes no {name} (only improved_share does)", name
                )
        return
    if measure not in MEASURE_NAMES:
        raise Malformed(
            f"improved_share needs a measure, one of {', '.join(MEASURE_NAMES)}", "measure"
        )
    if timepoint not in OUTCOME_TIMEPOINTS:
        raise Malformed(
            f"improved_share needs a timepoint, one of {', '.join(OUTCOME_TIMEPOINTS)}", "timepoint"
        )


class Reporting:
    """What the handlers, the HTTP routes, the metrics snapshot and the CLI use."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        tokens: list[Token],
        audit: AuditLog | None = None,
        *,
        protect_national: bool = False,
    ) -> None:
        self.store = store
        self.protect_national = protect_national
        self.clock = clock
        self.tokens = tokens
        self.audit = audit
        # One view (the active generation's summaries) is kept; answers are bounded too.
        self._cached: tuple[tuple[Any, ...], list[Summary]] | None = None
        self.answers: BoundedCache[tuple[Any, ...], dict[str, Any]] = BoundedCache(
            ANSWERS_KEPT, ANSWER_BYTES_KEPT
        )
        self._checking: asyncio.Future[View] | None = None
        from services.reporting.months import MonthSeries  # it builds on this module

        self.months = MonthSeries(self)

    async def apply(self, event: AnyEvent) -> None:
        """Store one event's fact in every generation being written (idempotent)."""
        await self.apply_many([event])

    async def apply_many(self, events: list[AnyEvent]) -> None:
        """Store a batch's facts with bulk writes, summarising each touched site once."""
        facts = [fact for event in events for fact in facts_of(event)]
        for generation in await self.store.writable():
            await generation.apply_many(facts)

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

    async def _answer(
        self, v: View, args: tuple[Any, ...], build: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """An answer computed once per view (reports are pure functions of the view). Only
        validated arguments reach here, so keys are few; the cache is bounded regardless."""
        key = (v.key, *args)
        found = self.answers.get(key)
        if found is None:
            found = build()
            size = len(json.dumps(found, default=str, ensure_ascii=False, separators=(",", ":")))
            self.answers.put(key, found, size)
        return found

    async def national(self, raw: bool) -> dict[str, Any]:
        v = await self.view()
        return await self._answer(
            v,
            ("national", raw),
            lambda: {
                "as_of": v.as_of,
                "level": "national",
                "figures": v.figures(v.summaries, raw=raw, national=True),
            },
        )

    async def trusts(self, raw: bool) -> dict[str, Any]:
        v = await self.view()

        def build() -> dict[str, Any]:
            by_trust = {t: v.figures(s, raw=raw) for t, s in v.by_trust().items()}
            # `figures` keyed by trust code, like every answer's `figures`; `trusts` a list.
            return {
                "as_of": v.as_of,
                "level": "trust",
                "raw": raw,
                "figures": by_trust,
                "trusts": [{"trustcode": t, "figures": f} for t, f in by_trust.items()],
            }

        return await self._answer(v, ("trusts", raw), build)

    async def trust(self, trustcode: str, raw: bool) -> dict[str, Any]:
        code = check_trust(trustcode)
        v = await self.view()

        def build() -> dict[str, Any]:
            summaries = [s for s in v.summaries if s["trust"] == code]
            if not summaries:
                raise NotFound(f"no figures for trust {code}: no event from it has been applied")
            sites = sorted(summaries, key=lambda s: str(s["site"]))
            return {
                "as_of": v.as_of,
                "level": "trust",
                "raw": raw,
                "trustcode": code,
                "figures": v.figures(summaries, raw=raw),
                "sites": [
                    {"sitecode": s["site"], "figures": v.figures([s], raw=raw, site=True)}
                    for s in sites
                ],
            }

        return await self._answer(v, ("trust", code, raw), build)

    async def site(self, trustcode: str, sitecode: str, raw: bool) -> dict[str, Any]:
        trust = check_trust(trustcode)
        code = check_site(trust, sitecode)
        v = await self.view()

        def build() -> dict[str, Any]:
            found = [s for s in v.summaries if s["site"] == code]
            if not found:
                raise NotFound(f"no figures for site {code}: no event from it has been applied")
            return {
                "as_of": v.as_of,
                "level": "site",
                "raw": raw,
                "trustcode": trust,
                "sitecode": code,
                "figures": v.figures(found, raw=raw, site=True),
            }

        return await self._answer(v, ("site", code, raw), build)

    async def funnel(
        self, figure: str, measure: str | None, timepoint: str | None, raw: bool
    ) -> dict[str, Any]:
        if figure in COMPARISON_FIGURES:
            return await self.comparison(figure, raw)
        if figure not in FUNNEL_FIGURES:
            raise NotFound(
                f"no funnel for {figure[:40]!r}; choose one of "
                f"{', '.join((*FUNNEL_FIGURES, *COMPARISON_FIGURES))}"
            )
        check_funnel_parameters(figure, measure, timepoint)
        v = await self.view()

        def build() -> dict[str, Any]:
            try:
                national = proportion_of(total(v.summaries), figure, v.today, measure, timepoint)
            except ValueError as exc:
                raise Malformed(
                    f"{exc}; improved_share needs measure (e.g. rmdq) and "
                    "timepoint (group_end, month_3 or month_12)",
                    "measure",
                ) from None
            p = None if national.denominator == 0 else national.numerator / national.denominator
            # Only IBEST_REPORTING_PROTECT_NATIONAL controls the headline counts a funnel
            # is built on (by default only by-profession cells are, and no funnel uses them).
            hidden = (
                not raw
                and v.protect_national
                and bool(
                    v.national_controlled().intersection(funnel_bases(figure, measure, timepoint))
                )
            )
            published = funnel_national(national.numerator, national.denominator, hidden)
            if hidden:  # limits centred on the exact proportion would give it back
                p = published["value"] if isinstance(published["value"], float) else None
            points = [
                funnel_point(
                    t, proportion_of(total(s), figure, v.today, measure, timepoint), p, raw=raw
                )
                for t, s in v.by_trust().items()
            ]
            return {
                "as_of": v.as_of,
                "figure": figure,
                "measure": measure,
                "timepoint": timepoint,
                "raw": raw,
                "national": published,
                "trusts": points,
                "limits": limit_curve(
                    p,
                    max(
                        (pt["denominator"] for pt in points if isinstance(pt["denominator"], int)),
                        default=0,
                    ),
                ),
            }

        return await self._answer(v, ("funnel", figure, measure, timepoint, raw), build)

    async def comparison(self, figure: str, raw: bool) -> dict[str, Any]:
        """Each trust's mean RMDQ improvement and 95% interval against the trial's and the
        national one (domain.md, "Is it working?"); national exact, trusts controlled."""
        timepoint = figure.removeprefix("rmdq_improvement_")
        v = await self.view()

        def build() -> dict[str, Any]:
            national = improvement_of(total(v.summaries), timepoint)
            if (
                not raw
                and v.protect_national
                and f"outcomes.rmdq.{timepoint}.n" in v.national_controlled()
            ):
                # secondary suppression: the n is published under control nationally too
                national = {**national, "n": control_count(national["n"])}
            return {
                "as_of": v.as_of,
                "figure": figure,
                "timepoint": timepoint,
                "raw": raw,
                "trial": trial_band(),
                "national": national,
                "trusts": [
                    comparison_point(t, total(s), timepoint, national, raw=raw)
                    for t, s in v.by_trust().items()
                ],
            }

        return await self._answer(v, ("comparison", figure, raw), build)

    async def rebuild(self, js: JetStreamContext) -> dict[str, int]:
        """Replay the stored stream into a fresh generation and switch readers to it.

        The new generation is opened before the stream's end is read, so every event stored
        later is applied by the live consumer to both generations; every earlier one is
        replayed here. Nothing is lost between the replay and the switch.
        """
        generation = await self.store.start_building()
        replayed = 0
        chunk: list[EntityFact] = []
        async for event in stored_events(js, CONSUMES):
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


async def metric_levels(
    reporting: Reporting,
) -> tuple[list[tuple[dict[str, str], Figures]], float | None]:
    """Figures at every level as /metrics exports them: national exact, the rest controlled."""
    v = await reporting.view()
    levels: list[tuple[dict[str, str], Figures]] = [
        ({}, v.figures(v.summaries, raw=False, national=True))
    ]
    for trust, summaries in v.by_trust().items():
        levels.append(({"trust": trust}, v.figures(summaries, raw=False)))
        for s in sorted(summaries, key=lambda s: str(s["site"])):
            levels.append(
                ({"trust": trust, "site": s["site"]}, v.figures([s], raw=False, site=True))
            )
    return levels, None if v.as_of is None else v.as_of.timestamp()
