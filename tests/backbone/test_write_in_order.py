"""`write_in_order` on the real database: a conditional upsert writes one document, and
when the stored document makes it fail with a duplicate key, its fallback and every later
write are written, in order."""

from __future__ import annotations

import pytest
from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

from ibest.backbone.mongo import Write, write_in_order
from tests.harness import scratch_database


def latest(key: str, at: int, site: str) -> Write:
    """Keep the site of the latest time: one upsert, else the pair it stands for."""
    later = {"_id": key, "$or": [{"at": {"$lte": at}}, {"at": None}]}
    plain = UpdateOne({"_id": key}, {"$addToSet": {"seen": at}}, upsert=True)
    return Write(
        UpdateOne(later, {"$set": {"at": at, "site": site}, "$addToSet": {"seen": at}}, True),
        (plain, UpdateOne(later, {"$set": {"at": at, "site": site}})),
    )


async def test_a_conditional_upsert_falls_back_and_the_writes_after_it_follow(
    mongodb_url: str,
) -> None:
    async with scratch_database(mongodb_url, "writes") as db:
        patients = db["patients"]
        await write_in_order(patients, [latest("a", 5, "A05"), latest("b", 1, "B01")])
        assert await patients.count_documents({}) == 2
        # "a" is older here (its fallback), then later; "b" later; "c" new
        await write_in_order(
            patients,
            [
                latest("a", 3, "A03"),
                latest("b", 2, "B02"),
                latest("a", 7, "A07"),
                latest("c", 1, "C"),
            ],
        )
        docs = {d["_id"]: d async for d in patients.find()}
        assert {k: (d["at"], d["site"], sorted(d["seen"])) for k, d in docs.items()} == {
            "a": (7, "A07", [3, 5, 7]),
            "b": (2, "B02", [1, 2]),
            "c": (1, "C", [1]),
        }


async def test_a_write_without_a_fallback_still_raises(mongodb_url: str) -> None:
    async with scratch_database(mongodb_url, "writes") as db:
        await db["patients"].insert_one({"_id": "a", "at": 9})
        with pytest.raises(BulkWriteError):
            await write_in_order(
                db["patients"], [Write(UpdateOne({"_id": "a", "at": 1}, {"$set": {"x": 1}}, True))]
            )
