"""`ibest purge-nhs-numbers`: find, then delete, patient references that are NHS numbers.

Before the contract refused an NHS number written with any separators ('943.476.5919',
'943_476_5919', '943:476:5919'), such references were accepted and stored. This one-off
command finds them in every database that keeps patient references (outcomes, notifications,
reporting) and, with `--apply`, deletes them. A dry run (the default) only counts.

Reporting keeps references inside its aggregates (entity ids in each site's record), so it is
mended by a rebuild: the stored stream is replayed through the contract, which now refuses
those events, into a fresh generation that replaces the old ones.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from ibest.backbone.connect import connect_nats
from ibest.backbone.document import Document
from ibest.backbone.mongo import mongo_client
from ibest.backbone.settings import Settings
from shared.identifiers import is_nhs_number

PATIENT_COLLECTIONS = {
    "outcomes": ("assessments", "patients"),
    "notifications": ("patients", "follow_up_items"),
}
"""Collections whose documents carry a `patient_ref` field, by service."""
REPORTING_PATIENTS = "_patients"
"""Suffix of reporting's patient entities per generation (`g<n>_patients`, `_id` trust:ref)."""


@dataclass
class Found:
    """Documents holding an NHS number as patient reference, per `service.collection`."""

    documents: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.documents.values())


def reporting_ref(entity_id: str) -> str:
    """The patient reference of a reporting patient entity id (`<trustcode>:<ref>`)."""
    return entity_id.split(":", 1)[1] if ":" in entity_id else entity_id


async def find_in(db: AsyncDatabase[Document], collection: str) -> list[Any]:
    """`_id`s of the documents of `collection` whose `patient_ref` is an NHS number."""
    return [
        doc["_id"]
        async for doc in db[collection].find({}, {"patient_ref": 1})
        if isinstance(doc.get("patient_ref"), str) and is_nhs_number(doc["patient_ref"])
    ]


async def find_in_reporting(db: AsyncDatabase[Document]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for name in await db.list_collection_names():
        if name.startswith("g") and name.endswith(REPORTING_PATIENTS):
            ids = [
                doc["_id"]
                async for doc in db[name].find({}, {"_id": 1})
                if isinstance(doc["_id"], str) and is_nhs_number(reporting_ref(doc["_id"]))
            ]
            if ids:
                out[name] = ids
    return out


async def purge(settings: Settings, apply: bool) -> Found:
    """Count (and with `apply`, delete) every stored reference that is an NHS number."""
    found = Found()
    mongo = mongo_client(settings)
    try:
        for service, collections in PATIENT_COLLECTIONS.items():
            db = mongo[settings.database_of(service)]
            for collection in collections:
                ids = await find_in(db, collection)
                found.documents[f"{service}.{collection}"] = len(ids)
                if apply and ids:
                    await db[collection].delete_many({"_id": {"$in": ids}})
        reporting = mongo[settings.database_of("reporting")]
        in_reporting = await find_in_reporting(reporting)
        for name, ids in in_reporting.items():
            found.documents[f"reporting.{name}"] = len(ids)
        if apply and in_reporting:
            await rebuild_reporting(settings, mongo)
    finally:
        await mongo.close()
    return found


async def rebuild_reporting(settings: Settings, mongo: AsyncMongoClient[Document]) -> None:
    """Replace reporting's aggregates by a rebuild through today's contract."""
    from services.reporting import bootstrap

    nc = await connect_nats(settings, "purge-nhs-numbers")
    try:
        parts = bootstrap.for_commands(mongo[settings.database_of(bootstrap.NAME)])
        await parts.service.rebuild(bootstrap.stream_history(nc.jetstream()))
    finally:
        await nc.drain()


async def purge_command(args: argparse.Namespace, settings: Settings) -> int:
    found = await purge(settings, args.apply)
    for where, n in found.documents.items():
        if n:
            print(f"{where}: {n} document(s) with an NHS number as patient reference")
    if not found.total:
        print("no stored patient reference is an NHS number")
    elif args.apply:
        print(
            f"purged {found.total} document(s); reporting rebuilt from the stream "
            "(the contract refuses those events now)"
        )
    else:
        print(f"dry run: {found.total} document(s) would be purged; run again with --apply")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "purge-nhs-numbers",
        help="find stored patient references that are NHS numbers (any separators) in "
        "outcomes, notifications and reporting; --apply deletes them (one-off)",
    )
    p.add_argument(
        "--apply", action="store_true", help="delete them (default: a dry run that only counts)"
    )
    p.set_defaults(func=purge_command)
