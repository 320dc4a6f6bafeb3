"""Thin handlers: each consumed event (one, or a delivered batch) to its use case."""

from __future__ import annotations

from ibest.backbone.consumer import BatchHandler, Handler
from services.notifications.application import NotificationsService


def by_event(service: NotificationsService) -> dict[str, Handler]:
    return {
        "clinician.enrolled": service.enrolled,
        "clinician.training_started": service.progressed,
        "module.started": service.progressed,
        "module.completed": service.progressed,
        "clinician.training_completed": service.completed,
        "clinician.delivery_reported": service.delivery_reported,
        "patient.assessed": service.assessed,
    }


def batch(service: NotificationsService) -> BatchHandler:
    return service.apply_many
