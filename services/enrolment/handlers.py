"""Thin handlers: each consumed event (one, or a delivered batch) to its use case."""

from __future__ import annotations

from ibest.backbone.consumer import BatchHandler, Handler
from services.enrolment.application import EnrolmentService
from services.enrolment.domain.clinician import CONSUMED
from shared.envelope import AnyEvent


class EnrolmentHandlers:
    def __init__(self, service: EnrolmentService) -> None:
        self._service = service

    async def on_event(self, event: AnyEvent) -> None:
        await self._service.record(event)

    async def on_batch(self, events: list[AnyEvent]) -> None:
        await self._service.record_batch(events)

    def by_event(self) -> dict[str, Handler]:
        return {name: self.on_event for name in CONSUMED}

    def batch(self) -> BatchHandler:
        return self.on_batch
