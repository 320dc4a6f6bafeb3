"""The consumers' id ledger on the real database: what it stores, and that it reads the
documents a deployed ledger wrote in its older shape alike (issue 26)."""

from __future__ import annotations

import json
from typing import Any

from ibest import registry
from ibest.backbone.consumer import (
    LEDGER_DIGEST_BYTES,
    EventLedger,
    content_digest,
    ledger_key,
)
from shared.envelope import AnyEvent, parse_event
from tests.harness import cloud_event, scratch_database

ENROLLED = {"clinician_ref": "c-001", "profession": "nurse", "course_version": "1"}


def event(data: dict[str, Any], *, event_id: str, trust: str = "RTH") -> AnyEvent:
    raw = cloud_event("clinician.enrolled", data, trust=trust, site=f"{trust}08", event_id=event_id)
    return parse_event(f"ibest.v1.{trust}.clinician.enrolled", json.dumps(raw).encode())


def other(e: AnyEvent) -> AnyEvent:
    """The same trust and id, other content."""
    return event({**ENROLLED, "profession": "doctor"}, event_id=str(e.id), trust=e.trustcode)


async def test_the_ledger_stores_only_the_key_and_16_bytes_of_digest(mongodb_url: str) -> None:
    async with scratch_database(mongodb_url, "ledger") as db:
        ledger = EventLedger(db)
        first = event(ENROLLED, event_id="0b6f7a1e-0000-4000-8000-000000000001")
        assert await ledger.conflicts([first]) == set()
        [doc] = await db["seen_events"].find().to_list()
        assert doc == {
            "_id": ledger_key("RTH", first.id),
            "d": bytes.fromhex(content_digest(first))[:LEDGER_DIGEST_BYTES],
        }
        same_id_elsewhere = event(
            {**ENROLLED, "profession": "doctor"}, event_id=str(first.id), trust="RKB"
        )
        # a repeat is no conflict, other content under the id is, another trust's id is its own
        assert await ledger.conflicts([first, other(first), same_id_elsewhere]) == {1}
        assert await db["seen_events"].count_documents({}) == 2


async def test_documents_of_the_older_shape_are_read_alike(mongodb_url: str) -> None:
    async with scratch_database(mongodb_url, "ledger") as db:
        old = event(ENROLLED, event_id="0b6f7a1e-0000-4000-8000-000000000002")
        await db["seen_events"].insert_one(
            {
                "_id": ledger_key("RTH", old.id),
                "digest": content_digest(old),
                "type": "uk.nhs.ibest.clinician.enrolled.v1",
            }
        )
        ledger = EventLedger(db)
        fresh = event(ENROLLED, event_id="0b6f7a1e-0000-4000-8000-000000000003")
        assert await ledger.conflicts([old, fresh, other(old)]) == {2}
        assert await ledger.conflicts([other(old)]) == {0}
        assert await ledger.conflicts([old]) == set()


async def test_unledgered_events_are_neither_recorded_nor_judged(mongodb_url: str) -> None:
    async with scratch_database(mongodb_url, "ledger") as db:
        ledger = EventLedger(db, unledgered=["module.started"])
        module = parse_event(
            "ibest.v1.RTH.module.started",
            json.dumps(
                cloud_event(
                    "module.started",
                    {"clinician_ref": "c-001", "module_id": "m01-understanding-back-pain"},
                    event_id="0b6f7a1e-0000-4000-8000-000000000004",
                )
            ).encode(),
        )
        enrolled = event(ENROLLED, event_id="0b6f7a1e-0000-4000-8000-000000000005")
        assert await ledger.conflicts([module, enrolled, other(enrolled), module]) == {2}
        assert [d["_id"] async for d in db["seen_events"].find()] == [
            ledger_key("RTH", enrolled.id)
        ]


def test_a_service_leaves_out_of_its_ledger_only_events_it_consumes() -> None:
    for service in registry.SERVICES:
        assert set(service.unledgered) <= set(service.consumes), service.name
    # what the declarations say today (issue 26): derived events, and notifications' module
    # events (they only move a minimum and a maximum there)
    derived = set(registry.derived_events())
    assert {n for s in registry.SERVICES for n in s.unledgered} - derived == {
        "module.started",
        "module.completed",
    }
    assert registry.declaration("notifications").unledgered
