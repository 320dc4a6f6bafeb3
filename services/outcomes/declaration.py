"""The outcomes service, declared once (ibest/backbone/declaration.py; ibest/registry.py)."""

from __future__ import annotations

from ibest.backbone.declaration import ServiceDeclaration

DECLARATION = ServiceDeclaration(
    name="outcomes",
    port=8002,
    consumes=("patient.assessed", "class.started"),
    publishes=("outcome.recorded",),
    commands=True,
)
