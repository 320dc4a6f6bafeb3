"""The course-platform part's stores, held to one contract: every assertion here runs
against the in-memory fakes (tests/fakes/courses.py) and against the MongoDB adapters on
the real database (services/gateway/courses/adapters/mongo.py), so the fake-based use-case
tests (test_application.py) prove what the import and the xAPI route do (the pattern of
tests/reporting/test_store.py): the learner mapping, the import ledger with its reports,
and the statement ledger."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from ibest.backbone.document import Document
from services.gateway.courses.adapters.mongo import (
    MongoImportLedger,
    MongoLearnerStore,
    MongoStatementLedger,
)
from services.gateway.courses.domain.learners import Clinician
from services.gateway.courses.ports import (
    ImportLedger,
    LearnerStore,
    LedgerEntry,
    StatementLedger,
    StoredStatement,
)
from shared.events import Profession
from tests.fakes.courses import FakeImportLedger, FakeLearnerStore, FakeStatementLedger

T0 = datetime(2026, 2, 2, 10, 0, tzinfo=UTC)


@dataclass
class Stores:
    learners: LearnerStore
    ledger: ImportLedger
    statements: StatementLedger


@pytest.fixture(params=["fake", "mongo"])
async def stores(request: pytest.FixtureRequest, mongodb_url: str) -> AsyncIterator[Stores]:
    if request.param == "fake":
        yield Stores(FakeLearnerStore(), FakeImportLedger(), FakeStatementLedger())
        return
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_url, tz_aware=True)
    db = client[f"t{uuid.uuid4().hex[:10]}_gateway"]
    ledger = MongoImportLedger(db)
    await ledger.create_indexes()
    try:
        yield Stores(MongoLearnerStore(db), ledger, MongoStatementLedger(db))
    finally:
        await client.drop_database(db.name)
        await client.close()


def clinician(ref: str, site: str = "RTH08", email: str | None = None) -> Clinician:
    return Clinician(ref, site[:3], site, Profession.PHYSIOTHERAPIST, True, email)


async def test_the_learner_mapping_keeps_the_latest_place_and_no_contact_email(
    stores: Stores,
) -> None:
    learners = stores.learners
    await learners.save([])
    assert await learners.get_many([]) == {}
    await learners.save([("k1", clinician("c1")), ("k2", clinician("c2", email="a@nhs.net"))])
    await learners.save([("k1", clinician("c1", site="RNU01"))])  # the mapping moved
    assert await learners.get_many(["k1", "k2", "k9"]) == {
        "k1": clinician("c1", site="RNU01"),
        "k2": clinician("c2"),  # the email is enrolment's to keep, never this store's
    }


def fact(event_id: str, version: str = "v1", learner: str = "k1") -> LedgerEntry:
    return LedgerEntry(event_id, "run-1", version, learner, "module.completed", "m1", T0, "RTH")


def report(run: str, minutes: int, events: int) -> dict[str, Any]:
    return {
        "course_run": run,
        "course_version": "v1",
        "started_at": T0,
        "finished_at": T0 + timedelta(minutes=minutes),
        "events_published": events,
        "refused_rows": 1,
        "refused": [{"file": "enrolments.csv", "line": 3, "reason": "no learner id"}],
    }


async def test_the_import_ledger_knows_every_fact_of_a_version_and_the_latest_reports(
    stores: Stores,
) -> None:
    ledger = stores.ledger
    await ledger.record([], T0)
    await ledger.record([fact("e1"), fact("e2", learner="k2"), fact("e3", version="v2")], T0)
    await ledger.record([fact("e1"), fact("e4")], T0 + timedelta(hours=1))  # a re-run
    assert await ledger.imported("v1") == {"e1", "e2", "e4"}
    assert await ledger.imported("v2") == {"e3"}
    assert await ledger.imported("v9") == set()

    assert await ledger.latest_reports() == []
    await ledger.save_report(report("run-1", 5, 10))
    await ledger.save_report(report("run-2", 9, 20))
    await ledger.save_report(report("run-1", 7, 30))
    await ledger.save_report(report("run-1", 6, 40))  # saved last, finished earlier
    latest = {r["course_run"]: r for r in await ledger.latest_reports()}
    assert sorted(latest) == ["run-1", "run-2"]
    expected = report("run-1", 7, 30)
    del expected["refused"]  # the rows themselves stay with the stored report
    assert latest["run-1"] == expected
    assert latest["run-2"]["events_published"] == 20


def statement(statement_id: str, digest: str, event_id: str | None = None) -> StoredStatement:
    return StoredStatement(statement_id, digest, "xapi", event_id, None if event_id else "why")


async def test_the_statement_ledger_keeps_each_statements_first_digest(stores: Stores) -> None:
    statements = stores.statements
    await statements.record([], T0)
    await statements.record([statement("s1", "d1", "e1"), statement("s2", "d2")], T0)
    await statements.record([statement("s1", "changed", "e9"), statement("s3", "d3")], T0)
    assert await statements.get_many(["s1", "s2", "s3", "s9"]) == {
        "s1": "d1",
        "s2": "d2",
        "s3": "d3",
    }
    assert await statements.get_many([]) == {}
