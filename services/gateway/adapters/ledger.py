"""The gateway's id ledger in MongoDB (collection `event_ids`): one document per (trust, id)
the stream stored through the gateway, `_id` `<trust>:<id>` (`ibest.backbone.ledger
.ledger_key`), `digest` (its content), `at` (when). Kept as long as the stream keeps
events, so a duplicate is known as one however late it comes. A request costs one read
(`known`) and, for what it stored, one bulk insert (`record`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from ibest.backbone.ledger import ledger_key
from ibest.backbone.mongo import only_duplicate_keys

Document = dict[str, Any]


class MongoIdLedger:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._ids = db["event_ids"]

    async def known(self, trust: str, ids: Sequence[str]) -> dict[str, str]:
        """The content digest of each of `trust`'s ids already stored, by id."""
        if not ids:
            return {}
        prefix = len(trust) + 1
        keys = [ledger_key(trust, eid) for eid in ids]
        return {
            str(d["_id"])[prefix:]: str(d["digest"])
            async for d in self._ids.find({"_id": {"$in": keys}}, {"digest": 1})
        }

    async def record(self, trust: str, stored: Sequence[tuple[str, str]], at: datetime) -> None:
        """Remember (id, digest) of events the stream just stored for `trust`; one already
        remembered (a concurrent request's) is left as it is."""
        docs = [{"_id": ledger_key(trust, eid), "digest": d, "at": at} for eid, d in stored]
        if not docs:
            return
        try:
            await self._ids.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            if not only_duplicate_keys(exc):
                raise
