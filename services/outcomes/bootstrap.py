"""Builds the outcomes service from explicit settings and connections: shared by the
runtime (service.py), the `ibest outcomes` commands and the tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from ibest.backbone.clock import Clock, utc_now
from ibest.backbone.publisher import Publisher
from services.outcomes.adapters.repository import MongoOutcomesRepository
from services.outcomes.application import NAME, OutcomesService
from services.outcomes.settings import OutcomesSettings

__all__ = ["NAME", "Outcomes", "build"]


@dataclass(frozen=True)
class Outcomes:
    settings: OutcomesSettings
    repository: MongoOutcomesRepository
    service: OutcomesService


def build(
    settings: OutcomesSettings,
    db: AsyncDatabase[dict[str, Any]],
    publisher: Publisher,
    id_key: bytes,
    clock: Clock = utc_now,
) -> Outcomes:
    """The service over `db`, making outcome ids with the platform's `id_key` (no I/O: the
    runtime also calls `repository.create_indexes()`)."""
    repository = MongoOutcomesRepository(db)
    service = OutcomesService(repository, publisher, clock, settings, id_key=id_key)
    return Outcomes(settings, repository, service)
