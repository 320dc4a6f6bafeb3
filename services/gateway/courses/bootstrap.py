"""Builds the course-platform part from explicit settings and connections: for the gateway
service (xAPI routes, import metrics) and for `ibest import futurelearn`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from ibest.backbone.publisher import Publisher
from services.gateway.application import Gateway
from services.gateway.courses.adapters.metrics import PrometheusCourseMetrics
from services.gateway.courses.adapters.mongo import (
    MongoImportLedger,
    MongoLearnerStore,
    MongoStatementLedger,
)
from services.gateway.courses.application import CourseImport, ImportMetrics
from services.gateway.courses.settings import CourseSettings
from services.gateway.courses.statements import XapiStatements
from shared.catalogue import catalogue

Document = dict[str, Any]


@dataclass
class CourseParts:
    statements: XapiStatements | None
    """None when no programme key is configured (the xAPI route answers 503)."""
    metrics: ImportMetrics


async def build(
    settings: CourseSettings,
    db: AsyncDatabase[Document],
    gateway: Gateway,
    clock: Callable[[], datetime],
) -> CourseParts:
    """The part the gateway service runs, sharing its key check, stream and rejections."""
    ledger = MongoImportLedger(db)
    await ledger.create_indexes()
    metrics = PrometheusCourseMetrics()
    key = settings.clinician_key()
    statements = (
        XapiStatements(
            gateway.authenticate,
            MongoLearnerStore(db),
            MongoStatementLedger(db),
            gateway.rejection_store,
            gateway.stream,
            metrics,
            catalogue(),
            key,
            clock,
            gateway.limiter.take,
            gateway.address_limiter.take,
        )
        if key
        else None
    )
    return CourseParts(statements, ImportMetrics(ledger, metrics, settings.import_metrics_seconds))


async def importer(
    key: bytes, db: AsyncDatabase[Document], stream: Publisher, clock: Callable[[], datetime]
) -> CourseImport:
    """The import use case over the gateway's database (the CLI, the bench, tests)."""
    ledger = MongoImportLedger(db)
    await ledger.create_indexes()
    return CourseImport(MongoLearnerStore(db), ledger, stream, key, clock)
