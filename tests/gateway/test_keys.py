"""Key limits on the real database: two operators creating keys for one trust at once
cannot give it more than two active keys, keys from before slots existed count too, and a
revoked key frees its slot."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from pymongo import AsyncMongoClient

from ibest.backbone.settings import Settings
from services.gateway.bootstrap import NAME, key_admin
from services.gateway.domain.keys import MAX_ACTIVE_KEYS, KeyRuleError, mint_key


async def test_concurrent_creates_never_exceed_the_active_key_limit(settings: Settings) -> None:
    async with key_admin(settings) as admin:
        made = await asyncio.gather(
            *(admin.create("RTH") for _ in range(6)), return_exceptions=True
        )
        created = [m for m in made if not isinstance(m, BaseException)]
        refused = [m for m in made if isinstance(m, BaseException)]
        assert len(created) == MAX_ACTIVE_KEYS
        assert all(isinstance(r, KeyRuleError) for r in refused), refused
        assert sum(k.trust == "RTH" and k.active for k in await admin.list()) == MAX_ACTIVE_KEYS
        await admin.revoke(created[0][0].key_id)
        again = await asyncio.gather(
            *(admin.create("RTH") for _ in range(3)), return_exceptions=True
        )
        assert sum(not isinstance(m, BaseException) for m in again) == 1
        # another trust has slots of its own
        await admin.create("RXF")


async def test_a_key_stored_before_slots_counts_against_the_limit(settings: Settings) -> None:
    old, _ = mint_key("RNU", datetime.now(UTC))
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(settings.mongodb_url)
    try:
        await client[settings.database_of(NAME)]["api_keys"].insert_one(
            {
                "_id": old.key_id,
                "trust": old.trust,
                "key_hash": old.key_hash,
                "created_at": old.created_at,
                "revoked_at": None,
            }
        )
    finally:
        await client.close()
    async with key_admin(settings) as admin:  # its start-up gives the old key a slot
        made = await asyncio.gather(
            *(admin.create("RNU") for _ in range(4)), return_exceptions=True
        )
        assert sum(not isinstance(m, BaseException) for m in made) == MAX_ACTIVE_KEYS - 1
        with pytest.raises(KeyRuleError):
            await admin.create("RNU")
