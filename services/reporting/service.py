"""The reporting service: exact figures per site, trust and nation, published safely."""

from __future__ import annotations

import asyncio
import logging

from ibest.backbone.audit import audit_log_of
from ibest.backbone.runtime import ServiceContext, ServiceSpec, Wiring

from .adapters.metrics import metric_families, register_collector
from .adapters.store import Store
from .api import routes
from .domain.facts import CONSUMES
from .handlers import batch_handler, handlers
from .reports import Reporting, metric_levels
from .settings import ReportingSettings

log = logging.getLogger(__name__)


async def wire(ctx: ServiceContext) -> Wiring:
    settings = ReportingSettings()
    store = Store(ctx.db)
    for generation in await store.writable():
        await generation.create_indexes()
    audit = audit_log_of(ctx.db.client, ctx.settings, ctx.clock)
    reporting = Reporting(store, ctx.clock, settings.token_list(), audit,
                          protect_national=settings.protect_national)
    if not reporting.tokens:
        log.warning("IBEST_REPORTING_TOKENS is empty: every report request will get 401")
    collector = register_collector()
    owner = object()

    async def refresh_snapshot() -> None:
        shown: object = None
        while True:
            view = await reporting.view()
            if view.key != shown:  # recomputing every level is costly at national scale
                levels, last_event = await metric_levels(reporting)
                collector.snapshot = metric_families(levels, last_event)
                collector.owner = owner
                shown = view.key
            await asyncio.sleep(settings.snapshot_seconds)

    async def forget_snapshot() -> None:
        if collector.owner is owner:
            collector.snapshot = []

    return Wiring(handlers=handlers(reporting), api=reporting,
                  background=[refresh_snapshot], on_stop=[forget_snapshot],
                  batch_handler=batch_handler(reporting))


SPEC = ServiceSpec(
    name="reporting",
    consumes=list(CONSUMES),
    wire=wire,
    title="iBeST reporting",
    description="Exact rollout figures per site, per trust and nationally; below national "
                "level every figure is disclosure-controlled unless the raw scope asks.",
    routes=routes,
)
