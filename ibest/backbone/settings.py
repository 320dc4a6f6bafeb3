"""Configuration from the environment; every variable is listed in docs/configuration.md."""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ibest.backbone.secrets import SecretError, read_secret
from shared.eventtime import TimeBounds


def inbox_prefix(user: str) -> str:
    """Replies to a NATS user go to inboxes of its own, so permissions keep every other
    user from reading them (contact emails and dead letters travel as replies)."""
    return f"_INBOX_{user}"


PORT_VARIABLE = re.compile(r"IBEST_([A-Z][A-Z0-9]*)_PORT")
"""`IBEST_<NAME>_PORT`: the HTTP port of service `<name>` (its declaration gives the default)."""


def ports_from(variables: Mapping[str, Any]) -> dict[str, int]:
    """The service ports set in `variables` (the environment, or a settings' arguments),
    by service name. The backbone knows no service: any `IBEST_<NAME>_PORT` is read, and a
    service finds its own with `Settings.port_of`."""
    ports = {}
    for key, value in variables.items():
        if match := PORT_VARIABLE.fullmatch(key):
            try:
                ports[match.group(1).lower()] = int(value)
            except (TypeError, ValueError):
                raise ValueError(f"{key}={value!r} is not a port number") from None
    return ports


class Settings(BaseSettings):
    """Settings shared by every service process and the CLI."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    nats_url: str = Field(default="nats://127.0.0.1:4222", alias="NATS_URL")
    nats_user: str | None = Field(default=None, alias="NATS_USER")
    nats_password_file: Path | None = Field(
        default=None,
        alias="NATS_PASSWORD_FILE",
        description="File holding NATS_USER's password (a Docker secret); never in the URL.",
    )
    nats_tls_ca_file: Path | None = Field(
        default=None,
        alias="NATS_TLS_CA_FILE",
        description="CA certificate that signed the NATS server's; makes the connection TLS.",
    )
    mongodb_url: str = Field(default="mongodb://127.0.0.1:27017", alias="MONGODB_URL")
    mongodb_username: str | None = Field(default=None, alias="MONGODB_USERNAME")
    mongodb_password_file: Path | None = Field(
        default=None,
        alias="MONGODB_PASSWORD_FILE",
        description="File holding MONGODB_USERNAME's password (a Docker secret).",
    )
    db_prefix: str = Field(
        default="ibest",
        alias="IBEST_DB_PREFIX",
        description="Each service uses the database <prefix>_<service>.",
    )
    http_host: str = Field(default="127.0.0.1", alias="IBEST_HTTP_HOST")
    ports: dict[str, int] = Field(
        default_factory=lambda: ports_from(os.environ),
        description="Service ports by name, from IBEST_<NAME>_PORT (Settings.port_of).",
    )
    # Messages per pull, applied together: a batch costs the database about the same few
    # bulk writes at 100 events as at 500, so larger batches catch up faster after a
    # backlog (docs/performance.md); at modest rates a pull returns what has arrived.
    batch_size: int = Field(default=500, ge=1, le=1000, alias="IBEST_BATCH_SIZE")
    # A pull waits this long for its batch to fill: at modest rates it is the latency each
    # consumer adds (docs/performance.md); under load batches fill long before it.
    fetch_timeout: float = Field(default=0.1, gt=0, alias="IBEST_FETCH_TIMEOUT")
    ack_wait: float = Field(default=30.0, gt=0, alias="IBEST_ACK_WAIT")
    max_deliveries: int = Field(
        default=20,
        ge=1,
        alias="IBEST_MAX_DELIVERIES",
        description="Attempts at a transient failure before the event is dead-lettered.",
    )
    retry_backoff_max: float = Field(default=60.0, gt=0, alias="IBEST_RETRY_BACKOFF_MAX")
    stream_replicas: int = Field(default=1, ge=1, le=5, alias="IBEST_STREAM_REPLICAS")
    duplicate_window: float = Field(
        default=3600.0,
        gt=0,
        alias="IBEST_DUPLICATE_WINDOW",
        description="Seconds JetStream remembers an event id to drop a re-published copy.",
    )

    deadletter_max_age_days: float = Field(
        default=90.0,
        gt=0,
        alias="IBEST_DEADLETTER_MAX_AGE_DAYS",
        description="Days a dead letter is kept before JetStream removes it (retention).",
    )
    events_per_subject: int = Field(
        default=10_000,
        ge=1,
        alias="IBEST_EVENTS_PER_SUBJECT",
        description="Most events the stream keeps per subject (one trust, one event type); "
        "a publish beyond it is refused. Bounds each trust's share of the store.",
    )

    platform_id_key_file: Path | None = Field(
        default=None,
        alias="IBEST_PLATFORM_ID_KEY_FILE",
        description="File holding the platform's id key (a Docker secret, at least 16 "
        "random characters): the key of every id the platform makes (derived events, forms, "
        "course-platform imports) and of the Nats-Msg-Id its publishers set, so no sender can "
        "compute, and pre-empt, one. Required by every service; `ibest up` makes a local one.",
    )

    def platform_id_key(self) -> bytes:
        """The platform's id key, read from `IBEST_PLATFORM_ID_KEY_FILE` (SecretError if it
        is unset, unreadable, a placeholder or too short)."""
        if self.platform_id_key_file is None:
            raise SecretError(
                "IBEST_PLATFORM_ID_KEY_FILE is not set: the platform's id key is needed to "
                "make ids no sender can pre-empt (generate it with `python -m deploy.make_secrets`)"
            )
        return read_secret(self.platform_id_key_file, "IBEST_PLATFORM_ID_KEY_FILE").encode()

    event_future_tolerance: float = Field(
        default=300.0,
        ge=0,
        alias="IBEST_EVENT_FUTURE_TOLERANCE",
        description="Seconds an event's time may be ahead of when the platform received it "
        "(the gateway's clock, else the stream's stored timestamp); later is refused "
        "(`future-time`) by the gateway, every consumer and a rebuild alike.",
    )
    programme_start: date = Field(
        default=date(2015, 1, 1),
        alias="IBEST_PROGRAMME_START",
        description="Earliest date (UTC) an event may carry; earlier is refused "
        "(`before-programme`).",
    )

    def time_bounds(self) -> TimeBounds:
        """The event-time rule's bounds (shared.eventtime), as every judge applies them."""
        return TimeBounds(
            future_tolerance=timedelta(seconds=self.event_future_tolerance),
            programme_start=datetime.combine(self.programme_start, time(0), tzinfo=UTC),
        )

    @property
    def nats_servers(self) -> list[str]:
        """NATS_URL may list several servers, comma-separated (a cluster's seed list)."""
        return [url.strip() for url in self.nats_url.split(",") if url.strip()]

    def nats_options(self) -> dict[str, Any]:
        """Credentials and TLS for nats.connect / NatsBroker, read from their files."""
        options: dict[str, Any] = {}
        if self.nats_user:
            options["user"] = self.nats_user
        if self.nats_password_file:
            options["password"] = read_secret(self.nats_password_file, "NATS_PASSWORD_FILE")
        if self.nats_tls_ca_file:
            options["tls"] = ssl.create_default_context(cafile=str(self.nats_tls_ca_file))
        return options

    def mongodb_options(self) -> dict[str, Any]:
        """Credentials for AsyncMongoClient, read from their file (not put in the URL)."""
        if not self.mongodb_password_file:
            return {}
        return {
            "username": self.mongodb_username,
            "password": read_secret(self.mongodb_password_file, "MONGODB_PASSWORD_FILE"),
        }

    @model_validator(mode="before")
    @classmethod
    def _ports_given_as_variables(cls, data: Any) -> Any:
        """`Settings(IBEST_REPORTING_PORT=...)` sets a port as the environment would."""
        if isinstance(data, dict) and (given := ports_from(data)):
            data = {**data, "ports": {**ports_from(os.environ), **given}}
        return data

    def port_of(self, service: str, default: int) -> int:
        """Service `service`'s HTTP port: `IBEST_<SERVICE>_PORT`, else its declared `default`."""
        return self.ports.get(service, default)

    def database_of(self, service: str) -> str:
        return f"{self.db_prefix}_{service}"
