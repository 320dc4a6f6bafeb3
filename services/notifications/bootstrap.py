"""Builds the notifications service from explicit settings and connections: shared by the
runtime (service.py), the `ibest notifications` commands and the tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from ibest.backbone.clock import Clock, utc_now
from ibest.backbone.publisher import Publisher
from services.notifications.adapters.channels import make_channel
from services.notifications.adapters.repository import MongoNotificationsRepository
from services.notifications.application import NotificationsService
from services.notifications.ports import AuditTrail, Channel, ContactDirectory
from services.notifications.scheduler import NAME, Scheduler
from services.notifications.settings import NotificationSettings

__all__ = ["NAME", "Notifications", "build"]


@dataclass(frozen=True)
class Notifications:
    settings: NotificationSettings
    repository: MongoNotificationsRepository
    service: NotificationsService

    def scheduler(
        self,
        contacts: ContactDirectory,
        publisher: Publisher,
        id_key: bytes,
        channel: Channel | None = None,
    ) -> Scheduler:
        """The sender, by `channel` (the configured one by default), making event ids with
        the platform's `id_key`."""
        return Scheduler(
            self.repository,
            self.settings,
            channel or make_channel(self.settings),
            contacts,
            publisher,
            self.service.clock,
            id_key,
        )


def build(
    settings: NotificationSettings,
    db: AsyncDatabase[dict[str, Any]],
    clock: Clock = utc_now,
    *,
    audit: AuditTrail,
) -> Notifications:
    """The service over `db`, recording opt-out changes in `audit` (ibest.backbone.audit's
    log; no I/O: the runtime also calls `repository.ensure_indexes()`)."""
    repository = MongoNotificationsRepository(db)
    return Notifications(
        settings, repository, NotificationsService(repository, settings, clock, audit)
    )
