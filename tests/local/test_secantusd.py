"""The local stand-in keeps index catalogues in memory (`ibest.local.secantusd`): an index
created, dropped or marked multikey must count from the next write and query on, as in
MongoDB. Run on the suite's SecantusDB, which that launcher starts."""

from __future__ import annotations

import pytest
from pymongo.errors import DuplicateKeyError

from tests.harness import scratch_database


async def test_a_unique_index_counts_from_its_creation_to_its_drop(mongodb_url: str) -> None:
    async with scratch_database(mongodb_url, "catalogue") as db:
        clinicians = db["clinicians"]
        await clinicians.insert_one({"_id": 1, "ref": "a"})
        await clinicians.insert_one({"_id": 2, "ref": "b"})  # the catalogue is read here
        await clinicians.create_index("ref", unique=True, name="by_ref")
        with pytest.raises(DuplicateKeyError):
            await clinicians.insert_one({"_id": 3, "ref": "a"})
        with pytest.raises(DuplicateKeyError):
            await clinicians.update_one({"_id": 2}, {"$set": {"ref": "a"}})
        await clinicians.drop_index("by_ref")
        await clinicians.insert_one({"_id": 3, "ref": "a"})
        assert await clinicians.count_documents({"ref": "a"}) == 2


async def test_an_index_turned_multikey_by_a_write_still_finds_every_element(
    mongodb_url: str,
) -> None:
    async with scratch_database(mongodb_url, "multikey") as db:
        sites = db["sites"]
        await sites.create_index("trusts", name="by_trust")
        await sites.insert_one({"_id": "s1", "trusts": "RRK"})  # read while single-key
        await sites.insert_one({"_id": "s2", "trusts": ["RRK", "RTH"]})  # marks it multikey
        await sites.insert_one({"_id": "s3", "trusts": ["RTH"]})
        found = [doc["_id"] async for doc in sites.find({"trusts": "RTH"}).sort("_id")]
        assert found == ["s2", "s3"]
        assert await sites.count_documents({"trusts": {"$all": ["RRK", "RTH"]}}) == 1


async def test_in_finds_what_mongodb_finds_whatever_the_values(mongodb_url: str) -> None:
    """The launcher matches `$in` of strings by a set lookup; the answers must stay
    MongoDB's: strings equal only strings, arrays match by element, `null` matches missing."""
    async with scratch_database(mongodb_url, "in") as db:
        things = db["things"]
        await things.insert_many(
            [
                {"_id": "a", "v": "x"},
                {"_id": "b", "v": 1},
                {"_id": "c", "v": ["x", "y"]},
                {"_id": "d"},
                {"_id": "e", "v": "1"},
            ]
        )

        async def ids(query: dict[str, object]) -> list[str]:
            return [doc["_id"] async for doc in things.find(query).sort("_id")]

        assert await ids({"_id": {"$in": ["a", "e", "zz"]}}) == ["a", "e"]
        assert await ids({"v": {"$in": ["x"]}}) == ["a", "c"]
        assert await ids({"v": {"$in": ["1"]}}) == ["e"]
        assert await ids({"v": {"$in": [1, "y"]}}) == ["b", "c"]
        assert await ids({"v": {"$in": [None]}}) == ["d"]
