"""Generate deploy/nats/nats.conf from deploy/trusts.yaml: accounts, users, permissions.

Run `python -m deploy.nats.generate` after changing the trusts file; CI checks the committed
file equals a fresh generation. Passwords are never written here: nats.conf includes
`passwords.conf` (a secret made by `python -m deploy.make_secrets`), which defines one
`NATS_PASSWORD_<USER>` variable per user.

NATS as a multi-tenant system (deploy/README.md, "NATS accounts"): account `IBEST` (the
platform) holds JetStream and `admin` (the CLI); every other user is alone in an account of
its own that imports, as services, exactly what it may do in `IBEST`, which exports each of
those subjects to that account only. JetStream answers a request (a publish's ack, a fetch,
a consumer's info) on the requester's reply subject; through an import that reply is
mapped back into the requester's own account, so no user can make the server write onto a
platform subject by naming a reply.
- each trust (`TRUST_<CODE>`, user `trust-<CODE>`) imports exactly the raw event subjects of
  its code, `ibest.v1.<CODE>.<raw event>`: no derived event, no wildcard, no JetStream API;
- each service (`ENROLMENT`, ...) imports the fetch, acknowledgement and info of its own
  durable consumer (declared by `ibest streams apply`; never create or delete), the two
  streams' info, the events it derives and its own dead letters;
- notifications imports the contact RPC (`ibest.rpc.enrolment.contact`) that enrolment's
  account exports to it alone; only enrolment subscribes to it and answers;
- `gateway` imports the raw events of any trust and its dead-letter consumer; `simulator`
  (demos) the raw events of any trust;
- every user receives replies on an inbox prefix of its own (`_INBOX_<user>`, trusts
  `_INBOX_<CODE>`) and may subscribe to nothing else (enrolment: also the contact RPC).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ibest import registry
from ibest.backbone.declaration import ServiceDeclaration
from ibest.backbone.settings import Settings, inbox_prefix
from ibest.backbone.streams import (
    DEADLETTER_PREFIX,
    DEADLETTER_STREAM,
    EVENTS_STREAM,
    GATEWAY_CONSUMER,
)
from ibest.simulate.trusts import DEFAULT_TRUSTS_FILE, Trust, load_trusts
from shared.envelope import EVENT_TYPES, MAX_EVENT_BYTES, SUBJECT_PREFIX

CONF_PATH = Path(__file__).resolve().parent / "nats.conf"
PASSWORDS_INCLUDE = "passwords.conf"
ACCOUNT = "IBEST"
DERIVED = {service.name: list(service.publishes) for service in registry.SERVICES}
"""The events each service derives (ibest/registry.py); no trust may publish them."""
RAW_EVENTS = [
    t.name for t in EVENT_TYPES if t.name not in {n for names in DERIVED.values() for n in names}
]
GIB = 1024**3
PLATFORM_RESERVE_GIB = 10
"""Store beyond the trusts' shares: dead letters and the simulator's demo events."""


@dataclass
class User:
    name: str
    publish: list[str]
    subscribe: list[str]
    allow_responses: bool = False
    comment: str = ""

    @property
    def password_var(self) -> str:
        return password_var(self.name)


@dataclass
class Account:
    name: str
    users: list[User]
    jetstream: bool = False
    exports: dict[str, list[str]] = field(default_factory=dict)
    """Service exports: subject -> the accounts that may import it."""
    imports: list[tuple[str, str]] = field(default_factory=list)
    """(exporting account, subject) service imports."""

    def export(self, subject: str, to: Account) -> None:
        """Export `subject` to `to`, which imports it (so requests' replies stay in `to`)."""
        self.exports.setdefault(subject, []).append(to.name)
        to.imports.append((self.name, subject))


def password_var(user: str) -> str:
    """The variable (in passwords.conf) holding `user`'s password."""
    return "NATS_PASSWORD_" + user.upper().replace("-", "_")


def trust_account(trust: Trust) -> str:
    return f"TRUST_{trust.code}"


def trust_subjects(code: str) -> list[str]:
    """The raw event subjects a trust may publish: an allow list, no wildcard."""
    return [f"{SUBJECT_PREFIX}{code}.{name}" for name in RAW_EVENTS]


def _consumer_api(stream: str, consumer: str) -> list[str]:
    """Fetch, acknowledge and read the info of one durable consumer; never create it."""
    api = "$JS.API"
    return [
        f"{api}.INFO",
        f"{api}.STREAM.INFO.{EVENTS_STREAM}",
        f"{api}.STREAM.INFO.{DEADLETTER_STREAM}",
        f"{api}.CONSUMER.INFO.{stream}.{consumer}",
        f"{api}.CONSUMER.MSG.NEXT.{stream}.{consumer}",
        f"$JS.ACK.{stream}.{consumer}.>",
    ]


def service_user(service: ServiceDeclaration) -> User:
    """A service's user, from its declaration (ibest/registry.py): its own inbox; with
    consumed events, its durable consumer and its own dead letters; the events it derives;
    and the grants it declares (raw events, the dead-letter consumer, requests it sends
    or answers)."""
    grants = service.nats
    publish = [f"{SUBJECT_PREFIX}*.{name}" for name in RAW_EVENTS] if grants.raw_events else []
    publish += [f"{SUBJECT_PREFIX}*.{name}" for name in grants.makes]
    if service.consumes:
        publish += [
            *_consumer_api(EVENTS_STREAM, service.name),
            f"{DEADLETTER_PREFIX}.{service.name}",
        ]
    publish += [f"{SUBJECT_PREFIX}*.{name}" for name in service.publishes]
    if grants.deadletter_reader:
        publish += _consumer_api(DEADLETTER_STREAM, GATEWAY_CONSUMER)
    publish += grants.requests
    # Each service's replies arrive on its own inbox prefix (ibest.backbone.runtime), so
    # no other user can read them: the contact RPC's replies carry emails.
    subscribe = [f"{inbox_prefix(service.name)}.>", *grants.answers]
    return User(
        service.name,
        publish,
        subscribe,
        allow_responses=bool(grants.answers),
        comment=grants.comment or f"service {service.name}",
    )


def service_users() -> list[User]:
    return [service_user(service) for service in registry.SERVICES]


def trust_user(trust: Trust) -> User:
    return User(
        f"trust-{trust.code}",
        trust_subjects(trust.code),
        [f"_INBOX_{trust.code}.>"],
        comment=f"publisher of {trust.name}",
    )


def simulator_user() -> User:
    return User(
        "simulator",
        [f"{SUBJECT_PREFIX}*.{name}" for name in RAW_EVENTS],
        [f"{inbox_prefix('simulator')}.>"],
        comment="demo publisher of raw events for every trust",
    )


def admin_user() -> User:
    return User(
        "admin",
        [">"],
        [f"{inbox_prefix('admin')}.>"],
        comment="the ibest CLI: streams and consumers apply, dead letters",
    )


STREAMED_RESPONSES = "$JS.API.CONSUMER.MSG.NEXT."
"""Exports answered by many messages (a fetch delivers a batch): `response_type: stream`."""


def accounts(trusts: list[Trust]) -> list[Account]:
    """The platform account and one per service, the gateway, the simulator and each trust
    (deterministic order). Everything a user of another account may do in the platform
    account is a service it imports, so the replies JetStream sends go back into the
    requester's own account, whatever reply subject it names."""
    platform = Account(ACCOUNT, [admin_user()], jetstream=True)
    result = [platform]
    by_service: dict[str, Account] = {}
    answered = {subject: s.name for s in registry.SERVICES for subject in s.nats.answers}
    for user in [*service_users(), simulator_user()]:
        account = Account(user.name.upper(), [user])
        by_service[user.name] = account
        result.append(account)
        for subject in user.publish:
            if subject in answered:
                continue  # answered by a service's own account, below
            platform.export(subject, account)
    for service in registry.SERVICES:
        for subject in service.nats.requests:
            by_service[answered[subject]].export(subject, by_service[service.name])
    for trust in trusts:
        account = Account(trust_account(trust), [trust_user(trust)])
        for subject in trust_subjects(trust.code):
            platform.export(subject, account)
        result.append(account)
    return result


def all_users(trusts: list[Trust]) -> list[User]:
    return [user for account in accounts(trusts) for user in account.users]


def trust_share_bytes(events_per_subject: int) -> int:
    """Worst case a trust can store: each of its subjects (its raw events and the events
    the services derive from them) full of messages of the largest allowed size."""
    subjects = len(RAW_EVENTS) + sum(len(names) for names in DERIVED.values())
    return subjects * events_per_subject * MAX_EVENT_BYTES


def file_store_gib(trusts: list[Trust], events_per_subject: int) -> int:
    """JetStream's store: every trust's full share fits, plus the platform's reserve."""
    shares = len(trusts) * trust_share_bytes(events_per_subject)
    return -(-shares // GIB) + PLATFORM_RESERVE_GIB


def _list(values: list[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def _user_lines(user: User) -> list[str]:
    lines = [
        f"      # {user.comment}",
        f"      {{user: {json.dumps(user.name)}, password: ${user.password_var},",
        "       permissions: {",
        f"         publish: {{allow: {_list(user.publish)}}}",
        f"         subscribe: {{allow: {_list(user.subscribe)}}}",
    ]
    if user.allow_responses:
        lines.append('         allow_responses: {max: 1, expires: "30s"}')
    lines.append("       }}")
    return lines


def render(trusts: list[Trust], events_per_subject: int | None = None) -> str:
    """The whole nats.conf text for these trusts (deterministic)."""
    per_subject = events_per_subject or Settings.model_fields["events_per_subject"].default
    lines = [
        "# GENERATED by `python -m deploy.nats.generate` from deploy/trusts.yaml: do not edit.",
        "# Passwords: passwords.conf (a secret, `python -m deploy.make_secrets`) defines one",
        "# NATS_PASSWORD_<USER> variable per user.",
        f"include {PASSWORDS_INCLUDE}",
        "",
        "server_name: ibest-nats-1",
        "listen: 0.0.0.0:4222",
        "# Monitoring for the Prometheus exporter; not published outside the compose network.",
        "http: 0.0.0.0:8222",
        "max_payload: 1MB",
        "",
        "# Client connections are TLS only (certificate and key are secrets).",
        "tls {",
        '  cert_file: "/etc/nats/tls/tls.crt"',
        '  key_file: "/etc/nats/tls/tls.key"',
        "  timeout: 2",
        "}",
        "",
        "jetstream {",
        '  store_dir: "/data/jetstream"',
        "  # A single node has no replicas to fall back on: fsync every write.",
        "  sync_interval: always",
        f"  # {len(trusts)} trusts x {trust_share_bytes(per_subject) / GIB:.1f} GiB (each "
        f"subject at most {per_subject} events",
        f"  # of at most {MAX_EVENT_BYTES // 1024} KiB) + {PLATFORM_RESERVE_GIB} GiB for "
        "dead letters and demos.",
        f"  max_file_store: {file_store_gib(trusts, per_subject)}GB",
        "  max_memory_store: 256MB",
        "}",
        "",
        "accounts {",
    ]
    for account in accounts(trusts):
        lines.append(f"  {account.name} {{")
        if account.jetstream:
            lines.append("    jetstream: enabled")
        if account.exports:
            lines.append("    exports: [")
            for subject, importers in account.exports.items():
                streamed = (
                    ", response_type: stream" if subject.startswith(STREAMED_RESPONSES) else ""
                )
                lines.append(
                    f"      {{service: {json.dumps(subject)}, "
                    f"accounts: [{', '.join(importers)}]{streamed}}}"
                )
            lines.append("    ]")
        if account.imports:
            lines.append("    imports: [")
            lines += [
                f"      {{service: {{account: {exporter}, subject: {json.dumps(subject)}}}}}"
                for exporter, subject in account.imports
            ]
            lines.append("    ]")
        lines.append("    users: [")
        for user in account.users:
            lines += _user_lines(user)
        lines += ["    ]", "  }"]
    lines += ["}", ""]
    return "\n".join(lines)


ENV_EXAMPLE_PATH = Path(__file__).resolve().parents[2] / ".env.example"
ENV_EXAMPLE = """\
# Copy to .env (never committed). It holds no secret: every password, token, key and
# certificate is a file under deploy/secrets/ (`python -m deploy.make_secrets`, see its README).

COMPOSE_PROJECT_NAME=ibest
# The one port published for people: the TLS reverse proxy (Grafana at /, Prometheus at
# /prometheus/, Mailpit at /mailpit/, each behind a login).
HTTPS_PORT=8443
# Trust systems publish here over TLS.
NATS_CLIENT_PORT=4222
# HTTPS for trusts' systems (the gateway behind TLS); published on every interface.
GATEWAY_HTTPS_PORT=443
# The event id de-duplication window of the stream, in seconds.
IBEST_DUPLICATE_WINDOW=3600
# Most events kept per trust and event type (bounds each trust's share of the store; keep
# it equal to the value deploy/nats/nats.conf was generated with).
IBEST_EVENTS_PER_SUBJECT=10000
# Reminders: log (default, nothing sent), smtp (Mailpit locally) or notify (GOV.UK Notify).
IBEST_NOTIFY_CHANNEL=smtp
"""


def render_env_example(trusts: list[Trust]) -> str:
    """.env.example: settings only; no NATS user has a password here."""
    return ENV_EXAMPLE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trusts", type=Path, default=DEFAULT_TRUSTS_FILE)
    parser.add_argument("--out", type=Path, default=CONF_PATH)
    parser.add_argument("--check", action="store_true", help="fail if the file is out of date")
    args = parser.parse_args(argv)
    trusts = load_trusts(args.trusts)
    # The store is sized to the per-subject limit in force (IBEST_EVENTS_PER_SUBJECT).
    outputs = {
        args.out: render(trusts, Settings().events_per_subject),
        ENV_EXAMPLE_PATH: render_env_example(trusts),
    }
    stale = [
        path for path, text in outputs.items() if not path.exists() or path.read_text() != text
    ]
    if args.check:
        for path in stale:
            print(f"{path} is out of date: run python -m deploy.nats.generate", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.write_text(outputs[path])
        print(f"wrote {path}")
    print("then `python -m deploy.make_secrets` (new users' passwords) and restart nats")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
