"""API keys in MongoDB (collection `api_keys`): hashes only, never a key."""

from __future__ import annotations

from datetime import datetime

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from ibest.backbone.document import Document
from services.gateway.domain.keys import MAX_ACTIVE_KEYS, ApiKey


class MongoKeyStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._keys = db["api_keys"]

    async def create_indexes(self) -> None:
        await self._keys.create_index([("trust", 1), ("revoked_at", 1)])
        # An active key holds `slot` ("<trust>/<n>"); a revoked one has none (sparse).
        await self._keys.create_index("slot", unique=True, sparse=True)
        await self._give_slots()

    async def _give_slots(self) -> None:
        """Active keys stored before slots existed get one, so they count against the
        limit atomically too (a key that finds every slot taken keeps none: the count
        check still refuses a further key for its trust)."""
        async for doc in self._keys.find(
            {"revoked_at": None, "slot": {"$exists": False}}, {"trust": 1}
        ):
            for n in range(MAX_ACTIVE_KEYS):
                try:
                    await self._keys.update_one(
                        {"_id": doc["_id"], "slot": {"$exists": False}},
                        {"$set": {"slot": f"{doc['trust']}/{n}"}},
                    )
                    break
                except DuplicateKeyError:
                    continue

    async def get(self, key_id: str) -> ApiKey | None:
        doc = await self._keys.find_one({"_id": key_id})
        return _key(doc) if doc else None

    async def add(self, key: ApiKey, slot: int) -> bool:
        try:
            await self._keys.insert_one(
                {
                    "_id": key.key_id,
                    "trust": key.trust,
                    "key_hash": key.key_hash,
                    "created_at": key.created_at,
                    "revoked_at": key.revoked_at,
                    "slot": f"{key.trust}/{slot}",
                }
            )
        except DuplicateKeyError:
            return False  # the slot is held (key ids are random: never a clash of ids)
        return True

    async def active_count(self, trust: str) -> int:
        return await self._keys.count_documents({"trust": trust, "revoked_at": None})

    async def all(self) -> list[ApiKey]:
        return [_key(d) async for d in self._keys.find({}).sort([("trust", 1), ("created_at", 1)])]

    async def revoke(self, key_id: str, at: datetime) -> ApiKey | None:
        await self._keys.update_one(
            {"_id": key_id, "revoked_at": None},
            {"$set": {"revoked_at": at}, "$unset": {"slot": ""}},
        )
        return await self.get(key_id)


def _key(doc: Document) -> ApiKey:
    return ApiKey(
        doc["_id"], doc["trust"], doc["key_hash"], doc["created_at"], doc.get("revoked_at")
    )
