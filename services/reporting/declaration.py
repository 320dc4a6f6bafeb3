"""The reporting service, declared once (ibest/backbone/declaration.py; ibest/registry.py)."""

from __future__ import annotations

from ibest.backbone.declaration import ServiceDeclaration
from services.reporting.domain.facts import CONSUMES

DECLARATION = ServiceDeclaration(
    name="reporting",
    port=8004,
    consumes=CONSUMES,
    commands=True,
    proxy_path="/reporting",
)
