"""What a service declares about itself, once: the one source every list is derived from.

A service's `declaration.py` holds its `ServiceDeclaration` (name, port, events consumed
and published, NATS grants beyond the standard ones, whether it has `ibest` commands, what
its retention passes remove). `ibest/registry.py` lists the declarations; the backbone
never imports a service, it is given what it needs (a service's `ServiceSpec` is built from
its declaration; `streams.ensure_streams` takes the consumers). The tools (CLI, local
stack, deploy generators and checks, benches) read the registry.

Pure data: importing a declaration builds and connects nothing, so the deploy generators and
checks read the registry without starting a service.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class NatsGrants:
    """What a service's NATS user may do beyond the standard grants every service gets
    (its own inbox; with consumed events, its durable consumer and its own dead letters;
    publishing the events it declares it publishes). deploy/nats/generate.py renders them."""

    raw_events: bool = False
    """Publishes the raw events of any trust (the gateway)."""
    makes: tuple[str, ...] = ()
    """Raw event types it makes itself, for any trust, and may publish (the forms' answers):
    published as a trust's would be, never derived, so no trust is barred from them."""
    deadletter_reader: bool = False
    """Reads every dead letter through its own durable consumer on the dead-letter stream."""
    answers: tuple[str, ...] = ()
    """Core NATS request subjects it answers (it subscribes and may reply once)."""
    requests: tuple[str, ...] = ()
    """Request subjects it sends (answered by the service that `answers` them)."""
    comment: str = ""
    """How nats.conf describes the user (default `service <name>`)."""


@dataclass(frozen=True)
class ServiceDeclaration:
    """One service, declared once (see the module docstring)."""

    name: str
    """Durable consumer, NATS user, database `<prefix>_<name>`, `IBEST_<NAME>_PORT`."""
    port: int
    """Default HTTP port (`IBEST_<NAME>_PORT` overrides it)."""
    consumes: tuple[str, ...] = ()
    """Event names its durable consumer is filtered to; empty: no events consumer."""
    publishes: tuple[str, ...] = ()
    """Derived event names it publishes (any trust)."""
    unledgered: tuple[str, ...] = ()
    """Consumed event names it applies without recording them in its id ledger
    (`ibest.backbone.ledger.EventLedger`), so without the reused-id check: for events
    whose id no trust can reuse (derived ones: the platform's keyed ids, subjects no trust
    may publish on) or whose other content under a reused id could only move what the
    service keeps as a minimum or maximum. Its declaration says why, per name."""
    nats: NatsGrants = field(default_factory=NatsGrants)
    commands: bool = False
    """`services.<name>.cli` registers `ibest <name> ...` (and may answer operator passes
    such as `purge_nhs_numbers`, see ibest/purge.py)."""
    retention: tuple[str, ...] = ()
    """What its background retention passes remove (docs/information-governance.md)."""
    proxy_path: str | None = None
    """Path prefix under which the compose TLS proxy (deploy/caddy) serves its HTTP API."""

    @property
    def package(self) -> str:
        """Its Python package: `python -m services.<name>` runs it."""
        return f"services.{self.name}"

    @property
    def port_variable(self) -> str:
        """The environment variable that overrides `port`."""
        return f"IBEST_{self.name.upper()}_PORT"
