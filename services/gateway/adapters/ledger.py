"""The gateway's id ledger in MongoDB (collection `event_ids`): one document per (trust, id)
sent through the gateway, `_id` `<trust>:<id>` (`ibest.backbone.consumer.ledger_key`),
`digest`, `stored` (the stream acknowledged it), `at` (first sent). Kept as long as the
stream keeps events, so a duplicate is known as one however late it comes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from ibest.backbone.consumer import ledger_key
from ibest.backbone.mongo import only_duplicate_keys
from services.gateway.domain.ledger import Claim, judge

Document = dict[str, Any]


class MongoIdLedger:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._ids = db["event_ids"]

    async def claim(
        self, trust: str, events: Sequence[tuple[str, str]], at: datetime
    ) -> list[Claim]:
        """Record each (id, digest) not yet known for `trust`; what each one is. One insert of
        every id, and a read of only those already known (a fresh request: one round trip)."""
        docs: list[Document] = [
            {"_id": ledger_key(trust, eid), "digest": d, "stored": False, "at": at}
            for eid, d in events
        ]
        if not docs:
            return []
        known: dict[str, Document] = {}
        try:
            await self._ids.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            if not only_duplicate_keys(exc):
                raise
            again = [docs[e["index"]]["_id"] for e in exc.details["writeErrors"]]
            known = {d["_id"]: d async for d in self._ids.find({"_id": {"$in": again}})}
        return [
            judge(known[doc["_id"]]["digest"], bool(known[doc["_id"]].get("stored")), doc["digest"])
            if doc["_id"] in known
            else Claim.FRESH
            for doc in docs
        ]

    async def stored(self, trust: str, ids: Sequence[str]) -> None:
        """The stream acknowledged these ids of `trust`."""
        if ids:
            keys = [ledger_key(trust, eid) for eid in ids]
            await self._ids.update_many({"_id": {"$in": keys}}, {"$set": {"stored": True}})
