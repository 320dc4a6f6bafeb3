"""The enrolment service, declared once (ibest/backbone/declaration.py; ibest/registry.py)."""

from __future__ import annotations

from ibest.backbone.declaration import NatsGrants, ServiceDeclaration
from services.enrolment.adapters.contact_rpc import CONTACT_SUBJECT
from services.enrolment.domain.clinician import CONSUMED
from services.enrolment.domain.record import TRAINING_COMPLETED, TRAINING_STARTED

DECLARATION = ServiceDeclaration(
    name="enrolment",
    port=8001,
    consumes=CONSUMED,
    publishes=(TRAINING_STARTED, TRAINING_COMPLETED),
    nats=NatsGrants(answers=(CONTACT_SUBJECT,)),
    commands=True,
    retention=("contact emails",),
)
