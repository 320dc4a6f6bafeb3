"""The one command after adding a service (or a trust): regenerate the deployment files.

    python -m deploy.generate           # write what is stale, then make missing secrets
    python -m deploy.generate --check   # exit 1 with a unified diff of what is stale (CI)

From the service declarations (ibest/registry.py), each service's extras
(deploy/services/<name>.yml) and the trusts (deploy/trusts.yaml) it regenerates:
- deploy/nats/nats.conf and .env.example (deploy/nats/generate.py: NATS users, accounts,
  permissions);
- the sections between BEGIN/END GENERATED markers (deploy/sections.py, rendered by
  deploy/derived.py) of docker-compose.yml (the services' entries, `mongo-init`'s secrets,
  the services' password secrets), deploy/mongo/create-users.js (the MongoDB users),
  deploy/prometheus/prometheus.yml (the scrape targets) and deploy/caddy/Caddyfile (the
  routes of services with a `proxy_path`); everything outside the markers is the
  operator's and is left as it is;
- then, unless `--no-secrets`, the missing secrets in deploy/secrets/ (deploy/make_secrets.py:
  a new service's or trust's passwords, nats_passwords.conf).
`--check` also runs deploy/declared.py (hand-written routes on declared ports).
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import yaml

from deploy import declared, derived, make_secrets, service_extras
from deploy.nats.generate import render, render_env_example
from deploy.sections import SectionError, replace_section
from deploy.service_extras import ExtrasError, ServiceExtras
from ibest import registry
from ibest.backbone.declaration import ServiceDeclaration
from ibest.backbone.settings import Settings
from ibest.simulate.trusts import load_trusts

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = "docker-compose.yml"
CREATE_USERS = "deploy/mongo/create-users.js"
PROMETHEUS = "deploy/prometheus/prometheus.yml"
CADDYFILE = "deploy/caddy/Caddyfile"


class GenerationError(ValueError):
    """The generated text would not say what the declarations and extras say."""


Sections = dict[str, list[str]]


def _sections(
    services: Sequence[ServiceDeclaration], extras: dict[str, ServiceExtras]
) -> dict[str, Sections]:
    """Each file with generated sections, and each section's lines."""
    return {
        COMPOSE: {
            "services": derived.compose_services(services, extras),
            "mongo-init-secrets": derived.mongo_init_secrets(services),
            "service-secrets": derived.compose_secrets(services),
        },
        CREATE_USERS: {"services": derived.mongo_users(services, extras)},
        PROMETHEUS: {"scrape-targets": derived.scrape_targets(services)},
        CADDYFILE: {"routes": derived.caddy_routes(services)},
    }


def verify_compose(
    text: str, services: Sequence[ServiceDeclaration], extras: dict[str, ServiceExtras]
) -> None:
    """The compose file as YAML reads it gives each service what it is declared to have
    (the extras are copied line for line: this catches a block that did not fit)."""
    entries = (yaml.safe_load(text) or {}).get("services") or {}
    for service in services:
        name = service.name
        if len(re.findall(rf"^  {re.escape(name)}:", text, re.M)) != 1:
            raise GenerationError(f"{COMPOSE}: service {name} is written more than once")
        parsed = extras[name].parsed or {}
        entry = entries[name]
        wanted = {
            "NATS_USER": name,
            "MONGODB_USERNAME": f"ibest-{name}",
            **(parsed.get("environment") or {}),
        }
        env = entry.get("environment") or {}
        deps = entry.get("depends_on") or {}
        waits = parsed.get("depends_on") or {}
        sources = {s["source"] if isinstance(s, dict) else s for s in entry.get("secrets") or []}
        if (
            any(env.get(key) != value for key, value in wanted.items())
            or any(deps.get(key) != value for key, value in waits.items())
            or not set(parsed.get("secrets") or []) <= sources
        ):
            raise GenerationError(
                f"{COMPOSE}: the generated entry of {name} does not read back as its "
                f"declaration and deploy/services/{name}.yml say"
            )


def expected(
    root: Path = ROOT, services: Sequence[ServiceDeclaration] | None = None
) -> dict[str, str]:
    """Every generated file under `root` as it should read (path relative to `root`)."""
    declared_services = registry.SERVICES if services is None else services
    extras = {
        s.name: service_extras.load(s.name, root / "deploy" / "services") for s in declared_services
    }
    out: dict[str, str] = {}
    for path, sections in _sections(declared_services, extras).items():
        text = (root / path).read_text()
        for name, lines in sections.items():
            text = replace_section(text, name, lines, path)
        out[path] = text
    verify_compose(out[COMPOSE], declared_services, extras)
    trusts = load_trusts(root / "deploy" / "trusts.yaml")
    # The store is sized to the per-subject limit in force (IBEST_EVENTS_PER_SUBJECT).
    out["deploy/nats/nats.conf"] = render(trusts, Settings().events_per_subject)
    out[".env.example"] = render_env_example(trusts)
    return out


def stale(root: Path = ROOT, services: Sequence[ServiceDeclaration] | None = None) -> str:
    """A unified diff from the files under `root` to what they should be ("" if current)."""
    chunks: list[str] = []
    for path, text in expected(root, services).items():
        current = (root / path).read_text() if (root / path).exists() else ""
        if current != text:
            chunks += difflib.unified_diff(
                current.splitlines(keepends=True),
                text.splitlines(keepends=True),
                f"a/{path}",
                f"b/{path}",
            )
    return "".join(chunks)


def write(root: Path = ROOT, say: Callable[[str], None] = print) -> list[str]:
    """Write every stale generated file under `root`; the paths written."""
    written = []
    for path, text in expected(root).items():
        target = root / path
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
            say(f"wrote {path}")
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is stale")
    parser.add_argument("--no-secrets", action="store_true", help="do not make missing secrets")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout (default: this)")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except (SectionError, ExtrasError, GenerationError) as error:
        print(f"deploy.generate: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.check:
        diff = stale(args.root)
        problems = declared.problems(root=args.root)
        sys.stdout.write(diff)
        for problem in problems:
            print(problem, file=sys.stderr)
        if diff:
            print("stale: run python -m deploy.generate", file=sys.stderr)
        return 1 if diff or problems else 0
    write(args.root)
    if not args.no_secrets:
        directory = args.root / "deploy" / "secrets"
        for name in make_secrets.make(directory, self_signed=False, names=[]):
            print(f"made secret deploy/secrets/{name}")
    for problem in declared.problems(root=args.root):
        print(problem, file=sys.stderr)
    print("then `docker compose up -d` (it restarts what changed; nats for new users)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
