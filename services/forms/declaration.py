"""The forms service, declared once (ibest/backbone/declaration.py; ibest/registry.py)."""

from __future__ import annotations

from ibest.backbone.declaration import NatsGrants, ServiceDeclaration

DECLARATION = ServiceDeclaration(
    name="forms",
    port=8006,
    consumes=("clinician.training_completed", "patient.assessed"),
    # A derived event carries the platform's keyed id, which no trust can send or reuse:
    # the id ledger has nothing to catch (issue 26).
    unledgered=("clinician.training_completed",),
    nats=NatsGrants(
        makes=(
            "clinician.intention_reported",
            "clinician.delivery_reported",
            "patient.assessed",
        ),
        comment="service forms: the answers its forms make",
    ),
    commands=True,
)
