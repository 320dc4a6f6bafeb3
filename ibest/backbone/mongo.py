"""What the services' MongoDB adapters share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pymongo import AsyncMongoClient, UpdateMany, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
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


Document = dict[str, Any]


def update_of(old: Document, new: Document, always: Document | None = None) -> Document:
    """An update that turns the stored `old` into `new` by writing only what differs, plus
    `always`: `$set` of each changed path (maps compared key by key), `$push` of what a
    list gained at its end, `$unset` of what is gone. What a write costs the database is
    mostly what it carries, so a change to a large document costs what changed, not the
    document. A list that kept its length or grew, with at most half its elements changed,
    is written by index (`path.<i>`, a dict element by its changed fields). The caller makes
    the write conditional on `old` still being what is stored (a compare-and-set), so the
    update always applies to the document it was computed from.
    """
    sets: Document = dict(always or {})
    pushes: Document = {}
    unsets: dict[str, str] = {}
    _diff(old, new, "", sets, pushes, unsets)
    update: Document = {"$set": sets} if sets else {}
    if pushes:
        update["$push"] = {path: {"$each": tail} for path, tail in pushes.items()}
    if unsets:
        update["$unset"] = unsets
    return update


def _diff(
    old: Document, new: Document, prefix: str, sets: Document, pushes: Document, unsets: Document
) -> None:
    for key, value in new.items():
        path = prefix + key
        have = old.get(key, _ABSENT)
        if have is _ABSENT:
            sets[path] = value
        elif have == value:
            continue
        elif isinstance(value, dict) and isinstance(have, dict) and _plain(value, have):
            _diff(have, value, path + ".", sets, pushes, unsets)
        elif (
            isinstance(value, list)
            and isinstance(have, list)
            and have
            and len(value) > len(have)
            and value[: len(have)] == have
        ):
            pushes[path] = value[len(have) :]
        elif isinstance(value, list) and isinstance(have, list) and _few_changed(have, value):
            # a list that kept its length or grew, with few elements changed: each changed
            # element by its index (a dict element by its changed fields), each new one at
            # its index (MongoDB appends at the index just past the end)
            for i, item in enumerate(value):
                was = have[i] if i < len(have) else _ABSENT
                if was is _ABSENT or was != item:
                    if isinstance(item, dict) and isinstance(was, dict) and _plain(item, was):
                        _diff(was, item, f"{path}.{i}.", sets, pushes, unsets)
                    else:
                        sets[f"{path}.{i}"] = item
        else:
            sets[path] = value
    for key in old:
        if key not in new:
            unsets[prefix + key] = ""


def _few_changed(have: list[Any], value: list[Any]) -> bool:
    """Whether `value` is `have` with at most half its elements changed or added (no element
    removed): then writing those by index carries less than the whole list."""
    if len(value) < len(have):
        return False
    changed = sum(1 for i, item in enumerate(value) if i >= len(have) or have[i] != item)
    return 2 * changed <= len(value)


def _plain(*docs: Document) -> bool:
    """Whether every key can be a field path (no dots, no leading `$`, not empty)."""
    return all(
        isinstance(k, str) and k and "." not in k and not k.startswith("$") for d in docs for k in d
    )


_ABSENT = object()


@dataclass(frozen=True)
class Write:
    """One write of an ordered bulk write, and what to write instead if it fails with a
    duplicate key: an upsert whose filter holds a condition (`{_id, <newer than stored>}`)
    inserts when no document has the `_id`, updates when the stored one is older, and fails
    with a duplicate key when the document exists but the condition is false (or another
    writer inserted it first). One document written where an unconditional upsert followed
    by a conditional update wrote two; the fallback is that pair, which is right whichever
    of the two made it fail."""

    op: UpdateOne | UpdateMany
    fallback: tuple[UpdateOne | UpdateMany, ...] | None = None


async def write_in_order(collection: AsyncCollection[Any], writes: Sequence[Write]) -> None:
    """An ordered bulk write of `writes`; when one with a fallback fails with a duplicate
    key, its fallback and the writes after it are written (the ordered write stopped there).
    The usual case costs one round trip; each such failure one more."""
    pending = list(writes)
    while pending:
        try:
            await collection.bulk_write([w.op for w in pending], ordered=True)
            return
        except BulkWriteError as exc:
            failed = exc.details.get("writeErrors", [])
            if len(failed) != 1 or not only_duplicate_keys(exc):
                raise
            at = failed[0]["index"]
            fallback = pending[at].fallback
            if fallback is None:
                raise
            pending = [*(Write(op) for op in fallback), *pending[at + 1 :]]
