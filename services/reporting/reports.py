"""The reports: national, trust and site figures, funnels and comparisons, each answered
from the current view of the figures (views.py) and kept per view.

Input is checked first (checks.py): only validated parameters form cache keys.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from ibest.backbone.audit import AuditLog
from ibest.backbone.clock import Clock
from ibest.backbone.tokens import Token
from services.reporting.checks import (
    Malformed,
    NotFound,
    check_funnel_parameters,
    check_site,
    check_trust,
)
from services.reporting.domain.disclosure import control_count, funnel_bases, funnel_national
from services.reporting.domain.figures import Figures, Summary
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
from services.reporting.months import MonthSeries
from services.reporting.names import Names
from services.reporting.pacing import Slices
from services.reporting.ports import GenerationStore
from services.reporting.views import View, Views


class Reporting:
    """What the HTTP routes and the metrics snapshot use: every report, from one view."""

    def __init__(
        self,
        store: GenerationStore,
        clock: Clock,
        tokens: list[Token],
        audit: AuditLog | None = None,
        *,
        protect_national: bool = False,
        names: Names | None = None,
    ) -> None:
        self.tokens = tokens
        self.audit = audit
        self.names = names or Names()
        """Trust names for the monthly pack (deploy/trusts.yaml)."""
        self.views = Views(store, clock, protect_national=protect_national)
        self.months = MonthSeries(self.views)

    async def view(self) -> View:
        return await self.views.view()

    async def national(self, raw: bool) -> dict[str, Any]:
        v = await self.view()
        return await self.views.answer(
            v,
            ("national", raw),
            lambda: {
                "as_of": v.as_of,
                "level": "national",
                "figures": v.national_figures(raw),
            },
        )

    async def trusts(self, raw: bool) -> dict[str, Any]:
        v = await self.view()

        def build() -> dict[str, Any]:
            by_trust = dict(v.trust_figures(raw))
            # `figures` keyed by trust code, like every answer's `figures`; `trusts` a list.
            return {
                "as_of": v.as_of,
                "level": "trust",
                "raw": raw,
                "figures": by_trust,
                "trusts": [{"trustcode": t, "figures": f} for t, f in by_trust.items()],
            }

        return await self.views.answer(v, ("trusts", raw), build)

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

        return await self.views.answer(v, ("trust", code, raw), build)

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

        return await self.views.answer(v, ("site", code, raw), build)

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
                national = proportion_of(v.national_totals(), figure, v.today, measure, timepoint)
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
                    t, proportion_of(totals, figure, v.today, measure, timepoint), p, raw=raw
                )
                for t, totals in v.trust_totals().items()
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

        return await self.views.answer(v, ("funnel", figure, measure, timepoint, raw), build)

    async def comparison(self, figure: str, raw: bool) -> dict[str, Any]:
        """Each trust's mean RMDQ improvement and 95% interval against the trial's and the
        national one (domain.md, "Is it working?"); national exact, trusts controlled."""
        timepoint = figure.removeprefix("rmdq_improvement_")
        v = await self.view()

        def build() -> dict[str, Any]:
            national = improvement_of(v.national_totals(), timepoint)
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
                    comparison_point(t, totals, timepoint, national, raw=raw)
                    for t, totals in v.trust_totals().items()
                ],
            }

        return await self.views.answer(v, ("comparison", figure, raw), build)


async def metric_levels(
    reporting: Reporting,
    slices: Slices | None = None,
    known: dict[str, tuple[Summary, date, Figures]] | None = None,
) -> tuple[list[tuple[dict[str, str], Figures]], float | None]:
    """Figures at every level as /metrics exports them: national exact, the rest controlled.

    The national and trust figures are the view's own (shared with the report answers);
    each site's are computed here, a trust at a time, pausing between trusts (`slices`) so
    that requests are served while the snapshot is recomputed. `known` keeps each site's
    summary and figures from the previous snapshot: a site whose summary is unchanged (most,
    after a batch) keeps its figures on the same day."""
    slices = slices or Slices()
    v = await reporting.view()
    await v.prepare_trusts(slices)
    levels: list[tuple[dict[str, str], Figures]] = [({}, v.national_figures(raw=False))]
    await slices.pause()
    trusts = v.trust_figures(raw=False)
    fresh: dict[str, tuple[Summary, date, Figures]] = {}
    for trust, summaries in v.by_trust().items():
        await slices.pause()
        levels.append(({"trust": trust}, trusts[trust]))
        for s in sorted(summaries, key=lambda s: str(s["site"])):
            before = (known or {}).get(s["site"])
            if before is not None and before[1] == v.today and before[0] == s:
                figures = before[2]
            else:
                figures = v.figures([s], raw=False, site=True)
            fresh[s["site"]] = (s, v.today, figures)
            levels.append(({"trust": trust, "site": s["site"]}, figures))
    if known is not None:
        known.clear()
        known.update(fresh)
    return levels, None if v.as_of is None else v.as_of.timestamp()
