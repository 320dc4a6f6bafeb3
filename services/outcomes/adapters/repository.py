"""MongoDB storage: every assessment (for audit), one document per patient, classes.

Collections (database `<prefix>_outcomes`):
- `assessments`: every patient.assessed received, `_id` = event id (the audit history).
- `patients`: per (trustcode, patient_ref) the winners, revisions, outcomes and the outbox
  of outcome.recorded events not yet confirmed published; `version` guards every write
  (compare-and-set), so concurrent handlers never lose a correction or a revision.
- `classes`: per (trustcode, class_id) the latest class.started.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.outcomes.domain.assessments import Assessment
from services.outcomes.domain.outcomes import PatientState

Document = dict[str, Any]


def patient_key(trustcode: str, patient_ref: str) -> str:
    """`_id` of a patient: references never contain '/', so this is unambiguous."""
    return f"{trustcode}/{patient_ref}"


class OutcomesRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._assessments = db["assessments"]
        self._patients = db["patients"]
        self._classes = db["classes"]

    async def create_indexes(self) -> None:
        await self._assessments.create_indexes([
            IndexModel([("trustcode", ASCENDING), ("patient_ref", ASCENDING),
                        ("timepoint", ASCENDING), ("time", ASCENDING)], name="by_patient"),
            IndexModel([("trustcode", ASCENDING), ("class_id", ASCENDING)], name="by_class"),
        ])
        await self._patients.create_indexes([
            IndexModel([("outbox.id", ASCENDING)], name="outbox_pending", sparse=True),
        ])
        await self._classes.create_indexes([
            IndexModel([("trustcode", ASCENDING), ("sitecode", ASCENDING)], name="by_site"),
        ])

    # Assessments (audit history)

    async def record_assessment(self, assessment: Assessment, received: datetime) -> None:
        """Keep the assessment; a redelivery finds it already there and changes nothing."""
        await self._assessments.update_one(
            {"_id": assessment.event_id},
            {"$setOnInsert": {**assessment.to_doc(), "received_at": received}},
            upsert=True,
        )

    async def history(self, trustcode: str, patient_ref: str) -> list[Assessment]:
        cursor = self._assessments.find({"trustcode": trustcode, "patient_ref": patient_ref})
        found = [Assessment.from_doc(doc) async for doc in cursor]
        return sorted(found, key=lambda a: (a.timepoint.value, a.rank))

    # Patients

    async def load(self, trustcode: str, patient_ref: str) -> tuple[PatientState, int | None]:
        """The patient's state and its version (None when the patient is new)."""
        doc = await self._patients.find_one({"_id": patient_key(trustcode, patient_ref)})
        if doc is None:
            return PatientState(), None
        return PatientState.from_doc(doc), int(doc["version"])

    async def commit(
        self, trustcode: str, patient_ref: str, version: int | None, state: PatientState,
        outbox: list[Document], now: datetime,
    ) -> bool:
        """Store `state` and queue `outbox` if the patient is still at `version`."""
        key = patient_key(trustcode, patient_ref)
        fields = {**state.to_doc(), "updated_at": now}
        if version is None:
            try:
                await self._patients.insert_one({
                    "_id": key, "trustcode": trustcode, "patient_ref": patient_ref,
                    "version": 1, "outbox": outbox, **fields,
                })
            except DuplicateKeyError:
                return False
            return True
        result = await self._patients.update_one(
            {"_id": key, "version": version},
            {"$set": {**fields, "version": version + 1},
             "$push": {"outbox": {"$each": outbox}}},
        )
        return result.matched_count == 1

    async def outbox(self, trustcode: str, patient_ref: str) -> list[Document]:
        doc = await self._patients.find_one(
            {"_id": patient_key(trustcode, patient_ref)}, {"outbox": 1})
        return list(doc.get("outbox", [])) if doc else []

    async def clear(self, trustcode: str, patient_ref: str, event_id: str) -> None:
        await self._patients.update_one(
            {"_id": patient_key(trustcode, patient_ref)},
            {"$pull": {"outbox": {"id": event_id}}},
        )

    async def patients_with_outbox(self, limit: int) -> list[tuple[str, str]]:
        cursor = self._patients.find({"outbox.id": {"$exists": True}},
                                     {"trustcode": 1, "patient_ref": 1}).limit(limit)
        return [(doc["trustcode"], doc["patient_ref"]) async for doc in cursor]

    # Classes

    async def record_class(self, doc: Document) -> None:
        """Keep the latest class.started of a class (by time, then event id)."""
        key = f"{doc['trustcode']}/{doc['class_id']}"
        newer = {"$or": [{"time": {"$lt": doc["time"]}},
                         {"time": doc["time"], "event_id": {"$lt": doc["event_id"]}}]}
        with contextlib.suppress(DuplicateKeyError):  # a newer (or the same) start is stored
            await self._classes.update_one({"_id": key, **newer}, {"$set": doc}, upsert=True)

    async def classes(self, trustcode: str, class_ids: set[str]) -> dict[str, Document]:
        query = {"trustcode": trustcode, "class_id": {"$in": sorted(class_ids)}}
        cursor = self._classes.find(query, {"_id": 0})
        return {doc["class_id"]: doc async for doc in cursor}

