"""Stored patient references that are NHS numbers: found, and deleted, by each service.

Before the contract refused an NHS number written with any separators ('943.476.5919',
'943_476_5919', '943:476:5919'), such references were accepted and stored. The operator's
one-off `ibest purge-nhs-numbers` (ibest/purge.py) asks every service that keeps patient
references to find them, and with `--apply` to remove them; each service answers through
this use case over its own stores (`services/<name>/cli.py: purge_nhs_numbers`), so no tool
reaches into a service's collections. The rule is the contract's (`is_nhs_number`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from ibest.backbone.document import Document
from ibest.backbone.mongo import mongo_client
from ibest.backbone.settings import Settings
from shared.identifiers import is_nhs_number


class StoredRefs(Protocol):
    """Where a service keeps patient references."""

    def stored(self) -> AsyncIterator[tuple[str, Any, str]]:
        """Every stored reference as (where, key of its record, patient reference)."""
        ...


class DeletableRefs(StoredRefs, Protocol):
    async def delete(self, found: Mapping[str, list[Any]]) -> None:
        """Delete the records of `found` (keys by where)."""


async def nhs_numbers_in(refs: StoredRefs) -> dict[str, list[Any]]:
    """The keys of the records whose patient reference is an NHS number, by where."""
    found: dict[str, list[Any]] = {}
    async for where, key, ref in refs.stored():
        if is_nhs_number(ref):
            found.setdefault(where, []).append(key)
    return found


async def purge_nhs_numbers(refs: DeletableRefs, apply: bool) -> dict[str, int]:
    """Count (and with `apply`, delete) the records holding an NHS number, by where."""
    found = await nhs_numbers_in(refs)
    if apply and found:
        await refs.delete(found)
    return {where: len(keys) for where, keys in found.items()}


async def purge_in_database(
    settings: Settings,
    service: str,
    refs_of: Callable[[AsyncDatabase[Document]], DeletableRefs],
    apply: bool,
) -> dict[str, int]:
    """`purge_nhs_numbers` over the stores `refs_of` finds in `service`'s database (what
    a service's `purge_nhs_numbers` command hook runs)."""
    mongo = mongo_client(settings)
    try:
        return await purge_nhs_numbers(refs_of(mongo[settings.database_of(service)]), apply)
    finally:
        await mongo.close()


class MongoPatientRefs:
    """`DeletableRefs` over collections whose documents carry a `patient_ref` field, or
    (`keyed`: collection -> separator) whose `_id` is `<trust><separator><patient_ref>`
    (a document that no longer repeats what its key says; one of an older shape that
    still holds the field is found by either)."""

    def __init__(
        self,
        collections: Mapping[str, AsyncCollection[Document]],
        keyed: Mapping[str, str] | None = None,
    ) -> None:
        self._collections = dict(collections)
        self._keyed = dict(keyed or {})

    async def stored(self) -> AsyncIterator[tuple[str, Any, str]]:
        for where, collection in self._collections.items():
            separator = self._keyed.get(where)
            async for doc in collection.find({}, {"patient_ref": 1}):
                ref = doc.get("patient_ref")
                if separator and not isinstance(ref, str) and isinstance(doc["_id"], str):
                    ref = doc["_id"].partition(separator)[2] or None
                if isinstance(ref, str):
                    yield where, doc["_id"], ref

    async def delete(self, found: Mapping[str, list[Any]]) -> None:
        for where, keys in found.items():
            await self._collections[where].delete_many({"_id": {"$in": keys}})
