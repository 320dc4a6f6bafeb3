"""A service's batch use case: a delivered batch applied in one call, and the one-by-one
fallback (each event a batch of one) under the usual policy when the batch fails."""

from __future__ import annotations

from typing import Any

import pytest
from nats.js import JetStreamContext
from pymongo import AsyncMongoClient

from ibest.backbone.consumer import handlers
from ibest.backbone.deadletters import list_dead_letters
from ibest.backbone.runtime import ServiceContext, ServiceSpec, Wiring
from ibest.backbone.settings import Settings
from ibest.backbone.streams import EVENTS_STREAM, consumer_config, ensure_consumer
from shared.envelope import AnyEvent, ContractError
from tests.harness import cloud_event, publish_raw, running_service, wait_for

ENROLLED = {"profession": "nurse", "course_version": "1"}


def batch_spec(batches: list[int], singles: list[str]) -> ServiceSpec:
    """Stores enrolments; the batch handler refuses any batch holding c-invalid."""

    async def wire(ctx: ServiceContext) -> Wiring:
        async def many(events: list[AnyEvent]) -> None:
            if any(e.data.clinician_ref == "c-invalid" for e in events):
                raise ContractError.one("data.clinician_ref", "is not allowed by the probe")
            if len(events) == 1:  # one event: a batch of one (or the one-by-one fallback)
                singles.append(events[0].data.clinician_ref)
            else:
                batches.append(len(events))
            for event in events:
                await ctx.db["clinicians"].update_one(
                    {"_id": event.data.clinician_ref}, {"$set": {"id": str(event.id)}}, upsert=True
                )

        return Wiring(handlers=handlers(["clinician.enrolled"], many))

    return ServiceSpec("batchprobe", ["clinician.enrolled"], wire)


async def count(settings: Settings, n: int) -> bool:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_url)
    try:
        found = await client[settings.database_of("batchprobe")]["clinicians"].count_documents({})
    finally:
        await client.close()
    return found == n


@pytest.fixture(autouse=True)
async def batchprobe_consumer(js: JetStreamContext, settings: Settings) -> None:
    """The operator's step for this test-only service: declare its durable consumer."""
    await ensure_consumer(
        js, EVENTS_STREAM, consumer_config("batchprobe", ["clinician.enrolled"], settings)
    )


@pytest.mark.slow
async def test_a_batch_is_applied_in_one_call(settings: Settings, js: JetStreamContext) -> None:
    batches: list[int] = []
    singles: list[str] = []
    for i in range(20):
        await publish_raw(
            js, cloud_event("clinician.enrolled", {**ENROLLED, "clinician_ref": f"c-{i:02d}"})
        )
    async with running_service(batch_spec(batches, singles), settings):
        await wait_for(lambda: count(settings, 20), what="20 enrolments stored")
    assert sum(batches) + len(singles) == 20 and max(batches) > 1
    assert await list_dead_letters(js) == []


async def test_a_failed_batch_falls_back_to_one_by_one(
    settings: Settings, js: JetStreamContext
) -> None:
    batches: list[int] = []
    singles: list[str] = []
    refs = ["c-a", "c-invalid", "c-b"]
    for ref in refs:
        await publish_raw(js, cloud_event("clinician.enrolled", {**ENROLLED, "clinician_ref": ref}))
    async with running_service(batch_spec(batches, singles), settings):
        await wait_for(lambda: count(settings, 2), what="the two good enrolments stored")
        letters = await wait_for(lambda: list_dead_letters(js), what="the bad one dead-lettered")
    assert batches == [] and sorted(singles) == ["c-a", "c-b"]
    assert [letter.reason for letter in letters] == ["invalid"]
