"""`update_of` writes only what changed, and the stored document becomes exactly the new
one: checked against the real database for random pairs of documents."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import bson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from ibest.backbone.mongo import update_of
from ibest.backbone.settings import Settings

KEYS = st.sampled_from(["a", "b", "c", "d.e", "$f", "g"])
LEAVES = st.one_of(st.integers(-5, 5), st.text(max_size=3), st.none(), st.booleans())
VALUES = st.recursive(
    LEAVES,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=12,
)
DOCS = st.dictionaries(KEYS.filter(lambda k: "." not in k and not k.startswith("$")), VALUES)


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_url)
    database = client[settings.database_of("update_of")]
    try:
        yield database
    finally:
        await client.drop_database(database)
        await client.close()


def grown(doc: dict[str, Any], tail: list[Any]) -> dict[str, Any]:
    """`doc` with a list that gained `tail` at its end (what `$push` is for)."""
    return {**doc, "list": [*doc.get("list", [1]), *tail]}


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(old=DOCS, new=DOCS, tail=st.lists(LEAVES, max_size=3))
async def test_the_update_turns_the_old_document_into_the_new(
    db: AsyncDatabase[dict[str, Any]], old: dict[str, Any], new: dict[str, Any], tail: list[Any]
) -> None:
    old, new = grown(old, []), grown(new, tail) if tail else new
    coll = db["docs"]
    await coll.delete_many({})
    await coll.insert_one({"_id": 1, **old})
    update = update_of({"_id": 1, **old}, {"_id": 1, **new}, {"rev": 2})
    await coll.update_one({"_id": 1}, update)
    assert await coll.find_one({"_id": 1}) == {"_id": 1, **new, "rev": 2}


def test_a_small_change_to_a_large_document_writes_only_the_change() -> None:
    old = {"facts": [{"id": i, "text": "x" * 100} for i in range(100)], "state": {"n": 1}}
    new = {"facts": [*old["facts"], {"id": 100, "text": "y"}], "state": {"n": 2}}
    update = update_of(old, new)
    assert update == {
        "$set": {"state.n": 2},
        "$push": {"facts": {"$each": [{"id": 100, "text": "y"}]}},
    }
    assert len(bson.encode(update)) < len(bson.encode(new)) / 50


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    items=st.lists(st.dictionaries(KEYS, LEAVES, max_size=3), min_size=1, max_size=6),
    changes=st.lists(
        st.tuples(st.integers(0, 7), st.dictionaries(KEYS, VALUES, max_size=2)), max_size=4
    ),
)
async def test_a_list_with_a_few_elements_changed_is_written_by_index(
    db: AsyncDatabase[dict[str, Any]],
    items: list[dict[str, Any]],
    changes: list[tuple[int, dict[str, Any]]],
) -> None:
    new = [dict(item) for item in items]
    for at, fields in changes:
        if at < len(new):
            new[at] = {**new[at], **fields}
        else:
            new.append(fields)
    old_doc, new_doc = {"_id": 1, "list": items}, {"_id": 1, "list": new}
    coll = db["docs"]
    await coll.delete_many({})
    await coll.insert_one(old_doc)
    await coll.update_one({"_id": 1}, update_of(old_doc, new_doc, {"rev": 2}))
    assert await coll.find_one({"_id": 1}) == {**new_doc, "rev": 2}


def test_one_changed_element_of_a_long_list_is_written_alone() -> None:
    modules = [{"id": i, "started": "2024-01-01", "completed": None} for i in range(8)]
    changed = [*modules[:3], {**modules[3], "completed": "2024-02-01"}, *modules[4:]]
    assert update_of({"modules": modules}, {"modules": changed}) == {
        "$set": {"modules.3.completed": "2024-02-01"}
    }
    grown = [*changed, {"id": 8, "started": "2024-03-01", "completed": None}]
    assert update_of({"modules": modules}, {"modules": grown}) == {
        "$set": {"modules.3.completed": "2024-02-01", "modules.8": grown[8]}
    }
