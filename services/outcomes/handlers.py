"""Thin handlers: every event this service consumes (its declaration's), delivered as a
batch (one event is a batch of one), to the use case that applies them; nothing more."""

from __future__ import annotations

from ibest.backbone.consumer import Handlers, handlers
from services.outcomes.application import OutcomesService
from services.outcomes.declaration import DECLARATION


def of(service: OutcomesService) -> Handlers:
    return handlers(DECLARATION.consumes, service.apply_many)
