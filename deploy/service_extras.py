"""What deploying one service needs beyond its declaration: `deploy/services/<name>.yml`.

The declaration (`services/<name>/declaration.py`) says what every deployment file derives
uniformly: name, port, events, NATS grants, proxy path. A few settings are genuinely the
service's own and have no place in the declaration because only the compose stack needs
them: extra environment (the notifications' SMTP relay, the gateway's rate limits), extra
secrets (reporting's tokens, the forms' keys), services it waits for, and whether its
MongoDB user may append to the audit log. They live in an optional file per service,

    audit_log: true                  # readWrite on ibest_<name>, and append to ibest_audit
    environment:                     # a block mapping; comments are kept
      IBEST_SERVICE_TOKENS_FILE: /run/secrets/service_tokens
    secrets: [service_tokens]        # compose secrets, beside its own passwords
    depends_on:                      # a block mapping, beside NATS, mongo-init, streams-init
      mailpit:
        condition: service_healthy

which `python -m deploy.generate` merges into the service's generated compose entry and
MongoDB user. A service without one gets the standard entry. `environment` and
`depends_on` are copied line for line (comments included), so the generated compose file
reads as the operator wrote them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

EXTRAS_DIR = Path(__file__).resolve().parent / "services"
KEYS = ("audit_log", "environment", "secrets", "depends_on")
SET_BY_THE_GENERATOR = {"NATS_USER", "MONGODB_USERNAME"}


class ExtrasError(ValueError):
    """A per-service file the generator cannot use; the message names the file and why."""


@dataclass(frozen=True)
class ServiceExtras:
    """One service's deployment extras (the module docstring); empty when it has no file."""

    audit_log: bool = False
    environment: tuple[str, ...] = ()
    """The `environment` block's lines, dedented (comments kept)."""
    secrets: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()
    """The `depends_on` block's lines, dedented (comments kept)."""
    parsed: dict[str, Any] | None = None
    """The file as YAML reads it: what the generated entry is checked against."""


def _block(text: str, key: str, where: str) -> tuple[str, ...]:
    """The lines under top-level `key:` (a block mapping), dedented; () if it is absent."""
    lines = text.splitlines()
    head = [i for i, line in enumerate(lines) if re.match(rf"{key}:", line)]
    if not head:
        return ()
    if not re.fullmatch(rf"{key}:\s*(#.*)?", lines[head[0]]):
        raise ExtrasError(f"{where}: write `{key}` as a block mapping, one entry per line")
    body: list[str] = []
    for line in lines[head[0] + 1 :]:
        if line and not line[0].isspace() and not line.startswith("#"):
            break
        body.append(line)
    while body and not body[-1].strip():
        body.pop()
    entries = [line for line in body if line.strip() and not line.lstrip().startswith("#")]
    if not entries:
        return ()
    indent = min(len(line) - len(line.lstrip()) for line in entries)
    return tuple(line[indent:] if line[:indent].isspace() else line.lstrip() for line in body)


def load(name: str, directory: Path = EXTRAS_DIR) -> ServiceExtras:
    """Service `name`'s extras from `<directory>/<name>.yml` (none if there is no file)."""
    path = directory / f"{name}.yml"
    if not path.exists():
        return ServiceExtras()
    where = f"deploy/services/{path.name}"
    text = path.read_text()
    parsed = yaml.safe_load(text) or {}
    if not isinstance(parsed, dict) or set(parsed) - set(KEYS):
        raise ExtrasError(f"{where}: a mapping of {', '.join(KEYS)} only")
    environment = parsed.get("environment") or {}
    if not isinstance(environment, dict) or set(environment) & SET_BY_THE_GENERATOR:
        raise ExtrasError(
            f"{where}: environment is a mapping, without {sorted(SET_BY_THE_GENERATOR)} "
            "(the generator sets those from the name)"
        )
    secrets = parsed.get("secrets") or []
    if not isinstance(secrets, list) or not all(isinstance(s, str) for s in secrets):
        raise ExtrasError(f"{where}: secrets is a list of compose secret names")
    if not isinstance(parsed.get("depends_on") or {}, dict):
        raise ExtrasError(f"{where}: depends_on is a mapping of service to condition")
    if not isinstance(parsed.get("audit_log", False), bool):
        raise ExtrasError(f"{where}: audit_log is true or false")
    return ServiceExtras(
        audit_log=parsed.get("audit_log", False),
        environment=_block(text, "environment", where),
        secrets=tuple(secrets),
        depends_on=_block(text, "depends_on", where),
        parsed=parsed,
    )
