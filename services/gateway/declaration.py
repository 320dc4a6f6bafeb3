"""The gateway, declared once (ibest/backbone/declaration.py; ibest/registry.py).

It consumes no events (the runtime starts no events consumer); it publishes trusts' raw
events after checking them and reads every dead letter through its own consumer."""

from __future__ import annotations

from ibest.backbone.declaration import NatsGrants, ServiceDeclaration

DECLARATION = ServiceDeclaration(
    name="gateway",
    port=8005,
    nats=NatsGrants(
        raw_events=True,
        deadletter_reader=True,
        comment="the HTTPS gateway: raw events of any trust, its dead-letter consumer",
    ),
    commands=True,
)
