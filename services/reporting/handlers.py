"""Event handlers: every consumed event becomes one fact of its entity (see domain.facts)."""

from __future__ import annotations

from ibest.backbone.consumer import BatchHandler, Handler
from services.reporting.application import ReportingService
from services.reporting.domain.facts import CONSUMES
from shared.envelope import AnyEvent


def handlers(service: ReportingService) -> dict[str, Handler]:
    async def apply(event: AnyEvent) -> None:
        await service.apply(event)

    return dict.fromkeys(CONSUMES, apply)


def batch_handler(service: ReportingService) -> BatchHandler:
    """A delivered batch in one go: bulk writes, each touched site summarised once."""

    async def apply_many(events: list[AnyEvent]) -> None:
        await service.apply_many(events)

    return apply_many
