"""Builds the enrolment service from explicit settings and connections: shared by the
runtime (service.py), the `ibest enrolment` commands and the tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from ibest.backbone.consumer import Handlers
from ibest.backbone.outbox import OutboxRelay
from ibest.backbone.publisher import Publisher
from services.enrolment import handlers
from services.enrolment.adapters.repository import MongoClinicianRepository
from services.enrolment.application import EnrolmentService
from services.enrolment.declaration import DECLARATION
from services.enrolment.settings import EnrolmentSettings
from shared.catalogue import catalogue

NAME = DECLARATION.name


@dataclass(frozen=True)
class Enrolment:
    settings: EnrolmentSettings
    repository: MongoClinicianRepository
    service: EnrolmentService
    handlers: Handlers


def build(
    settings: EnrolmentSettings,
    db: AsyncDatabase[dict[str, Any]],
    publisher: Publisher,
    id_key: bytes,
) -> Enrolment:
    """The service over `db`, publishing with `publisher`, making derived ids with the
    platform's `id_key` (no I/O: the runtime also calls `repository.create_indexes()`)."""
    repository = MongoClinicianRepository(db)
    relay = OutboxRelay(repository.outbox, publisher, NAME, settings.outbox())
    service = EnrolmentService(repository, relay, catalogue(), id_key=id_key)
    return Enrolment(settings, repository, service, handlers.of(service))
