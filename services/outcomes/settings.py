"""Settings of the outcomes service alone (the shared ones are ibest.backbone.settings)."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ibest.backbone.outbox_values import OutboxSettings


class OutcomesSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    outbox_interval: float = Field(
        default=5.0,
        gt=0,
        alias="IBEST_OUTCOMES_OUTBOX_INTERVAL",
        description="Seconds between sweeps that re-publish outcome.recorded events left "
        "unpublished (for example by a crash between storing and publishing).",
    )
    outbox_limit: int = Field(
        default=100,
        ge=1,
        le=10_000,
        validation_alias=AliasChoices(
            "IBEST_OUTCOMES_OUTBOX_LIMIT", "IBEST_OUTCOMES_OUTBOX_BATCH", "outbox_limit"
        ),
        description="Patients whose pending events one sweep publishes "
        "(IBEST_OUTCOMES_OUTBOX_BATCH is its former name, still read).",
    )
    max_write_attempts: int = Field(
        default=20,
        ge=1,
        alias="IBEST_OUTCOMES_MAX_WRITE_ATTEMPTS",
        description="Compare-and-set attempts on a patient before the event is retried "
        "by redelivery instead.",
    )

    def outbox(self) -> OutboxSettings:
        return OutboxSettings(interval=self.outbox_interval, limit=self.outbox_limit)
