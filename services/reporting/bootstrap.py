"""Builds the reporting service from explicit settings and a database: shared by the
runtime (service.py), the `ibest reporting` commands, `ibest purge-nhs-numbers` and the
tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nats.js import JetStreamContext
from pymongo.asynchronous.database import AsyncDatabase

from ibest.backbone.audit import AuditLog
from ibest.backbone.clock import Clock, utc_now
from ibest.backbone.tokens import Token
from services.reporting.adapters.replay import StreamHistory
from services.reporting.adapters.store import MongoGenerationStore
from services.reporting.application import NAME, ReportingService
from services.reporting.names import Names, load_names
from services.reporting.reports import Reporting
from services.reporting.settings import ReportingSettings
from shared.eventtime import DEFAULT_TIME_BOUNDS, TimeBounds

__all__ = ["NAME", "ReportingParts", "build", "for_commands", "stream_history"]


@dataclass(frozen=True)
class ReportingParts:
    store: MongoGenerationStore
    service: ReportingService
    """The write use cases: what the handlers and the rebuild use."""
    reports: Reporting
    """The read use cases: what the HTTP routes and the metrics snapshot use."""


def build(
    settings: ReportingSettings,
    db: AsyncDatabase[dict[str, Any]],
    clock: Clock = utc_now,
    audit: AuditLog | None = None,
) -> ReportingParts:
    """The reporting service over `db` (no I/O: the runtime also creates the writable
    generations' indexes)."""
    return _parts(
        db,
        clock,
        settings.token_list(),
        audit,
        protect_national=settings.protect_national,
        names=load_names(settings.trusts_file),
    )


def for_commands(db: AsyncDatabase[dict[str, Any]]) -> ReportingParts:
    """What an operator command rebuilds with: no settings, so no tokens and no audit
    (it answers no report)."""
    return _parts(db, utc_now, [], None, protect_national=False, names=load_names())


def stream_history(js: JetStreamContext, bounds: TimeBounds = DEFAULT_TIME_BOUNDS) -> StreamHistory:
    """The stored events a rebuild replays: the events stream, each event's time judged
    against when the stream stored it (`bounds`: the settings' event-time rule)."""
    return StreamHistory(js, bounds=bounds)


def _parts(
    db: AsyncDatabase[dict[str, Any]],
    clock: Clock,
    tokens: list[Token],
    audit: AuditLog | None,
    *,
    protect_national: bool,
    names: Names,
) -> ReportingParts:
    store = MongoGenerationStore(db)
    return ReportingParts(
        store,
        ReportingService(store),
        Reporting(store, clock, tokens, audit, protect_national=protect_national, names=names),
    )
