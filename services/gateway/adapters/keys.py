"""API keys in MongoDB (collection `api_keys`): hashes only, never a key."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from services.gateway.domain.keys import ApiKey

Document = dict[str, Any]


class MongoKeyStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._keys = db["api_keys"]

    async def create_indexes(self) -> None:
        await self._keys.create_index([("trust", 1), ("revoked_at", 1)])

    async def get(self, key_id: str) -> ApiKey | None:
        doc = await self._keys.find_one({"_id": key_id})
        return _key(doc) if doc else None

    async def add(self, key: ApiKey) -> None:
        await self._keys.insert_one(
            {
                "_id": key.key_id,
                "trust": key.trust,
                "key_hash": key.key_hash,
                "created_at": key.created_at,
                "revoked_at": key.revoked_at,
            }
        )

    async def active_count(self, trust: str) -> int:
        return await self._keys.count_documents({"trust": trust, "revoked_at": None})

    async def all(self) -> list[ApiKey]:
        return [_key(d) async for d in self._keys.find({}).sort([("trust", 1), ("created_at", 1)])]

    async def revoke(self, key_id: str, at: datetime) -> ApiKey | None:
        await self._keys.update_one(
            {"_id": key_id, "revoked_at": None}, {"$set": {"revoked_at": at}}
        )
        return await self.get(key_id)


def _key(doc: Document) -> ApiKey:
    return ApiKey(
        doc["_id"], doc["trust"], doc["key_hash"], doc["created_at"], doc.get("revoked_at")
    )
