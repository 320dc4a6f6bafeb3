"""Forms' site-team `Audit` port, held to one contract: every assertion here runs against
the in-memory fake (tests/fakes/forms.py `FakeAudit`), which the use-case tests read, and
against `AuditAdapter` writing the one audit log (ibest/backbone/audit.py) on the real
database: each site-team action is kept, in order, with the site key that did it and what
it said (never anything that was not passed)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from ibest.backbone.audit import AuditLog
from services.forms.adapters.stores import AuditAdapter
from services.forms.ports import Audit
from tests.fakes.forms import FakeAudit
from tests.harness import scratch_database

T0 = datetime(2026, 2, 2, 10, 0, tzinfo=UTC)


@dataclass
class World:
    audit: Audit
    kept: Callable[[], Awaitable[list[dict[str, Any]]]]
    """Every record, oldest first: {action, key_id, what it said}."""


@pytest.fixture(params=["fake", "mongo"])
async def world(request: pytest.FixtureRequest, mongodb_url: str) -> AsyncIterator[World]:
    if request.param == "fake":
        fake = FakeAudit()

        async def fake_kept() -> list[dict[str, Any]]:
            return list(fake.records)

        yield World(fake, fake_kept)
        return
    async with scratch_database(mongodb_url, "forms_audit") as db:
        log = AuditLog(db, lambda: T0)

        async def real_kept() -> list[dict[str, Any]]:
            shown = []
            for doc in reversed(await log.find()):  # newest first
                assert (doc["via"], doc["operator"], doc["at"]) == ("http", None, T0)
                rest = {k: v for k, v in doc.items() if k not in ("_id", "at", "via", "operator")}
                shown.append({"key_id": rest.pop("token_id"), **rest})
            return shown

        yield World(AuditAdapter(log), real_kept)


async def test_each_site_team_action_is_kept_with_its_key_and_what_it_said(
    world: World,
) -> None:
    await world.audit.record("site_sign_in", "k1", site="RTH08")
    await world.audit.record("patient_added", "k1", site="RTH08", patient_ref="FP-ABC123")
    await world.audit.record("site_sign_in", "k2", site="RNU01")
    assert await world.kept() == [
        {"action": "site_sign_in", "key_id": "k1", "site": "RTH08"},
        {"action": "patient_added", "key_id": "k1", "site": "RTH08", "patient_ref": "FP-ABC123"},
        {"action": "site_sign_in", "key_id": "k2", "site": "RNU01"},
    ]
