"""Settings of the enrolment service alone (the shared ones are ibest.backbone.settings)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class EnrolmentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    outbox_interval: float = Field(
        default=10.0, gt=0, alias="IBEST_ENROLMENT_OUTBOX_INTERVAL",
        description="Seconds between passes that re-publish derived events left by a crash.",
    )
