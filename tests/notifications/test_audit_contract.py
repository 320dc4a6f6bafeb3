"""Notifications' `AuditTrail` port, held to one contract: the in-memory fake
(tests/fakes/audit.py) and the backbone's MongoDB audit log (ibest.backbone.audit.AuditLog)
on the real database return the same record for the same change, and the real one keeps
it (the pattern of tests/reporting/test_store.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from ibest.backbone.audit import Actor, AuditLog
from services.notifications.ports import AuditTrail
from tests.fakes.audit import FakeAuditTrail
from tests.harness import scratch_database

T0 = datetime(2026, 2, 2, 10, 0, tzinfo=UTC)


@pytest.fixture(params=["fake", "mongo"])
async def trail(request: pytest.FixtureRequest, mongodb_url: str) -> AsyncIterator[Any]:
    if request.param == "fake":
        yield FakeAuditTrail()
        return
    async with scratch_database(mongodb_url, "audit") as db:
        yield AuditLog(db, lambda: T0)


async def test_a_change_is_recorded_with_who_asked_and_what(trail: AuditTrail) -> None:
    by_token = await trail.record(
        "opt_out", Actor("http", "t1"), clinician_ref="c1", opted_out=True
    )
    by_operator = await trail.record("opt_in", Actor("cli", None, "ops"), clinician_ref="c2")
    shown = [
        {k: v for k, v in d.items() if k not in ("_id", "at")} for d in (by_token, by_operator)
    ]
    assert shown == [
        {
            "action": "opt_out",
            "via": "http",
            "token_id": "t1",
            "operator": None,
            "clinician_ref": "c1",
            "opted_out": True,
        },
        {
            "action": "opt_in",
            "via": "cli",
            "token_id": None,
            "operator": "ops",
            "clinician_ref": "c2",
        },
    ]
    if isinstance(trail, AuditLog):  # the real log keeps them, newest first
        kept = await trail.find()
        assert [d["_id"] for d in kept] == [by_operator["_id"], by_token["_id"]]
        assert all(d["at"] == T0 for d in kept)
