"""Configuration from the environment; every variable is listed in docs/configuration.md."""

from __future__ import annotations

import ssl
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ibest.backbone.secrets import read_secret
from shared.eventtime import TimeBounds


def inbox_prefix(user: str) -> str:
    """Replies to a NATS user go to inboxes of its own, so permissions keep every other
    user from reading them (contact emails and dead letters travel as replies)."""
    return f"_INBOX_{user}"


DEFAULT_PORTS = {
    "enrolment": 8001,
    "outcomes": 8002,
    "notifications": 8003,
    "reporting": 8004,
    "gateway": 8005,
}


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
    enrolment_port: int = Field(default=8001, alias="IBEST_ENROLMENT_PORT")
    outcomes_port: int = Field(default=8002, alias="IBEST_OUTCOMES_PORT")
    notifications_port: int = Field(default=8003, alias="IBEST_NOTIFICATIONS_PORT")
    reporting_port: int = Field(default=8004, alias="IBEST_REPORTING_PORT")
    gateway_port: int = Field(default=8005, alias="IBEST_GATEWAY_PORT")
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

    def admin_nats_options(self) -> dict[str, Any]:
        """`nats_options` for the operator's commands, on the CLI's own inbox prefix."""
        return {**self.nats_options(), "inbox_prefix": inbox_prefix("admin").encode()}

    def mongodb_options(self) -> dict[str, Any]:
        """Credentials for AsyncMongoClient, read from their file (not put in the URL)."""
        if not self.mongodb_password_file:
            return {}
        return {
            "username": self.mongodb_username,
            "password": read_secret(self.mongodb_password_file, "MONGODB_PASSWORD_FILE"),
        }

    def port_of(self, service: str) -> int:
        return int(getattr(self, f"{service}_port"))

    def database_of(self, service: str) -> str:
        return f"{self.db_prefix}_{service}"
