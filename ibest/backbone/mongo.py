"""What the services' MongoDB adapters share."""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient
from pymongo.errors import BulkWriteError

from ibest.backbone.settings import Settings

DUPLICATE_KEY = 11000


def only_duplicate_keys(exc: BulkWriteError) -> bool:
    """The bulk write failed only because some documents already existed (an insert or
    upsert that lost a race, or an id recorded before); everything else was written."""
    errors = exc.details.get("writeErrors", [])
    return (
        bool(errors)
        and all(e.get("code") == DUPLICATE_KEY for e in errors)
        and not exc.details.get("writeConcernErrors")
    )


def mongo_client(settings: Settings) -> AsyncMongoClient[dict[str, Any]]:
    """The MongoDB client the services and every command-line tool build, with the same
    options: timezone-aware datetimes, a short server selection timeout, and the
    credentials from their file (`Settings.mongodb_options`)."""
    return AsyncMongoClient(
        settings.mongodb_url,
        tz_aware=True,
        serverSelectionTimeoutMS=5000,
        **settings.mongodb_options(),
    )
