"""The course-platform part's MongoDB collections (database `<prefix>_gateway`):
`course_learners` (the learner mapping, by learner key), `course_import_ledger` (every fact
imported, by event id), `course_imports` (each import's report) and `xapi_statements`
(each statement's id and content digest)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import DESCENDING, InsertOne, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from services.gateway.courses.domain.learners import Clinician
from services.gateway.courses.ports import LedgerEntry, StoredStatement
from shared.events import Profession

Document = dict[str, Any]
_DUPLICATE_KEY = 11000


async def _insert_new(collection: Any, docs: list[Document]) -> None:
    """Insert, ignoring documents already there (a re-run recording the same fact)."""
    if not docs:
        return
    try:
        await collection.bulk_write([InsertOne(d) for d in docs], ordered=False)
    except BulkWriteError as exc:
        if any(e.get("code") != _DUPLICATE_KEY for e in exc.details.get("writeErrors", [])):
            raise


class MongoLearnerStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._learners = db["course_learners"]

    async def save(self, learners: Sequence[tuple[str, Clinician]]) -> None:
        if not learners:
            return
        await self._learners.bulk_write(
            [
                UpdateOne(
                    {"_id": key},
                    {
                        "$set": {
                            "clinician_ref": c.clinician_ref,
                            "trustcode": c.trustcode,
                            "sitecode": c.sitecode,
                            "profession": c.profession.value,
                            "linkable": c.linkable,
                        }
                    },
                    upsert=True,
                )
                for key, c in learners
            ],
            ordered=False,
        )

    async def get_many(self, learner_keys: Sequence[str]) -> dict[str, Clinician]:
        if not learner_keys:
            return {}
        return {
            d["_id"]: Clinician(
                d["clinician_ref"],
                d["trustcode"],
                d["sitecode"],
                Profession(d["profession"]),
                d["linkable"],
            )
            async for d in self._learners.find({"_id": {"$in": list(learner_keys)}})
        }


class MongoImportLedger:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._ledger = db["course_import_ledger"]
        self._reports = db["course_imports"]

    async def create_indexes(self) -> None:
        await self._ledger.create_index("course_version")
        await self._reports.create_index([("course_run", 1), ("finished_at", DESCENDING)])

    async def imported(self, course_version: str) -> set[str]:
        cursor = self._ledger.find({"course_version": course_version}, {"facts": 1})
        found: set[str] = set()
        async for doc in cursor.batch_size(5_000):
            found.update(doc.get("facts", {}))
        return found

    async def record(self, entries: Sequence[LedgerEntry], at: datetime) -> None:
        """One document per learner and course version, each fact a field of `facts` keyed
        by its event id: a course of 200,000 facts is 12,000 documents to write and read."""
        by_learner: dict[tuple[str, str], list[LedgerEntry]] = {}
        for e in entries:
            by_learner.setdefault((e.course_version, e.learner), []).append(e)
        if not by_learner:
            return
        await self._ledger.bulk_write(
            [
                UpdateOne(
                    {"_id": f"{version}:{learner}"},
                    {
                        "$setOnInsert": {"course_version": version, "learner": learner},
                        "$set": {
                            f"facts.{e.event_id}": {
                                "course_run": e.course_run,
                                "kind": e.kind,
                                "module_id": e.module_id,
                                "time": e.time,
                                "trustcode": e.trustcode,
                                "imported_at": at,
                            }
                            for e in facts
                        },
                    },
                    upsert=True,
                )
                for (version, learner), facts in by_learner.items()
            ],
            ordered=False,
        )

    async def save_report(self, report: dict[str, Any]) -> None:
        await self._reports.insert_one(dict(report))

    async def latest_reports(self) -> list[dict[str, Any]]:
        latest: dict[str, dict[str, Any]] = {}
        async for doc in self._reports.find({}, {"_id": 0, "refused": 0}).sort(
            "finished_at", DESCENDING
        ):
            latest.setdefault(doc["course_run"], doc)
        return list(latest.values())


class MongoStatementLedger:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._statements = db["xapi_statements"]

    async def get_many(self, statement_ids: Sequence[str]) -> dict[str, str]:
        return {
            d["_id"]: d["digest"]
            async for d in self._statements.find(
                {"_id": {"$in": list(statement_ids)}}, {"digest": 1}
            )
        }

    async def record(self, statements: Sequence[StoredStatement], at: datetime) -> None:
        await _insert_new(
            self._statements,
            [
                {
                    "_id": s.statement_id,
                    "digest": s.digest,
                    "platform": s.platform,
                    "event_id": s.event_id,
                    "ignored": s.ignored,
                    "stored_at": at,
                }
                for s in statements
            ],
        )
