"""Check the deployment files against the service declarations (ibest/registry.py).

What is generated from the declarations is regenerated (`python -m deploy.nats.generate`:
NATS users, permissions and accounts; `python -m deploy.make_secrets`: every service's
passwords). What is written by hand, because each service's entry carries settings of its
own, is checked here, so a service added to the registry, or a port changed, fails CI until
these agree: docker-compose.yml (the service, its NATS and MongoDB users and secrets, its
health check on its port, the MongoDB init job's secrets), deploy/mongo/create-users.js
(its MongoDB user), deploy/prometheus/prometheus.yml (its scrape target) and the Caddy
proxies (its route, on its port). `python -m deploy.declared` prints what disagrees.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from ibest import registry
from ibest.backbone.declaration import ServiceDeclaration

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
CREATE_USERS = ROOT / "deploy" / "mongo" / "create-users.js"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
CADDYFILES = (ROOT / "deploy" / "caddy" / "Caddyfile", ROOT / "deploy" / "gateway" / "Caddyfile")
SCRAPE_JOB = "ibest-services"


def _secret_sources(entry: dict[str, Any]) -> set[str]:
    return {s["source"] if isinstance(s, dict) else s for s in entry.get("secrets") or []}


def compose_problems(services: Sequence[ServiceDeclaration], compose: dict[str, Any]) -> list[str]:
    """docker-compose.yml: one entry per declared service, run, named and secreted as such."""
    problems = []
    entries: dict[str, Any] = compose.get("services") or {}
    secrets: dict[str, Any] = compose.get("secrets") or {}
    init = _secret_sources(entries.get("mongo-init") or {})
    for service in services:
        entry = entries.get(service.name)
        where = f"docker-compose.yml service {service.name}"
        if entry is None:
            problems.append(f"{where}: missing")
            continue
        if entry.get("command") != ["python", "-m", service.package]:
            problems.append(f"{where}: command is not python -m {service.package}")
        env = entry.get("environment") or {}
        if env.get("NATS_USER") != service.name:
            problems.append(f"{where}: NATS_USER is not {service.name}")
        if env.get("MONGODB_USERNAME") != f"ibest-{service.name}":
            problems.append(f"{where}: MONGODB_USERNAME is not ibest-{service.name}")
        for secret in (f"nats_password_{service.name}", f"mongo_password_{service.name}"):
            if secret not in _secret_sources(entry):
                problems.append(f"{where}: does not mount secret {secret}")
            if secret not in secrets:
                problems.append(f"docker-compose.yml secrets: {secret} is not defined")
        if f"mongo_password_{service.name}" not in init:
            problems.append(f"docker-compose.yml mongo-init: no mongo_password_{service.name}")
        health = " ".join(map(str, (entry.get("healthcheck") or {}).get("test") or []))
        if f":{service.port}/readyz" not in health:
            problems.append(f"{where}: health check does not ask :{service.port}/readyz")
    declared = {s.package for s in services}
    for name, entry in entries.items():
        command = entry.get("command") or []
        runs_service = command[:2] == ["python", "-m"] and str(command[2]).startswith("services.")
        if runs_service and command[2] not in declared:
            problems.append(
                f"docker-compose.yml service {name}: runs {command[2]}, which is not in "
                "ibest/registry.py"
            )
    return problems


def mongo_users_problems(services: Sequence[ServiceDeclaration], script: str) -> list[str]:
    """create-users.js makes one MongoDB user per declared service, no other."""
    match = re.search(r"for \(const service of \[([^\]]*)\]\)", script)
    listed = re.findall(r'"([^"]+)"', match.group(1)) if match else []
    wanted = [s.name for s in services]
    if listed != wanted:
        return [f"deploy/mongo/create-users.js creates users for {listed}, not {wanted}"]
    return []


def prometheus_problems(
    services: Sequence[ServiceDeclaration], config: dict[str, Any]
) -> list[str]:
    """Prometheus scrapes every declared service on its port, and nothing else as one."""
    targets: list[str] = []
    for job in config.get("scrape_configs") or []:
        if job.get("job_name") == SCRAPE_JOB:
            for static in job.get("static_configs") or []:
                targets += static.get("targets") or []
    wanted = [f"{s.name}:{s.port}" for s in services]
    if targets != wanted:
        return [
            f"deploy/prometheus/prometheus.yml job {SCRAPE_JOB} scrapes {targets}, not {wanted}"
        ]
    return []


def caddy_problems(services: Sequence[ServiceDeclaration], caddyfiles: Sequence[str]) -> list[str]:
    """Each proxied service is routed at its declared path, on its declared port; no route
    reaches a declared service on another port."""
    problems = []
    text = "\n".join(caddyfiles)
    by_name = {s.name: s for s in services}
    for host, port in re.findall(r"reverse_proxy\s+([\w-]+):(\d+)", text):
        service = by_name.get(host)
        if service is not None and int(port) != service.port:
            problems.append(f"Caddy routes to {host}:{port}, not its port {service.port}")
    for service in services:
        if service.proxy_path is None:
            continue
        route = re.compile(
            rf"handle_path {re.escape(service.proxy_path)}/\* \{{\s*reverse_proxy "
            rf"{service.name}:{service.port}\s*\}}"
        )
        if not route.search(text):
            problems.append(
                f"deploy/caddy/Caddyfile: no route {service.proxy_path}/* to "
                f"{service.name}:{service.port}"
            )
    return problems


def problems(services: Sequence[ServiceDeclaration] = registry.SERVICES) -> list[str]:
    """Everything in the hand-written deployment files that disagrees with `services`."""
    return [
        *compose_problems(services, yaml.safe_load(COMPOSE.read_text())),
        *mongo_users_problems(services, CREATE_USERS.read_text()),
        *prometheus_problems(services, yaml.safe_load(PROMETHEUS.read_text())),
        *caddy_problems(services, [path.read_text() for path in CADDYFILES]),
    ]


def main() -> int:
    found = problems()
    for problem in found:
        print(problem, file=sys.stderr)
    if not found:
        print("deployment files agree with ibest/registry.py")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
