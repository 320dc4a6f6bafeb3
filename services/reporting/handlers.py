"""Event handlers: every consumed event becomes one fact of its entity (see domain.facts)."""

from __future__ import annotations

from ibest.backbone.consumer import BatchHandler, Handler
from services.reporting.domain.facts import CONSUMES
from services.reporting.reports import Reporting
from shared.envelope import AnyEvent


def handlers(reporting: Reporting) -> dict[str, Handler]:
    async def apply(event: AnyEvent) -> None:
        await reporting.apply(event)

    return dict.fromkeys(CONSUMES, apply)


def batch_handler(reporting: Reporting) -> BatchHandler:
    """A delivered batch in one go: bulk writes, each touched site summarised once."""

    async def apply_many(events: list[AnyEvent]) -> None:
        await reporting.apply_many(events)

    return apply_many
