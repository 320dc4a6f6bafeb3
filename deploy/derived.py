"""The sections of the deployment files that derive from the service declarations.

Each function renders one generated section (deploy/sections.py) from the declarations
(ibest/registry.py) and, for compose and MongoDB, each service's extras
(deploy/services/<name>.yml, deploy/service_extras.py). Every declared service gets:
- a compose entry: `python -m services.<name>` on the shared `x-service` template, its own
  NATS user and MongoDB user (`NATS_USER: <name>`, `MONGODB_USERNAME: ibest-<name>`), its
  two password secrets mounted where the runtime reads them, the NATS CA and the platform's
  id key, a health check on its declared port's `/readyz`, and its extras;
- its two password secrets in compose's `secrets:` and its MongoDB password in `mongo-init`;
- its MongoDB user in deploy/mongo/create-users.js (readWrite on `ibest_<name>`, and the
  audit log's append-only role with `audit_log: true`);
- a Prometheus scrape target `<name>:<port>` in job `ibest-services`;
- with a `proxy_path`, a route in the people's TLS proxy (deploy/caddy/Caddyfile):
  `<proxy_path>/*` to `<name>:<port>`, its `/metrics` answered 404 first.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from deploy.service_extras import ServiceExtras
from ibest.backbone.declaration import ServiceDeclaration

STANDARD_SECRETS = ("nats_ca", "platform_id_key")
"""Mounted by every service: the NATS CA (TLS) and the platform's id key (the runtime
refuses to start without it, ibest/backbone/runtime.py)."""


def _indented(lines: Sequence[str], spaces: int) -> list[str]:
    return [" " * spaces + line if line.strip() else "" for line in lines]


def _health(port: int) -> str:
    url = f"http://127.0.0.1:{port}/readyz"
    probe = f"import urllib.request; urllib.request.urlopen('{url}', timeout=3)"
    return json.dumps(["CMD", "python", "-c", probe])


def compose_service(service: ServiceDeclaration, extras: ServiceExtras) -> list[str]:
    """The compose entry of `service` (indented as an entry of `services:`)."""
    name = service.name
    lines = [
        f"  {name}:",
        "    <<: *service",
        f"    command: {json.dumps(['python', '-m', service.package])}",
        "    environment:",
        "      <<: *service-env",
        "      # Its own NATS and MongoDB users (deploy/nats/nats.conf, create-users.js).",
        f"      NATS_USER: {name}",
        f"      MONGODB_USERNAME: ibest-{name}",
        *_indented(extras.environment, 6),
        "    secrets:",
        f"      - {{source: nats_password_{name}, target: nats_password}}",
        f"      - {{source: mongo_password_{name}, target: mongo_password}}",
        *(f"      - {secret}" for secret in (*STANDARD_SECRETS, *extras.secrets)),
    ]
    if extras.depends_on:
        lines += ["    depends_on:", "      <<: *service-deps", *_indented(extras.depends_on, 6)]
    return [
        *lines,
        "    healthcheck:",
        "      <<: *service-health",
        f"      test: {_health(service.port)}",
    ]


def compose_services(
    services: Sequence[ServiceDeclaration], extras: dict[str, ServiceExtras]
) -> list[str]:
    """Every service's compose entry, a blank line between two."""
    lines: list[str] = []
    for service in services:
        lines += [*([""] if lines else []), *compose_service(service, extras[service.name])]
    return lines


def compose_secrets(services: Sequence[ServiceDeclaration]) -> list[str]:
    """Compose's `secrets:` entries of each service's two passwords (deploy.make_secrets)."""
    lines = []
    for service in services:
        for kind in ("nats", "mongo"):
            secret = f"{kind}_password_{service.name}"
            lines += [f"  {secret}:", f"    file: ./deploy/secrets/{secret}"]
    return lines


def mongo_init_secrets(services: Sequence[ServiceDeclaration]) -> list[str]:
    """The `mongo-init` job's secrets: each service's MongoDB password."""
    return [f"      - mongo_password_{service.name}" for service in services]


def mongo_users(
    services: Sequence[ServiceDeclaration], extras: dict[str, ServiceExtras]
) -> list[str]:
    """create-users.js's lists: whom to create, and who may append to the audit log."""
    audit = [s.name for s in services if extras[s.name].audit_log]
    return [
        f"const services = {json.dumps([s.name for s in services])};",
        f"const recordsAudit = new Set({json.dumps(audit)});",
    ]


def scrape_targets(services: Sequence[ServiceDeclaration]) -> list[str]:
    """Prometheus's `ibest-services` targets: every service on its declared port."""
    return ["      - targets:", *(f"          - {s.name}:{s.port}" for s in services)]


def caddy_routes(services: Sequence[ServiceDeclaration]) -> list[str]:
    """The people's proxy's route to each service with a `proxy_path`."""
    lines = []
    for service in services:
        if service.proxy_path is None:
            continue
        path = service.proxy_path
        lines += [
            f"\t# {service.name}'s HTTP API (its proxy_path); its /metrics stays inside.",
            f"\thandle {path}/metrics* {{",
            "\t\trespond 404",
            "\t}",
            f"\thandle_path {path}/* {{",
            f"\t\treverse_proxy {service.name}:{service.port}",
            "\t}",
        ]
    return lines
