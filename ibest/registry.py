"""Every service of the platform, one line each: the list every other list derives from.

In the tools layer, above the services: it imports each service's `declaration.py` (a
service imports no other, and nothing below the tools imports this). Read by the `ibest`
CLI (its commands, who consumes what, `streams apply`), the local stack, the simulator,
the benches, the contract docs and the deployment generators and checks
(`python -m deploy.generate`, which runs deploy/nats/generate.py and deploy/make_secrets.py,
and deploy/declared.py).
Adding a service: its own folder with a `declaration.py`, its import and one line in
`SERVICES` here, then regenerate
the deployment files (docs/architecture.md, "Adding a service").
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ibest.backbone.declaration import ServiceDeclaration
from ibest.backbone.settings import Settings
from services.enrolment.declaration import DECLARATION as ENROLMENT
from services.forms.declaration import DECLARATION as FORMS
from services.gateway.declaration import DECLARATION as GATEWAY
from services.notifications.declaration import DECLARATION as NOTIFICATIONS
from services.outcomes.declaration import DECLARATION as OUTCOMES
from services.reporting.declaration import DECLARATION as REPORTING

SERVICES: tuple[ServiceDeclaration, ...] = (
    ENROLMENT,
    OUTCOMES,
    NOTIFICATIONS,
    REPORTING,
    GATEWAY,
    FORMS,
)


def names() -> list[str]:
    return [s.name for s in SERVICES]


def declaration(name: str) -> ServiceDeclaration:
    """The declaration of service `name` (KeyError if there is none)."""
    for service in SERVICES:
        if service.name == name:
            return service
    raise KeyError(f"no service named {name!r} in ibest/registry.py")


def port_of(settings: Settings, name: str) -> int:
    """Service `name`'s HTTP port under `settings` (`IBEST_<NAME>_PORT`, else declared)."""
    return settings.port_of(name, declaration(name).port)


def consumers() -> dict[str, list[str]]:
    """The events each service consumes, by service (only services with a consumer)."""
    return {s.name: list(s.consumes) for s in SERVICES if s.consumes}


def consumers_by_type() -> dict[str, list[str]]:
    """Which services consume each event type: tells a rejection by the whole platform
    from one by a single service (`ibest deadletters list`)."""
    out: dict[str, list[str]] = {}
    for service in SERVICES:
        for name in service.consumes:
            out.setdefault(name, []).append(service.name)
    return out


def derived_events() -> list[str]:
    """Every event name a service publishes (no trust may publish these)."""
    return [name for s in SERVICES for name in s.publishes]


def command_modules() -> list[str]:
    """The modules registering each service's `ibest <name> ...` commands."""
    return [f"{s.package}.cli" for s in SERVICES if s.commands]


def service_module(service: ServiceDeclaration) -> ModuleType:
    """`services.<name>.service` (its `SPEC`, `build_spec`); imported only when asked."""
    return importlib.import_module(f"{service.package}.service")
