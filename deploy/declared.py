"""What the generator cannot regenerate, checked against the service declarations.

`python -m deploy.generate` writes every per-service part of the deployment files
(deploy/derived.py). Two hand-written things still name services and are checked here (and
by `python -m deploy.generate --check`), so a port changed in a declaration, or a service
removed from the registry, fails CI until they agree:
- the Caddy routes written by hand (the forms' paths, Notify's callback to notifications,
  the gateway's TLS front) reach each declared service on its declared port;
- no hand-written compose entry runs a `services.<name>` package that is not in
  ibest/registry.py.
`python -m deploy.declared` prints what disagrees.
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
CADDYFILES = ("deploy/caddy/Caddyfile", "deploy/gateway/Caddyfile")


def compose_problems(services: Sequence[ServiceDeclaration], compose: dict[str, Any]) -> list[str]:
    """No compose entry runs a service package the registry does not declare."""
    declared = {s.package for s in services}
    problems = []
    for name, entry in (compose.get("services") or {}).items():
        command = entry.get("command") or []
        runs_service = command[:2] == ["python", "-m"] and str(command[2]).startswith("services.")
        if runs_service and command[2] not in declared:
            problems.append(
                f"docker-compose.yml service {name}: runs {command[2]}, which is not in "
                "ibest/registry.py"
            )
    return problems


def caddy_problems(services: Sequence[ServiceDeclaration], caddyfiles: Sequence[str]) -> list[str]:
    """Every Caddy route to a declared service uses its declared port."""
    by_name = {s.name: s for s in services}
    problems = []
    for host, port in re.findall(r"reverse_proxy\s+([\w-]+):(\d+)", "\n".join(caddyfiles)):
        service = by_name.get(host)
        if service is not None and int(port) != service.port:
            problems.append(f"Caddy routes to {host}:{port}, not its port {service.port}")
    return problems


def problems(services: Sequence[ServiceDeclaration] | None = None, root: Path = ROOT) -> list[str]:
    """Everything hand-written under `root` that disagrees with `services` (the registry's)."""
    declared = registry.SERVICES if services is None else services
    return [
        *compose_problems(declared, yaml.safe_load((root / "docker-compose.yml").read_text())),
        *caddy_problems(declared, [(root / path).read_text() for path in CADDYFILES]),
    ]


def main() -> int:
    found = problems()
    for problem in found:
        print(problem, file=sys.stderr)
    if not found:
        print("the hand-written deployment files agree with ibest/registry.py")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
