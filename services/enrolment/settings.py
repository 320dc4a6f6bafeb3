"""Settings of the enrolment service alone (the shared ones are ibest.backbone.settings)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ibest.backbone.outbox_values import OutboxSettings
from services.enrolment.domain.retention import DEFAULT_CONTACT_RETENTION_DAYS


class EnrolmentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    outbox_interval: float = Field(
        default=10.0,
        gt=0,
        alias="IBEST_ENROLMENT_OUTBOX_INTERVAL",
        description="Seconds between passes that re-publish derived events left by a crash.",
    )
    outbox_limit: int = Field(
        default=500,
        ge=1,
        alias="IBEST_ENROLMENT_OUTBOX_LIMIT",
        description="Clinicians whose pending derived events one such pass publishes.",
    )
    contact_retention_days: float = Field(
        default=DEFAULT_CONTACT_RETENTION_DAYS,
        gt=0,
        alias="IBEST_ENROLMENT_CONTACT_RETENTION_DAYS",
        description="Days a contact email is kept after the clinician's latest event.",
    )
    retention_interval: float = Field(
        default=3600.0,
        gt=0,
        alias="IBEST_ENROLMENT_RETENTION_INTERVAL",
        description="Seconds between passes erasing contact emails past their retention.",
    )

    @property
    def contact_retention(self) -> timedelta:
        return timedelta(days=self.contact_retention_days)

    def outbox(self) -> OutboxSettings:
        return OutboxSettings(interval=self.outbox_interval, limit=self.outbox_limit)
