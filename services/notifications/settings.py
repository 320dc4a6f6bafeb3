"""Configuration of the notifications service (environment; see README.md)."""

from __future__ import annotations

import json
from datetime import time, timedelta
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ibest.backbone.outbox_values import OutboxSettings
from ibest.backbone.secrets import read_secret
from services.notifications.domain.hours import WorkingHours, parse_days
from services.notifications.domain.training import TrainingRules
from shared.events import ReminderKind

SECRET_FILES = {
    "notify_api_key": "IBEST_NOTIFY_API_KEY",
    "callback_token": "IBEST_NOTIFY_CALLBACK_TOKEN",
    "smtp_password": "IBEST_SMTP_PASSWORD",
}
"""Settings that are secrets: each also read from `<variable>_FILE`."""


class NotificationSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    channel: Literal["notify", "smtp", "log"] = Field(default="log", alias="IBEST_NOTIFY_CHANNEL")
    poll_seconds: float = Field(default=30.0, gt=0, alias="IBEST_NOTIFY_POLL_SECONDS")
    # Finished reminders whose events one pass publishes (the outbox relay runs each pass).
    outbox_limit: int = Field(default=500, ge=1, alias="IBEST_NOTIFY_OUTBOX_LIMIT")
    # Rules
    start_after_days: float = Field(default=7, ge=0, alias="IBEST_NOTIFY_START_AFTER_DAYS")
    continue_after_days: float = Field(default=14, ge=0, alias="IBEST_NOTIFY_CONTINUE_AFTER_DAYS")
    max_training_reminders: int = Field(
        default=3, ge=0, alias="IBEST_NOTIFY_MAX_TRAINING_REMINDERS"
    )
    training_spacing_days: float = Field(
        default=7, ge=0, alias="IBEST_NOTIFY_TRAINING_SPACING_DAYS"
    )
    closing_before_days: int = Field(default=14, ge=0, alias="IBEST_NOTIFY_CLOSING_BEFORE_DAYS")
    thanks_max_age_days: float = Field(default=30, gt=0, alias="IBEST_NOTIFY_THANKS_MAX_AGE_DAYS")
    # Working hours
    working_days: str = Field(default="mon-fri", alias="IBEST_NOTIFY_WORKING_DAYS")
    working_start: time = Field(default=time(8, 0), alias="IBEST_NOTIFY_WORKING_START")
    working_end: time = Field(default=time(18, 0), alias="IBEST_NOTIFY_WORKING_END")
    timezone: str = Field(default="Europe/London", alias="IBEST_NOTIFY_TIMEZONE")
    # Sending
    lease_seconds: float = Field(default=300, gt=0, alias="IBEST_NOTIFY_LEASE_SECONDS")
    retry_base_seconds: float = Field(default=60, ge=0, alias="IBEST_NOTIFY_RETRY_BASE_SECONDS")
    retry_max_seconds: float = Field(default=3600, ge=0, alias="IBEST_NOTIFY_RETRY_MAX_SECONDS")
    max_attempts: int = Field(default=10, ge=1, alias="IBEST_NOTIFY_MAX_ATTEMPTS")
    contact_timeout: float = Field(default=2.0, gt=0, alias="IBEST_NOTIFY_CONTACT_TIMEOUT")
    course_url: str = Field(
        default="https://ibest.example.nhs.uk/course", alias="IBEST_NOTIFY_COURSE_URL"
    )
    intention_url: str = Field(
        default="https://ibest.example.nhs.uk/intention", alias="IBEST_NOTIFY_INTENTION_URL"
    )
    survey_url: str = Field(
        default="https://ibest.example.nhs.uk/delivery-survey?survey={survey}"
        "&clinician={clinician_ref}",
        alias="IBEST_NOTIFY_SURVEY_URL",
    )
    # Signed form links (services/forms, shared/links.py): when the forms' link secret is
    # set, the thank-you and survey emails carry signed links to the forms service instead
    # of the two URLs above (which put the clinician's reference in clear; deprecated).
    forms_link_secret_file: Path | None = Field(default=None, alias="IBEST_FORMS_LINK_SECRET_FILE")
    forms_base_url: str = Field(default="http://127.0.0.1:8006", alias="IBEST_FORMS_BASE_URL")
    # GOV.UK Notify
    notify_api_key: str = Field(default="", alias="IBEST_NOTIFY_API_KEY")
    notify_api_key_file: Path | None = Field(default=None, alias="IBEST_NOTIFY_API_KEY_FILE")
    notify_base_url: str = Field(
        default="https://api.notifications.service.gov.uk", alias="IBEST_NOTIFY_BASE_URL"
    )
    notify_rate_per_minute: int = Field(default=3000, ge=1, alias="IBEST_NOTIFY_RATE_PER_MINUTE")
    notify_timeout: float = Field(default=30, gt=0, alias="IBEST_NOTIFY_TIMEOUT")
    template_training_start: str = Field(default="", alias="IBEST_NOTIFY_TEMPLATE_TRAINING_START")
    template_training_continue: str = Field(
        default="", alias="IBEST_NOTIFY_TEMPLATE_TRAINING_CONTINUE"
    )
    template_training_thanks: str = Field(default="", alias="IBEST_NOTIFY_TEMPLATE_TRAINING_THANKS")
    template_follow_up_due: str = Field(default="", alias="IBEST_NOTIFY_TEMPLATE_FOLLOW_UP_DUE")
    template_follow_up_closing: str = Field(
        default="", alias="IBEST_NOTIFY_TEMPLATE_FOLLOW_UP_CLOSING"
    )
    template_delivery_survey_due: str = Field(
        default="", alias="IBEST_NOTIFY_TEMPLATE_DELIVERY_SURVEY_DUE"
    )
    template_delivery_survey_closing: str = Field(
        default="", alias="IBEST_NOTIFY_TEMPLATE_DELIVERY_SURVEY_CLOSING"
    )
    callback_token: str = Field(default="", alias="IBEST_NOTIFY_CALLBACK_TOKEN")
    callback_token_file: Path | None = Field(default=None, alias="IBEST_NOTIFY_CALLBACK_TOKEN_FILE")
    # SMTP
    smtp_host: str = Field(default="127.0.0.1", alias="IBEST_SMTP_HOST")
    smtp_port: int = Field(default=1025, alias="IBEST_SMTP_PORT")
    smtp_from: str = Field(default="ibest-noreply@example.nhs.uk", alias="IBEST_SMTP_FROM")
    smtp_username: str = Field(default="", alias="IBEST_SMTP_USERNAME")
    smtp_password: str = Field(default="", alias="IBEST_SMTP_PASSWORD")
    smtp_password_file: Path | None = Field(default=None, alias="IBEST_SMTP_PASSWORD_FILE")
    smtp_starttls: bool = Field(default=False, alias="IBEST_SMTP_STARTTLS")
    smtp_timeout: float = Field(default=30, gt=0, alias="IBEST_SMTP_TIMEOUT")
    # Retention (docs/information-governance.md)
    record_retention_days: float = Field(
        default=90, gt=0, alias="IBEST_NOTIFY_RECORD_RETENTION_DAYS"
    )
    retention_interval: float = Field(default=3600, gt=0, alias="IBEST_NOTIFY_RETENTION_INTERVAL")
    # Site teams
    site_teams: str = Field(default="", alias="IBEST_SITE_TEAMS")
    site_teams_file: str = Field(default="", alias="IBEST_SITE_TEAMS_FILE")

    @model_validator(mode="after")
    def _read_secret_files(self) -> NotificationSettings:
        """The Notify API key, its callback token and the SMTP password from secret files
        (Docker secrets), like every other secret; a value given both ways is refused."""
        for name, env in SECRET_FILES.items():
            path: Path | None = getattr(self, f"{name}_file")
            if path is None:
                continue
            if getattr(self, name):
                raise ValueError(f"set {env} or {env}_FILE, not both")
            setattr(self, name, read_secret(path, f"{env}_FILE"))
        return self

    @model_validator(mode="after")
    def _keep_thanks_past_replays(self) -> NotificationSettings:
        """A completion older than thanks_max_age_days is never thanked; a thank-you kept
        at least that long is never sent twice by a replay."""
        if self.record_retention_days < self.thanks_max_age_days:
            raise ValueError(
                "IBEST_NOTIFY_RECORD_RETENTION_DAYS must be at least "
                "IBEST_NOTIFY_THANKS_MAX_AGE_DAYS, so a replayed completion "
                "never finds its thank-you gone and thanks twice"
            )
        return self

    @property
    def record_retention(self) -> timedelta:
        return timedelta(days=self.record_retention_days)

    def training_rules(self) -> TrainingRules:
        return TrainingRules(
            start_after=timedelta(days=self.start_after_days),
            continue_after=timedelta(days=self.continue_after_days),
            max_reminders=self.max_training_reminders,
            spacing=timedelta(days=self.training_spacing_days),
        )

    def outbox(self) -> OutboxSettings:
        return OutboxSettings(interval=self.poll_seconds, limit=self.outbox_limit)

    def working_hours(self) -> WorkingHours:
        return WorkingHours(
            parse_days(self.working_days), self.working_start, self.working_end, self.timezone
        )

    def template_id(self, kind: ReminderKind) -> str:
        """The configured Notify template for `kind`; the kind's name when none is set."""
        configured: str = getattr(self, f"template_{kind.value}")
        return configured or kind.value

    def site_team_addresses(self) -> dict[str, list[str]]:
        """Site code -> team addresses, from IBEST_SITE_TEAMS (JSON) or a JSON/YAML file."""
        raw: object = {}
        if self.site_teams:
            raw = json.loads(self.site_teams)
        elif self.site_teams_file:
            raw = yaml.safe_load(Path(self.site_teams_file).read_text()) or {}
        if not isinstance(raw, dict):
            raise ValueError("site teams must map site codes to lists of addresses")
        teams: dict[str, list[str]] = {}
        for site, addresses in raw.items():
            teams[str(site)] = (
                [addresses] if isinstance(addresses, str) else [str(a) for a in addresses]
            )
        return teams

    def forms_link_secret(self) -> bytes | None:
        """The forms' current link secret, when configured (read from its file)."""
        from ibest.backbone.secrets import read_secret

        if self.forms_link_secret_file is None:
            return None
        return read_secret(self.forms_link_secret_file, "IBEST_FORMS_LINK_SECRET_FILE").encode()
