"""The gateway's key and rejection stores and its id ledger, held to one contract: every
assertion here runs against the in-memory fakes (tests/fakes/gateway.py) and against the
MongoDB adapters on the real database, so the fake-based use-case tests
(test_application.py) prove what the service does (the pattern of
tests/reporting/test_store.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from ibest.backbone.document import Document
from services.gateway.adapters.keys import MongoKeyStore
from services.gateway.adapters.ledger import MongoIdLedger
from services.gateway.adapters.rejections import MongoRejectionStore
from services.gateway.domain.keys import ApiKey
from services.gateway.domain.rejections import Reason, Rejection
from services.gateway.ports import IdLedger, KeyStore, RejectionStore
from tests.fakes.gateway import FakeIdLedger, FakeKeyStore, FakeRejectionStore
from tests.harness import scratch_database

T0 = datetime(2026, 2, 2, 10, 0, tzinfo=UTC)


@pytest.fixture(params=["fake", "mongo"])
async def stores(
    request: pytest.FixtureRequest, mongodb_url: str
) -> AsyncIterator[tuple[Any, Any]]:
    if request.param == "fake":
        yield FakeKeyStore(), FakeRejectionStore()
        return
    async with scratch_database(mongodb_url, "gateway") as db:
        keys, rejections = MongoKeyStore(db), MongoRejectionStore(db, 30)
        await keys.create_indexes()
        await rejections.create_indexes()
        yield keys, rejections


def key(key_id: str, trust: str = "RTH", minutes: int = 0) -> ApiKey:
    return ApiKey(key_id, trust, f"hash-{key_id}", T0 + timedelta(minutes=minutes))


async def test_a_trust_holds_one_active_key_per_slot_and_a_revoked_key_frees_it(
    stores: tuple[KeyStore, RejectionStore],
) -> None:
    keys, _ = stores
    assert await keys.add(key("k1"), 0) is True
    assert await keys.add(key("k2", minutes=1), 0) is False  # slot 0 taken by an active key
    assert await keys.add(key("k2", minutes=1), 1) is True
    assert await keys.add(key("n1", trust="RNU"), 0) is True  # another trust's slots
    assert await keys.active_count("RTH") == 2
    assert await keys.get("k1") == key("k1") and await keys.get("k9") is None
    revoked = await keys.revoke("k1", T0 + timedelta(hours=1))
    assert revoked is not None and revoked.revoked_at == T0 + timedelta(hours=1)
    again = await keys.revoke("k1", T0 + timedelta(hours=2))  # already revoked: kept as was
    assert again is not None and again.revoked_at == T0 + timedelta(hours=1)
    assert await keys.revoke("k9", T0) is None
    assert await keys.active_count("RTH") == 1
    assert await keys.add(key("k3", minutes=2), 0) is True  # slot 0 free again
    assert [(k.trust, k.key_id) for k in await keys.all()] == [
        ("RNU", "n1"),
        ("RTH", "k1"),
        ("RTH", "k2"),
        ("RTH", "k3"),
    ]


def rejection(event_id: str, by: str, minutes: int, trust: str = "RTH") -> Rejection:
    reason = Reason(by=by, field="data.patient_ref", message=f"refused by {by}")
    return Rejection(
        trust, event_id, "patient.assessed", T0 + timedelta(minutes=minutes), (reason,)
    )


async def test_rejections_are_one_row_per_event_newest_first_reasons_merged(
    stores: tuple[KeyStore, RejectionStore],
) -> None:
    _, rejections = stores
    await rejections.record([rejection("e1", "outcomes", 5), rejection("e2", "gateway", 1)])
    await rejections.record([rejection("e1", "reporting", 3), rejection("e1", "outcomes", 5)])
    await rejections.record([rejection("e3", "gateway", 9, trust="RNU")])
    rows = [row for row, _ in await rejections.since("RTH", T0, 10)]
    assert [r.id for r in rows] == ["e1", "e2"]
    assert rows[0].rejected_by == ["outcomes", "reporting"]
    assert rows[0].received_at == T0 + timedelta(minutes=3)  # when first rejected
    assert sorted(r.by for r in rows[0].reasons) == ["outcomes", "reporting"]
    assert [r.id for r, _ in await rejections.since("RTH", T0 + timedelta(minutes=2), 10)] == ["e1"]
    assert [r.id for r, _ in await rejections.since("RTH", T0, 1)] == ["e1"]
    assert [r.id for r, _ in await rejections.since("RNU", T0, 10)] == ["e3"]


@pytest.fixture(params=["fake", "mongo"])
async def ledger(request: pytest.FixtureRequest, mongodb_url: str) -> AsyncIterator[Any]:
    if request.param == "fake":
        yield FakeIdLedger()
        return
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_url, tz_aware=True)
    name = f"t{uuid.uuid4().hex[:10]}_gateway"
    try:
        yield MongoIdLedger(client[name])
    finally:
        await client.drop_database(name)
        await client.close()


async def test_the_id_ledger_keeps_each_trusts_first_digest_of_an_id(ledger: IdLedger) -> None:
    assert await ledger.known("RTH", []) == {}
    await ledger.record("RTH", [], T0)
    await ledger.record("RTH", [("e1", "d1"), ("e2", "d2")], T0)
    await ledger.record("RTH", [("e1", "changed"), ("e3", "d3")], T0)  # e1 kept as first stored
    await ledger.record("RNU", [("e1", "other")], T0)  # another trust's id space
    assert await ledger.known("RTH", ["e1", "e3", "e9"]) == {"e1": "d1", "e3": "d3"}
    assert await ledger.known("RNU", ["e1", "e2"]) == {"e1": "other"}
    assert await ledger.known("RNU", ["e9"]) == {}
