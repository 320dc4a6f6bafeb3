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
    # Applied without the id ledger (issue 26: its one document per event was most of this
    # service's writes): the derived events carry the platform's keyed ids, which no trust
    # can send or reuse; a module event only moves a clinician's `started_at` (a minimum)
    # and `last_progress_at` (a maximum), so a repeat changes nothing and a trust's reuse of
    # its id for other content could only move those times (enrolment and reporting still
    # dead-letter such a reuse; docs/errors.md, `reused-id`).
    unledgered=(
        "clinician.training_started",
        "module.started",
        "module.completed",
        "clinician.training_completed",
    ),
    publishes=("notification.sent", "notification.failed"),
    nats=NatsGrants(requests=(CONTACT_SUBJECT,)),
    commands=True,
    retention=("notification records",),
)
