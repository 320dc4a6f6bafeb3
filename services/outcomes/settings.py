"""Settings of the outcomes service alone (the shared ones are ibest.backbone.settings)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class OutcomesSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    outbox_interval: float = Field(
        default=5.0, gt=0, alias="IBEST_OUTCOMES_OUTBOX_INTERVAL",
        description="Seconds between sweeps that re-publish outcome.recorded events left "
                    "unpublished (for example by a crash between storing and publishing).",
    )
    outbox_batch: int = Field(
        default=100, ge=1, le=10_000, alias="IBEST_OUTCOMES_OUTBOX_BATCH",
        description="Patients whose pending events one sweep publishes.",
    )
    max_write_attempts: int = Field(
        default=20, ge=1, alias="IBEST_OUTCOMES_MAX_WRITE_ATTEMPTS",
        description="Compare-and-set attempts on a patient before the event is retried "
                    "by redelivery instead.",
    )
