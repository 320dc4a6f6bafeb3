"""Thin handlers: a validated event in, the application's use case called."""

from __future__ import annotations

from collections.abc import Mapping

from ibest.backbone.consumer import BatchHandler, Handler
from services.outcomes.application import OutcomesService
from services.outcomes.domain.assessments import Assessment
from shared.envelope import AnyEvent


def handlers(service: OutcomesService) -> Mapping[str, Handler]:
    async def on_assessed(event: AnyEvent) -> None:
        await service.assessed(
            Assessment.from_event(
                str(event.id), event.trustcode, event.sitecode, event.time, event.data
            )
        )

    async def on_class_started(event: AnyEvent) -> None:
        await service.class_started(event)

    return {"patient.assessed": on_assessed, "class.started": on_class_started}


def batch_handler(service: OutcomesService) -> BatchHandler:
    """A delivered batch in one go: bulk writes, one compare-and-set per patient."""

    async def apply_many(events: list[AnyEvent]) -> None:
        await service.apply_many(events)

    return apply_many
