"""The backbone over real NATS and a real database, driven by a raw nats-py client."""

from __future__ import annotations

import json
from typing import Any

import pytest
from nats.js import JetStreamContext
from pymongo import AsyncMongoClient

from ibest.backbone.consumer import handlers
from ibest.backbone.deadletters import list_dead_letters, replay_dead_letter
from ibest.backbone.ledger import content_digest, ledger_key
from ibest.backbone.runtime import ServiceContext, ServiceSpec, Wiring
from ibest.backbone.settings import Settings
from ibest.backbone.streams import EVENTS_STREAM, consumer_config, ensure_consumer
from shared.envelope import AnyEvent, ContractError, parse_event
from tests.harness import cloud_event, publish_raw, running_service, wait_for

ENROLLED = {"clinician_ref": "c-001", "profession": "nurse", "course_version": "1"}


def probe_spec(applied: list[AnyEvent], fail_times: dict[str, int] | None = None) -> ServiceSpec:
    """A minimal service: stores each enrolment, optionally failing transiently first."""
    fail_times = fail_times if fail_times is not None else {}

    async def wire(ctx: ServiceContext) -> Wiring:
        async def on_enrolled(event: AnyEvent) -> None:
            ref = event.data.clinician_ref
            if ref == "c-invalid":
                raise ContractError.one("data.clinician_ref", "is not allowed by the probe")
            if fail_times.get(ref, 0) > 0:
                fail_times[ref] -= 1
                raise ConnectionError("database unavailable (simulated)")
            await ctx.db["clinicians"].update_one(
                {"_id": ref}, {"$addToSet": {"events": str(event.id)}}, upsert=True
            )
            applied.append(event)

        async def apply(events: list[AnyEvent]) -> None:  # one event: a batch of one
            for event in events:
                await on_enrolled(event)

        return Wiring(handlers=handlers(["clinician.enrolled"], apply))

    return ServiceSpec("probe", ["clinician.enrolled"], wire)


async def stored(settings: Settings, ref: str) -> dict[str, Any] | None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_url)
    try:
        return await client[settings.database_of("probe")]["clinicians"].find_one({"_id": ref})
    finally:
        await client.close()


@pytest.fixture(autouse=True)
async def probe_consumer(js: JetStreamContext, settings: Settings) -> None:
    """The operator's step for this test-only service: declare its durable consumer."""
    await ensure_consumer(
        js, EVENTS_STREAM, consumer_config("probe", ["clinician.enrolled"], settings)
    )


async def test_same_id_published_twice_is_applied_once(
    settings: Settings, js: JetStreamContext
) -> None:
    applied: list[AnyEvent] = []
    event = cloud_event("clinician.enrolled", ENROLLED)
    assert await publish_raw(js, event) is True
    assert await publish_raw(js, event) is False  # JetStream deduplicated on Nats-Msg-Id
    async with running_service(probe_spec(applied), settings):
        await wait_for(lambda: stored(settings, "c-001"), what="the enrolment stored")
        marker = cloud_event("clinician.enrolled", {**ENROLLED, "clinician_ref": "c-002"})
        await publish_raw(js, marker)
        await wait_for(lambda: stored(settings, "c-002"), what="the marker stored")
    assert [str(e.id) for e in applied].count(event["id"]) == 1
    doc = await stored(settings, "c-001")
    assert doc is not None and doc["events"] == [event["id"]]
    assert await list_dead_letters(js) == []


async def test_malformed_event_is_dead_lettered_with_reason_and_consumer_goes_on(
    settings: Settings, js: JetStreamContext
) -> None:
    applied: list[AnyEvent] = []
    await publish_raw(
        js,
        b'{"specversion": "1.0", "id": ',
        subject="ibest.v1.RTH.clinician.enrolled",
        msg_id="bad-1",
    )
    wrong_trust = cloud_event("clinician.enrolled", ENROLLED)
    await publish_raw(js, wrong_trust, subject="ibest.v1.RXF.clinician.enrolled")
    good = cloud_event("clinician.enrolled", {**ENROLLED, "clinician_ref": "c-good"})
    await publish_raw(js, good)
    async with running_service(probe_spec(applied), settings):
        await wait_for(lambda: stored(settings, "c-good"), what="the good event stored")
        letters = await wait_for(lambda: _letters(js, 2), what="two dead letters")
    by_subject = {dl.subject: dl for dl in letters}
    malformed = by_subject["ibest.v1.RTH.clinician.enrolled"]
    assert malformed.data == b'{"specversion": "1.0", "id": '  # original bytes kept
    assert malformed.reason == "invalid" and "not valid JSON" in malformed.error
    assert malformed.consumer == "probe" and malformed.deliveries == 1
    assert malformed.original_headers["Nats-Msg-Id"] == "bad-1"
    mismatch = by_subject["ibest.v1.RXF.clinician.enrolled"]
    assert "subject" in mismatch.error and "RTH" in mismatch.error
    assert [e.data.clinician_ref for e in applied] == ["c-good"]


async def _letters(js: JetStreamContext, n: int) -> list[Any] | None:
    letters = await list_dead_letters(js)
    return letters if len(letters) >= n else None


@pytest.mark.slow
async def test_transient_failure_is_retried_then_applied(
    settings: Settings, js: JetStreamContext
) -> None:
    applied: list[AnyEvent] = []
    await publish_raw(js, cloud_event("clinician.enrolled", {**ENROLLED, "clinician_ref": "c-r"}))
    async with running_service(probe_spec(applied, {"c-r": 2}), settings):
        await wait_for(lambda: stored(settings, "c-r"), what="applied after two failures")
    assert await list_dead_letters(js) == []


@pytest.mark.slow
async def test_exhausted_retries_dead_letter_then_replay_applies(
    settings: Settings, js: JetStreamContext
) -> None:
    applied: list[AnyEvent] = []
    fail = {"c-x": settings.max_deliveries}
    event = cloud_event("clinician.enrolled", {**ENROLLED, "clinician_ref": "c-x"})
    await publish_raw(js, event)
    async with running_service(probe_spec(applied, fail), settings):
        [letter] = await wait_for(lambda: _letters(js, 1), timeout=60, what="dead letter")
        assert letter.reason == "exhausted" and letter.deliveries == settings.max_deliveries
        assert "database unavailable" in letter.error
        assert json.loads(letter.data)["id"] == event["id"]
        await replay_dead_letter(js, letter)  # the "fix": failures are used up now
        await wait_for(lambda: stored(settings, "c-x"), what="applied after replay")
    assert await list_dead_letters(js) == []


async def test_domain_rule_and_reused_id_are_dead_lettered(
    settings: Settings, js: JetStreamContext
) -> None:
    applied: list[AnyEvent] = []
    first = cloud_event("clinician.enrolled", ENROLLED)
    reused = {**first, "data": {**ENROLLED, "profession": "doctor"}}
    async with running_service(probe_spec(applied), settings):
        await publish_raw(js, first)
        await wait_for(lambda: stored(settings, "c-001"), what="first stored")
        # A different event under the same id, beyond the stream's duplicate window:
        await publish_raw(js, reused, msg_id="other-msg-id")
        await publish_raw(
            js, cloud_event("clinician.enrolled", {**ENROLLED, "clinician_ref": "c-invalid"})
        )
        letters = await wait_for(lambda: _letters(js, 2), what="two dead letters")
    errors = sorted(dl.error for dl in letters)
    assert "id: id already used for a different event" in errors
    assert any("data.clinician_ref: is not allowed" in e for e in errors)
    assert len(applied) == 1


async def test_an_id_the_ledger_recorded_before_its_upgrade_is_still_judged(
    settings: Settings, js: JetStreamContext
) -> None:
    """A deployed ledger's row of before issue 26 (`_id` the text `<trust>:<id>`): the same
    event delivered again after the upgrade is applied (idempotent), not dead-lettered, and
    the id reused for other content is dead-lettered (issue 26)."""
    applied: list[AnyEvent] = []
    first = cloud_event("clinician.enrolled", ENROLLED)
    reused = {**first, "data": {**ENROLLED, "profession": "doctor"}}
    before = parse_event(None, json.dumps(first).encode())
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_url)
    try:
        await client[settings.database_of("probe")]["seen_events"].insert_one(
            {
                "_id": ledger_key(before.trustcode, before.id),
                "d": bytes.fromhex(content_digest(before))[:16],
            }
        )
    finally:
        await client.close()
    async with running_service(probe_spec(applied), settings):
        await publish_raw(js, reused, msg_id="reused-msg-id")
        await publish_raw(js, first, msg_id="redelivered-msg-id")
        await wait_for(lambda: stored(settings, "c-001"), what="the redelivered event applied")
        letters = await wait_for(lambda: _letters(js, 1), what="the reused id dead-lettered")
    assert [dl.error for dl in letters] == ["id: id already used for a different event"]
    assert [str(e.id) for e in applied] == [first["id"]]
    assert applied[0].data.profession == "nurse"


async def test_event_published_with_an_expected_stream_is_still_dead_lettered(
    settings: Settings, js: JetStreamContext
) -> None:
    """nats-py's `stream=` adds Nats-Expected-Stream; the dead letter must not inherit it."""
    applied: list[AnyEvent] = []
    await js.publish("ibest.v1.RTH.clinician.enrolled", b"not json", stream="IBEST_EVENTS")
    async with running_service(probe_spec(applied), settings):
        [letter] = await wait_for(lambda: _letters(js, 1), what="the dead letter")
    assert letter.reason == "invalid" and letter.data == b"not json"
