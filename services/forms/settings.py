"""Settings of the forms service alone (its port is ibest.backbone.settings'
`IBEST_FORMS_PORT`). Secrets come from files (ibest/backbone/secrets.py)."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ibest.backbone.secrets import read_secret


class FormsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    link_secret_file: Path | None = Field(
        default=None,
        alias="IBEST_FORMS_LINK_SECRET_FILE",
        description="File holding the secret that signs clinicians' form links (the forms "
        "service and notifications read the same file). Required.",
    )
    previous_link_secret_file: Path | None = Field(
        default=None,
        alias="IBEST_FORMS_PREVIOUS_LINK_SECRET_FILE",
        description="During a rotation, the retired secret: links it signed still open "
        "until this is unset.",
    )
    id_key_file: Path | None = Field(
        default=None,
        alias="IBEST_FORMS_ID_KEY_FILE",
        description="File holding the key of the forms' event ids (shared.keyed."
        "keyed_event_id) and CSRF tokens. Required. (Becomes the platform's id key "
        "setting once that lands.)",
    )
    base_url: str = Field(
        default="http://127.0.0.1:8006",
        alias="IBEST_FORMS_BASE_URL",
        description="The public address of the forms, as links and QR codes carry it.",
    )
    session_minutes: float = Field(
        default=60,
        gt=0,
        alias="IBEST_FORMS_SESSION_MINUTES",
        description="Minutes a site team's sign-in lasts.",
    )
    cookie_secure: bool = Field(
        default=True,
        alias="IBEST_FORMS_COOKIE_SECURE",
        description="Mark the session cookie Secure (browsers send it over HTTPS, and to "
        "localhost).",
    )
    rate_per_second: float = Field(
        default=5,
        gt=0,
        alias="IBEST_FORMS_RATE",
        description="Requests per second per client address and per link (sustained).",
    )
    rate_burst: int = Field(
        default=60, ge=1, alias="IBEST_FORMS_BURST", description="Requests at once."
    )
    submissions_retention_days: float = Field(
        default=30,
        gt=0,
        alias="IBEST_FORMS_SUBMISSIONS_RETENTION_DAYS",
        description="Days a submission's id is kept, so a retry of the same page stays one event.",
    )
    outbox_interval: float = Field(default=5, gt=0, alias="IBEST_FORMS_OUTBOX_INTERVAL")
    outbox_limit: int = Field(default=500, ge=1, alias="IBEST_FORMS_OUTBOX_LIMIT")

    def link_secrets(self) -> tuple[bytes, ...]:
        """The current link secret first, then the previous one (rotation)."""
        if self.link_secret_file is None:
            raise ValueError("IBEST_FORMS_LINK_SECRET_FILE is not set")
        out = [read_secret(self.link_secret_file, "IBEST_FORMS_LINK_SECRET_FILE").encode()]
        if self.previous_link_secret_file is not None:
            out.append(
                read_secret(
                    self.previous_link_secret_file, "IBEST_FORMS_PREVIOUS_LINK_SECRET_FILE"
                ).encode()
            )
        return tuple(out)

    def id_key(self) -> bytes:
        if self.id_key_file is None:
            raise ValueError("IBEST_FORMS_ID_KEY_FILE is not set")
        return read_secret(self.id_key_file, "IBEST_FORMS_ID_KEY_FILE").encode()

    def csrf_key(self) -> bytes:
        return hmac.new(self.id_key(), b"ibest-forms-csrf", hashlib.sha256).digest()
