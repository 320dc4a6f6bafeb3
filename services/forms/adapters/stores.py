"""The forms' MongoDB stores (database `<prefix>_forms`). No patient name, NHS number or
contact detail is ever stored: patients appear only under their pseudonymous reference."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from ibest.backbone.audit import Action, Actor, AuditLog
from ibest.backbone.mongo import Write, write_in_order
from ibest.backbone.outbox import OutboxEntry
from services.forms.domain.access import MAX_ACTIVE_KEYS, SiteKey
from services.forms.ports import (
    AssessmentTime,
    ClinicianFacts,
    Completion,
    Patient,
    PatientLink,
    Session,
)

Document = dict[str, Any]


class MongoClinicians:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.c = db["clinicians"]

    async def completed_many(self, completions: Sequence[Completion]) -> None:
        # The earliest completion opens the forms; the place is that of the latest event.
        # One ordered bulk write (`write_in_order`), one document per completion: a
        # conditional upsert (a new clinician, or a place at least as late as the stored
        # one); if the stored place is later, the pair it stands for (the completion time,
        # then the place update, which then changes nothing).
        writes: list[Write] = []
        for c in completions:
            first = {"$min": {"completed_at": c.completed_at}}
            later = {"_id": c.ref, "place_at": {"$not": {"$gt": c.at}}}
            place = {"$set": {"trust": c.trust, "site": c.site, "place_at": c.at}}
            writes.append(
                Write(
                    UpdateOne(later, {**first, **place}, upsert=True),
                    (UpdateOne({"_id": c.ref}, first, upsert=True), UpdateOne(later, place)),
                )
            )
        if writes:
            await write_in_order(self.c, writes)

    async def get(self, ref: str) -> ClinicianFacts | None:
        doc = await self.c.find_one({"_id": ref})
        if not doc or "completed_at" not in doc or "trust" not in doc:
            return None
        return ClinicianFacts(
            ref, doc["completed_at"], doc["trust"], doc["site"], doc.get("revoked_before", {})
        )

    async def some(self, limit: int) -> list[ClinicianFacts]:
        cursor = self.c.find({"completed_at": {"$ne": None}, "trust": {"$ne": None}})
        return [
            ClinicianFacts(
                d["_id"], d["completed_at"], d["trust"], d["site"], d.get("revoked_before", {})
            )
            async for d in cursor.limit(limit)
        ]

    async def revoke_links(self, ref: str, form: str, before: datetime) -> None:
        await self.c.update_one(
            {"_id": ref}, {"$set": {f"revoked_before.{form}": before}}, upsert=True
        )


class MongoSubmissions:
    """One document per submitted event (`_id` its keyed id), its event in `outbox` until
    published; kept `retention_days` so a late retry of the same page is still one event."""

    def __init__(self, db: AsyncDatabase[Document], retention_days: float) -> None:
        self.c = db["submissions"]
        self.retention = timedelta(days=retention_days)

    async def create_indexes(self) -> None:
        await self.c.create_index("at", expireAfterSeconds=int(self.retention.total_seconds()))

    async def add(self, event_id: str, kind: str, at: datetime, entry: OutboxEntry) -> bool:
        try:
            await self.c.insert_one(
                {"_id": event_id, "kind": kind, "at": at, "outbox": [entry.model_dump()]}
            )
        except DuplicateKeyError:
            return False
        return True


class MongoSiteKeys:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.c = db["site_keys"]

    async def create_indexes(self) -> None:
        await self.c.create_index([("site", 1), ("revoked_at", 1)])
        await self.c.create_index("slot", unique=True, sparse=True)

    async def get(self, key_id: str) -> SiteKey | None:
        doc = await self.c.find_one({"_id": key_id})
        return _key(doc) if doc else None

    async def add(self, key: SiteKey, slot: int) -> bool:
        if slot >= MAX_ACTIVE_KEYS:
            return False
        try:
            await self.c.insert_one(
                {
                    "_id": key.key_id,
                    "site": key.site,
                    "key_hash": key.key_hash,
                    "created_at": key.created_at,
                    "revoked_at": None,
                    "slot": f"{key.site}/{slot}",
                }
            )
        except DuplicateKeyError:
            return False
        return True

    async def active_count(self, site: str) -> int:
        return await self.c.count_documents({"site": site, "revoked_at": None})

    async def all(self) -> list[SiteKey]:
        return [_key(d) async for d in self.c.find({}).sort([("site", 1), ("created_at", 1)])]

    async def revoke(self, key_id: str, at: datetime) -> SiteKey | None:
        await self.c.update_one(
            {"_id": key_id, "revoked_at": None},
            {"$set": {"revoked_at": at}, "$unset": {"slot": ""}},
        )
        return await self.get(key_id)


def _key(doc: Document) -> SiteKey:
    return SiteKey(doc["_id"], doc["site"], doc["key_hash"], doc["created_at"], doc["revoked_at"])


class MongoSessions:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.c = db["sessions"]

    async def create_indexes(self) -> None:
        await self.c.create_index("expires_at", expireAfterSeconds=0)

    async def add(self, token_hash: str, session: Session) -> None:
        await self.c.insert_one(
            {
                "_id": token_hash,
                "site": session.site,
                "key_id": session.key_id,
                "expires_at": session.expires_at,
            }
        )

    async def get(self, token_hash: str) -> Session | None:
        doc = await self.c.find_one({"_id": token_hash})
        return Session(doc["site"], doc["key_id"], doc["expires_at"]) if doc else None

    async def remove(self, token_hash: str) -> None:
        await self.c.delete_one({"_id": token_hash})


class MongoPatients:
    """`_id` `<trust>:<patient_ref>` (which says both: no field repeats them since issue 26;
    older documents keep their `trust` and `patient_ref`, read alike): the site of the
    baseline, the latest baseline time (`baseline_at`, which is also the baseline's
    recorded time: not written twice), each other timepoint's latest time
    (`recorded.<timepoint>`), and PSFS activity names (for re-rating only)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.c = db["patients"]

    async def create_indexes(self) -> None:
        await self.c.create_index("site")

    async def get(self, trust: str, ref: str) -> Patient | None:
        doc = await self.c.find_one({"_id": f"{trust}:{ref}"})
        return _patient(doc) if doc else None

    async def create(self, patient: Patient) -> bool:
        try:
            await self.c.insert_one(
                {
                    "_id": f"{patient.trust}:{patient.patient_ref}",
                    "site": patient.site,
                    "recorded": {},
                }
            )
        except DuplicateKeyError:
            return False
        return True

    async def assessed_many(self, assessments: Sequence[AssessmentTime]) -> None:
        # One ordered bulk write (`write_in_order`), one document per assessment: a baseline
        # with a site is one conditional upsert (a new patient, or a baseline at least as
        # late as the stored one) of its time and site; if the stored one is later, it
        # already says a later baseline was recorded, so only a concurrent insert needs the
        # update again.
        writes: list[Write] = []
        for a in assessments:
            key = f"{a.trust}:{a.ref}"
            if a.timepoint != "baseline" or not a.site:
                update: Document = {"$max": {f"recorded.{a.timepoint}": a.at}}
                if a.site:
                    update["$setOnInsert"] = {"site": a.site}
                writes.append(Write(UpdateOne({"_id": key}, update, upsert=True)))
                continue
            later = {"_id": key, "baseline_at": {"$not": {"$gt": a.at}}}
            site = {"$set": {"baseline_at": a.at, "site": a.site}}
            writes.append(Write(UpdateOne(later, site, upsert=True), (UpdateOne(later, site),)))
        if writes:
            await write_in_order(self.c, writes)

    async def set_activities(self, trust: str, ref: str, names: list[str]) -> None:
        await self.c.update_one({"_id": f"{trust}:{ref}"}, {"$set": {"psfs_activities": names}})

    async def of_site(self, site: str) -> list[Patient]:
        return [_patient(d) async for d in self.c.find({"site": site})]

    async def erase(self, trust: str, ref: str) -> int:
        return (await self.c.delete_one({"_id": f"{trust}:{ref}"})).deleted_count


def _patient(doc: Document) -> Patient:
    """A stored patient in either shape: trust and reference from the `_id`, the baseline's
    recorded time the later of `recorded.baseline` (a baseline without a site; every
    baseline before issue 26) and `baseline_at`."""
    trust, _, ref = doc["_id"].partition(":")
    recorded = dict(doc.get("recorded") or {})
    baseline_at = doc.get("baseline_at")
    if baseline_at is not None:
        recorded["baseline"] = max(recorded.get("baseline", baseline_at), baseline_at)
    return Patient(
        trust,
        doc.get("site") or "",
        ref,
        baseline_at,
        recorded,
        tuple(doc.get("psfs_activities") or ()),
    )


class MongoPatientLinks:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.c = db["patient_links"]

    async def add(self, link: PatientLink) -> None:
        await self.c.insert_one(
            {
                "_id": link.link_hash,
                "trust": link.trust,
                "site": link.site,
                "patient_ref": link.patient_ref,
                "timepoint": link.timepoint,
                "opens": link.opens,
                "closes": link.closes,
                "created_at": link.created_at,
                "revoked_at": None,
                "draft": link.draft,
            }
        )

    async def get(self, link_hash: str) -> PatientLink | None:
        d = await self.c.find_one({"_id": link_hash})
        if not d:
            return None
        return PatientLink(
            d["_id"],
            d["trust"],
            d["site"],
            d["patient_ref"],
            d["timepoint"],
            d["opens"],
            d["closes"],
            d["created_at"],
            d.get("revoked_at"),
            dict(d.get("draft") or {}),
        )

    async def save_draft(self, link_hash: str, draft: dict[str, Any]) -> None:
        await self.c.update_one({"_id": link_hash}, {"$set": {"draft": draft}})

    async def erase_patient(self, trust: str, ref: str) -> int:
        return (await self.c.delete_many({"trust": trust, "patient_ref": ref})).deleted_count

    async def finish(self, link_hash: str, at: datetime) -> None:
        await self.c.update_one(
            {"_id": link_hash}, {"$set": {"draft": {"finished": True}, "finished_at": at}}
        )


class AuditAdapter:
    """Site-team actions in the one audit log (ibest/backbone/audit.py), by site key id."""

    def __init__(self, log: AuditLog) -> None:
        self.log = log

    async def record(self, action: str, key_id: str, **what: Any) -> None:
        await self.log.record(cast(Action, action), Actor("http", key_id), **what)
