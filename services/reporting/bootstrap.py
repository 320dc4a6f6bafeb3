"""Builds the reporting service from explicit settings and a database: shared by the
runtime (service.py), the `ibest reporting` commands, `ibest purge-nhs-numbers` and the
tests."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from ibest.backbone.audit import AuditLog
from ibest.backbone.runtime import Clock, utc_now
from services.reporting.adapters.store import Store
from services.reporting.reports import Reporting
from services.reporting.settings import ReportingSettings

NAME = "reporting"


def build(
    settings: ReportingSettings,
    db: AsyncDatabase[dict[str, Any]],
    clock: Clock = utc_now,
    audit: AuditLog | None = None,
) -> Reporting:
    """The reporting application over `db` (no I/O). Commands that only rebuild pass no
    audit log and answer no report, so they need no tokens."""
    return Reporting(
        Store(db), clock, settings.token_list(), audit, protect_national=settings.protect_national
    )


def for_commands(db: AsyncDatabase[dict[str, Any]]) -> Reporting:
    """The application an operator command rebuilds with: no tokens, no audit."""
    return Reporting(Store(db), utc_now, [])
