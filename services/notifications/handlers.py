"""Thin handlers: every event this service consumes (its declaration's), delivered as a
batch (one event is a batch of one), to the use case that applies them; nothing more."""

from __future__ import annotations

from ibest.backbone.consumer import Handlers, handlers
from services.notifications.application import NotificationsService
from services.notifications.declaration import DECLARATION


def of(service: NotificationsService) -> Handlers:
    return handlers(DECLARATION.consumes, service.apply_many)
