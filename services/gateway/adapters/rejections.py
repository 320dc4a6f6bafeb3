"""Rejected events in MongoDB (collection `rejections`), one document per trust and event.

Each part's rejection is merged into the event's document (`$addToSet`), so a redelivered
dead letter or a re-sent invalid event adds nothing twice. A TTL index removes documents
`retention_days` after the event was first rejected.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pymongo import DESCENDING, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

from ibest.backbone.document import Document
from services.gateway.domain.rejections import Position, Reason, Rejection, RejectionRow

TTL_INDEX = "received_at_ttl"


class MongoRejectionStore:
    def __init__(self, db: AsyncDatabase[Document], retention_days: float) -> None:
        self._db = db
        self._rows = db["rejections"]
        self._retention_seconds = int(retention_days * 86400)

    async def create_indexes(self) -> None:
        await self._rows.create_index([("trust", 1), ("received_at", DESCENDING)])
        try:
            await self._rows.create_index(
                "received_at", name=TTL_INDEX, expireAfterSeconds=self._retention_seconds
            )
        except OperationFailure:  # the retention setting changed: apply the new period
            await self._db.command(
                {
                    "collMod": "rejections",
                    "index": {"name": TTL_INDEX, "expireAfterSeconds": self._retention_seconds},
                }
            )

    async def record(self, rejections: Sequence[Rejection]) -> None:
        if not rejections:
            return
        ops = [
            UpdateOne(
                {"_id": r.group_key},
                {
                    "$setOnInsert": {
                        "trust": r.trust,
                        "event_id": r.event_id,
                        "type": r.event_type,
                    },
                    "$min": {"received_at": r.received_at},
                    "$addToSet": {
                        "rejected_by": {"$each": sorted({x.by for x in r.reasons})},
                        "reasons": {"$each": [x.model_dump() for x in r.reasons]},
                    },
                },
                upsert=True,
            )
            for r in rejections
        ]
        await self._rows.bulk_write(ops, ordered=False)

    async def since(
        self, trust: str, since: datetime, limit: int, after: Position | None = None
    ) -> list[tuple[RejectionRow, Position]]:
        query: Document = {"trust": trust, "received_at": {"$gte": since}}
        if after is not None:
            query["$or"] = [
                {"received_at": {"$lt": after.received_at}},
                {"received_at": after.received_at, "_id": {"$gt": after.key}},
            ]
        cursor = self._rows.find(query).sort([("received_at", DESCENDING), ("_id", 1)]).limit(limit)
        return [
            (
                RejectionRow(
                    id=d["event_id"],
                    type=d["type"],
                    received_at=d["received_at"],
                    rejected_by=d["rejected_by"],
                    reasons=[Reason(**x) for x in d["reasons"]],
                ),
                Position(d["received_at"], d["_id"]),
            )
            async for d in cursor
        ]
