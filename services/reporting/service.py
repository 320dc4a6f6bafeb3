"""The reporting service: exact figures per site, trust and nation, published safely."""

from __future__ import annotations

import logging
from datetime import date

from ibest.backbone.audit import audit_log_of
from ibest.backbone.periodic import every
from ibest.backbone.runtime import ServiceContext, ServiceSpec, Wiring
from services.reporting import bootstrap, handlers
from services.reporting.adapters.metrics import Rendered, sliced_exposition
from services.reporting.api import routes
from services.reporting.declaration import DECLARATION
from services.reporting.domain.figures import Figures, Summary
from services.reporting.pacing import Slices
from services.reporting.reports import metric_levels
from services.reporting.settings import ReportingSettings

log = logging.getLogger(__name__)


def build_spec(settings: ReportingSettings | None = None) -> ServiceSpec:
    """The service; tests pass settings. Without them, the environment is read once, when
    the process starts the service."""

    async def wire(ctx: ServiceContext) -> Wiring:
        return await _wire(ctx, settings or ReportingSettings())

    return ServiceSpec.declared(
        DECLARATION,
        wire,
        title="iBeST reporting",
        description="Exact rollout figures per site, per trust and nationally; below "
        "national level every figure is disclosure-controlled unless the raw "
        "scope asks.",
        routes=routes,
    )


async def _wire(ctx: ServiceContext, settings: ReportingSettings) -> Wiring:
    audit = audit_log_of(ctx.db.client, ctx.settings, ctx.clock)
    parts = bootstrap.build(settings, ctx.db, ctx.clock, audit)
    for generation in await parts.store.writable():
        await generation.create_indexes()
    reporting = parts.reports
    if not reporting.tokens:
        log.warning("IBEST_REPORTING_TOKENS is empty: every report request will get 401")
    snapshot = b""

    shown: object = None
    site_figures: dict[str, tuple[Summary, date, Figures]] = {}
    rendered: dict[tuple[tuple[str, str], ...], tuple[Figures, Rendered]] = {}
    """The previous snapshot's sites and levels: after a batch, only what changed is
    computed and rendered again (reports.metric_levels, adapters.metrics)."""

    async def refresh_once() -> None:
        nonlocal snapshot, shown
        view = await reporting.view()
        if view.key != shown:  # recomputing every level is costly at national scale:
            # done in slices, so requests are served meanwhile (pacing.py)
            slices = Slices()
            levels, last_event = await metric_levels(reporting, slices, site_figures)
            snapshot = await sliced_exposition(levels, last_event, slices, rendered)
            shown = view.key

    async def refresh_snapshot() -> None:
        await every("reporting: metrics snapshot", settings.snapshot_seconds, refresh_once)

    return Wiring(
        handlers=handlers.of(parts.service),
        api=reporting,
        background=[refresh_snapshot],
        metrics_text=lambda: snapshot,
    )


SPEC = build_spec()
