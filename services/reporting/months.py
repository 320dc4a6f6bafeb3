"""Monthly series answers (domain.months): read every site's summary with its series once
per change of the figures, then compute each requested level once per view."""

from __future__ import annotations

from typing import Any

from ibest.backbone.document import Document
from services.reporting.checks import Malformed, NotFound, check_month, check_site, check_trust
from services.reporting.domain.months import (
    first_month,
    level_series,
    months_between,
    protected_national_series,
    series_figures,
)
from services.reporting.ports import SiteMonths
from services.reporting.views import Held, View, Views, refreshed, stamps_of


class MonthSeries:
    """What the months routes use; shares the reports' view, its cache key and answers."""

    def __init__(self, views: Views) -> None:
        self.views = views
        self._cached: tuple[tuple[Any, ...], list[SiteMonths]] | None = None
        self._held: tuple[int, int, Held] | None = None
        """The generation read from, its count of changes seen before the read (the view
        key's), and each site's document with its change stamp."""

    async def _sites(self, v: View) -> list[SiteMonths]:
        """Every reported site's summary and series, in site order, read again only when
        figures moved, and then only the sites whose documents changed (as the view's
        summaries are: `Generation.site_months_since`)."""
        if self._cached is None or self._cached[0] != v.key:
            number, changes = int(v.key[0]), int(v.key[2])
            mine = self._held if self._held and self._held[0] == number else None
            held = mine[2] if mine else {}
            found = await self.views.store.generation(number).site_months_since(
                stamps_of(held), mine[1] if mine else None
            )
            sites, _ = refreshed(held, found)
            self._held = (number, changes, sites)
            self._cached = (v.key, [doc for _, (_, doc) in sorted(sites.items())])
        return self._cached[1]

    async def report(
        self,
        trustcode: str | None,
        sitecode: str | None,
        raw: bool,
        start: str | None,
        end: str | None,
    ) -> dict[str, Any]:
        check_month("from", start)
        check_month("to", end)
        if start and end and start > end:
            raise Malformed(f"from={start} is after to={end}; from must not be after to", "from")
        trust = check_trust(trustcode) if trustcode is not None else None
        site = check_site(trust, sitecode) if trust and sitecode is not None else None
        level = "site" if site else "trust" if trust else "national"
        v = await self.views.view()
        docs = await self._sites(v)

        def build() -> dict[str, Any]:
            if site:
                chosen = [d for d in docs if d["_id"] == site]
                if not chosen:
                    raise NotFound(f"no figures for site {site}: no event from it has been applied")
            elif trust:
                chosen = [d for d in docs if d["summary"]["trust"] == trust]
                if not chosen:
                    raise NotFound(
                        f"no figures for trust {trust}: no event from it has been applied"
                    )
            else:
                chosen = docs
            current = v.today.strftime("%Y-%m")
            months = [
                m
                for m in months_between(
                    first_month((d.get("months") for d in chosen), current), current
                )
                if (start is None or m >= start) and (end is None or m <= end)
            ]
            counts = level_series(
                [(d["summary"], d.get("months")) for d in chosen],
                months,
                current,
                v.today,
                with_sites_running=level != "site",
            )
            answer: dict[str, Any] = {"as_of": v.as_of, "level": level, "raw": raw}
            if trust:
                answer["trustcode"] = trust
            if site:
                answer["sitecode"] = site
            answer["months"] = months
            if level == "national" and not raw and self.views.protect_national:
                by_trust: dict[str, list[Document]] = {}
                for d in chosen:
                    by_trust.setdefault(d["summary"]["trust"], []).append(d)
                answer["figures"] = protected_national_series(
                    counts,
                    [
                        level_series(
                            [(d["summary"], d.get("months")) for d in trust_docs],
                            months,
                            current,
                            v.today,
                            with_sites_running=True,
                        )
                        for trust_docs in by_trust.values()
                    ],
                )
            else:
                answer["figures"] = series_figures(
                    counts, published=not raw and level != "national"
                )
            return answer

        return await self.views.answer(v, ("months", level, trust, site, raw, start, end), build)
