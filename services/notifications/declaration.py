"""The notifications service, declared once (ibest/backbone/declaration.py;
ibest/registry.py)."""

from __future__ import annotations

from ibest.backbone.declaration import NatsGrants, ServiceDeclaration
from services.notifications.adapters.contacts import CONTACT_SUBJECT

DECLARATION = ServiceDeclaration(
    name="notifications",
    port=8003,
    consumes=(
        "clinician.enrolled",
        "clinician.training_started",
        "module.started",
        "module.completed",
        "clinician.training_completed",
        "clinician.delivery_reported",
        "patient.assessed",
    ),
    publishes=("notification.sent", "notification.failed"),
    nats=NatsGrants(requests=(CONTACT_SUBJECT,)),
    commands=True,
    retention=("notification records",),
)
