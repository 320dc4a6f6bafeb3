"""Ids belong to their trust (domain.md, "One verdict per event"), over the real gateway,
NATS, database and services: two trusts may use one id and both events count; no raw event
pre-empts a derived one; an id reused for other content is refused (at the gateway with
the reason, and dead-lettered on NATS); a repeated JSON key is refused; a true duplicate
stays `duplicate` long after the stream's duplicate window.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from nats.js import JetStreamContext

from ibest.backbone.settings import Settings
from ibest.backbone.streams import EVENTS_STREAM, ensure_streams
from ibest.registry import consumers
from services.enrolment.service import SPEC as ENROLMENT
from services.gateway.service import build_spec
from services.gateway.settings import GatewaySettings
from services.outcomes.service import SPEC as OUTCOMES
from services.reporting.adapters.replay import StreamHistory
from services.reporting.service import SPEC as REPORTING
from tests.gateway.conftest import KeyMaker
from tests.harness import (
    cloud_event,
    dead_letters,
    platform_msg_id,
    publish_raw,
    running_service,
    stream_events,
    wait_for,
)
from tests.platform.test_end_to_end import MODULES

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=120)
TOKEN = "ids-raw"
STRUCTURED = {"Content-Type": "application/cloudevents+json"}
BATCH = {"Content-Type": "application/cloudevents-batch+json"}
Figures = dict[str, Any]


def enrolled(ref: str, trust: str, event_id: str | None = None, minute: int = 0) -> dict[str, Any]:
    data = {"clinician_ref": ref, "profession": "nurse", "course_version": "1"}
    return cloud_event(
        "clinician.enrolled",
        data,
        trust=trust,
        site=f"{trust}01",
        time=T0 + timedelta(minutes=minute),
        event_id=event_id,
    )


def completed_modules(ref: str, trust: str) -> list[dict[str, Any]]:
    return [
        cloud_event(
            "module.completed",
            {"clinician_ref": ref, "module_id": m},
            trust=trust,
            site=f"{trust}01",
            time=T0 + timedelta(hours=1, minutes=i),
        )
        for i, m in enumerate(MODULES)
    ]


def assessed(
    patient: str, trust: str, timepoint: str, rmdq: int, days: int, event_id: str | None = None
) -> dict[str, Any]:
    return cloud_event(
        "patient.assessed",
        {"patient_ref": patient, "timepoint": timepoint, "measures": {"rmdq": rmdq}},
        trust=trust,
        site=f"{trust}01",
        time=T0 + timedelta(days=days),
        event_id=event_id,
    )


def old_started_id(clinician_ref: str) -> str:
    """The id today's main gives a clinician's training_started: uuid5 of public inputs,
    which any trust can compute from the source."""
    space = uuid.uuid5(uuid.NAMESPACE_URL, "urn:uk:nhs:ibest:enrolment:derived")
    return str(uuid.uuid5(space, f"{clinician_ref}\n1\nclinician.training_started"))


def old_outcome_id(trust: str, patient: str) -> str:
    """The id today's main gives the first month-3 outcome.recorded of a patient."""
    space = uuid.uuid5(uuid.NAMESPACE_URL, "urn:ibest:outcomes:outcome.recorded")
    return str(uuid.uuid5(space, f"{trust}/{patient}/month_3/1"))


async def send(
    gateway: str, auth: str, events: list[dict[str, Any]], status: int = 200
) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=gateway) as client:
        reply = await client.post(
            "/v1/events", json=events, headers={"Authorization": auth, **BATCH}
        )
    assert reply.status_code == status, reply.text
    results: list[dict[str, Any]] = reply.json()["results"]
    return results


@asynccontextmanager
async def reporting_api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """Enrolment, outcomes and reporting running; the reporting API with a raw token."""
    async with AsyncExitStack() as stack:
        for spec in (ENROLMENT, OUTCOMES):
            await stack.enter_async_context(running_service(spec, settings, lambda: NOW))
        base = await stack.enter_async_context(running_service(REPORTING, settings, lambda: NOW))
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}
        ) as api:
            yield api


async def figures_when(api: httpx.AsyncClient, done: Callable[[Figures], bool]) -> Figures:
    async def national() -> Figures | None:
        figures: Figures = (await api.get("/v1/national?raw=true")).json()["figures"]
        return figures if done(figures) else None

    return await wait_for(national, 90, "the figures")


@pytest.fixture(autouse=True)
def reporting_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IBEST_REPORTING_TOKENS", f"{TOKEN}:raw")
    monkeypatch.setenv("IBEST_REPORTING_SNAPSHOT_SECONDS", "0.2")


async def test_two_trusts_may_use_one_id_and_both_events_are_stored_and_counted(
    settings: Settings, js: JetStreamContext, gateway: str, new_key: KeyMaker
) -> None:
    shared_id, patient_id = str(uuid.uuid4()), str(uuid.uuid4())
    rkb, rth = await new_key("RKB"), await new_key("RTH")
    first = [enrolled("c-rkb", "RKB", shared_id), assessed("pt-1", "RKB", "baseline", 12, 1)]
    first[1]["id"] = patient_id
    second = [enrolled("c-rth", "RTH", shared_id), assessed("pt-1", "RTH", "baseline", 9, 1)]
    second[1]["id"] = patient_id
    assert {r["status"] for r in await send(gateway, rkb, first)} == {"accepted"}
    # Another trust, the same ids, other events: its own, stored (today's main: duplicate)
    assert {r["status"] for r in await send(gateway, rth, second)} == {"accepted"}
    stored = await stream_events(js, "clinician.enrolled")
    assert sorted((e["trustcode"], e["id"]) for e in stored) == [
        ("RKB", shared_id),
        ("RTH", shared_id),
    ]
    async with reporting_api(settings) as api:
        figures = await figures_when(
            api, lambda f: f["clinicians_enrolled"] == 2 and f["patients_baseline"] == 2
        )
    assert figures["clinicians_enrolled"] == 2 and figures["patients_baseline"] == 2
    assert await dead_letters(js) == []
    # A rebuild replays both: ids are judged per trust there too.
    replayed = [e async for e in StreamHistory(js, 5).stored(["clinician.enrolled"])]
    assert sorted((e.trustcode, str(e.id)) for e in replayed) == [
        ("RKB", shared_id),
        ("RTH", shared_id),
    ]


async def test_no_raw_event_pre_empts_a_derived_training_started_or_outcome(
    settings: Settings, js: JetStreamContext, gateway: str, new_key: KeyMaker
) -> None:
    """The attacks of issue 24, end to end: RKB sends an event with the id RTH's clinician's
    training_started would get on today's main, and RTH pre-sends its own month-3 outcome's
    id on another patient's assessment. Figures stay right."""
    rkb, rth = await new_key("RKB"), await new_key("RTH")
    hostile = [enrolled("c-other", "RKB", old_started_id("c-1"))]
    own_outcome = [assessed("pt-2", "RTH", "baseline", 10, 1, old_outcome_id("RTH", "pt-1"))]
    assert {r["status"] for r in await send(gateway, rkb, hostile)} == {"accepted"}
    assert {r["status"] for r in await send(gateway, rth, own_outcome)} == {"accepted"}
    rollout = [
        enrolled("c-1", "RTH"),
        *completed_modules("c-1", "RTH"),
        assessed("pt-1", "RTH", "baseline", 16, 2),
        assessed("pt-1", "RTH", "month_3", 20, 95),  # the unfavourable outcome
    ]
    assert {r["status"] for r in await send(gateway, rth, rollout)} == {"accepted"}
    async with reporting_api(settings) as api:
        figures = await figures_when(
            api,
            lambda f: f["clinicians_started"] == 1 and f["outcomes"]["rmdq"]["month_3"]["n"] == 1,
        )
    assert figures["clinicians_enrolled"] == 2 and figures["clinicians_completed"] == 1
    assert figures["patients_baseline"] == 2 and figures["patients_month_3"] == 1
    assert figures["outcomes"]["rmdq"]["month_3"]["mean_change"] == 4.0
    started = await stream_events(js, "clinician.training_started")
    assert [e["data"]["clinician_ref"] for e in started] == ["c-1"]
    assert started[0]["id"] != old_started_id("c-1")
    [outcome] = await stream_events(js, "outcome.recorded")
    assert outcome["id"] != old_outcome_id("RTH", "pt-1")
    assert await dead_letters(js) == []


async def test_an_id_reused_for_other_content_is_refused_at_the_gateway_and_on_nats(
    settings: Settings, js: JetStreamContext, gateway: str, new_key: KeyMaker
) -> None:
    rth = await new_key("RTH")
    event = enrolled("c-1", "RTH")
    other = {**event, "data": {**event["data"], "profession": "physiotherapist"}}
    assert [r["status"] for r in await send(gateway, rth, [event])] == ["accepted"]
    # Sent again (twice in one request): a true duplicate, not stored again.
    assert [r["status"] for r in await send(gateway, rth, [event, event])] == [
        "duplicate",
        "duplicate",
    ]
    [refused] = await send(gateway, rth, [other], status=422)
    assert refused["status"] == "rejected"
    assert refused["errors"] == [
        {"field": "id", "code": "reused-id", "message": "id already used for a different event"}
    ]
    # in one request: the first is stored, the second (same id, other content) refused
    fresh = enrolled("c-2", "RTH")
    fresh_other = {**fresh, "data": {**fresh["data"], "profession": "doctor"}}
    results = await send(gateway, rth, [fresh, fresh_other], status=422)
    assert [r["status"] for r in results] == ["accepted", "rejected"]
    async with httpx.AsyncClient(base_url=gateway) as client:
        rows = (await client.get("/v1/rejections", headers={"Authorization": rth})).json()[
            "rejections"
        ]
    assert {(r["id"], r["rejected_by"][0]) for r in rows} == {
        (event["id"], "gateway"),
        (fresh["id"], "gateway"),
    }
    assert len(await stream_events(js, "clinician.enrolled")) == 2
    # The trust's own system sends the reused id straight on NATS: every consumer
    # dead-letters it with the same reason.
    async with running_service(ENROLMENT, settings, lambda: NOW):
        assert await publish_raw(js, other)
        letters = await wait_for(lambda: dead_letters(js), 30, "the reused id dead-lettered")
    assert [(dl.consumer, dl.error) for dl in letters] == [
        ("enrolment", "id: id already used for a different event")
    ]
    # Read back by the trust with the code the gateway gives the same refusal.
    async with httpx.AsyncClient(base_url=gateway, headers={"Authorization": rth}) as client:

        async def dead_lettered() -> list[dict[str, Any]]:
            rows = (await client.get("/v1/rejections")).json()["rejections"]
            return [r for r in rows if "enrolment" in r["rejected_by"]]

        [row] = await wait_for(dead_lettered, 30, "the dead letter in the trust's rejections")
    assert row["id"] == other["id"]
    assert {(r["by"], r["field"], r["code"]) for r in row["reasons"]} == {
        ("gateway", "id", "reused-id"),
        ("enrolment", "id", "reused-id"),
    }
    # A rebuild skips it too, and keeps the first.
    replayed = [e async for e in StreamHistory(js, 5).stored(["clinician.enrolled"])]
    assert [e.data.profession for e in replayed if str(e.id) == event["id"]] == ["nurse"]


async def test_a_repeated_json_key_is_refused_on_every_path(
    settings: Settings, js: JetStreamContext, gateway: str, new_key: KeyMaker
) -> None:
    rth = await new_key("RTH")
    good = enrolled("c-1", "RTH")
    twice = json.dumps(enrolled("c-2", "RTH"))[:-1] + ', "trustcode": "RKB"}'
    nested = json.dumps(enrolled("c-3", "RTH")).replace(
        '"profession": "nurse"', '"profession": "nurse", "profession": "doctor"'
    )
    async with httpx.AsyncClient(base_url=gateway, headers={"Authorization": rth}) as client:
        one = await client.post("/v1/events", content=twice, headers=STRUCTURED)
        batch = await client.post(
            "/v1/events", content=f"[{json.dumps(good)}, {nested}]", headers=BATCH
        )
        ce = {f"ce-{k}": str(v) for k, v in good.items() if k not in ("data", "datacontenttype")}
        binary = await client.post(
            "/v1/events",
            content='{"clinician_ref": "c-4", "clinician_ref": "c-5", "profession": "nurse", '
            '"course_version": "1"}',
            headers={**ce, "ce-id": str(uuid.uuid4()), "Content-Type": "application/json"},
        )
    assert one.status_code == 422
    assert one.json()["results"][0]["errors"] == [
        {
            "field": "event",
            "code": "duplicate-key",
            "message": "repeats the key 'trustcode' in one JSON object; each key may appear "
            "once (parsers disagree on which value would count)",
        }
    ]
    assert batch.status_code == 422
    assert [r["status"] for r in batch.json()["results"]] == ["accepted", "rejected"]
    assert "'profession'" in batch.json()["results"][1]["errors"][0]["message"]
    assert binary.status_code == 422
    assert "'clinician_ref'" in binary.json()["results"][0]["errors"][0]["message"]
    assert [e["id"] for e in await stream_events(js, "clinician.enrolled")] == [good["id"]]
    # Straight on NATS: dead-lettered with the reason, and a rebuild skips it.
    async with running_service(ENROLMENT, settings, lambda: NOW):
        assert await publish_raw(
            js, twice.encode(), "ibest.v1.RTH.clinician.enrolled", msg_id="twice"
        )
        [letter] = await wait_for(lambda: dead_letters(js), 30, "the repeated key dead-lettered")
    assert letter.error.startswith("event: repeats the key 'trustcode'")
    replayed = [e async for e in StreamHistory(js, 5).stored(["clinician.enrolled"])]
    assert [str(e.id) for e in replayed] == [good["id"]]


async def test_a_true_duplicate_is_still_duplicate_after_the_streams_window(
    settings: Settings, js: JetStreamContext, new_key: KeyMaker
) -> None:
    settings = settings.model_copy(update={"duplicate_window": 0.5})
    await ensure_streams(
        js, settings, consumers()
    )  # the stream now forgets a Nats-Msg-Id after 0.5 s
    own = GatewaySettings(IBEST_GATEWAY_RATE=1000, IBEST_GATEWAY_BURST=1000)
    event = enrolled("c-1", "RTH")
    async with running_service(build_spec(own), settings) as gateway:
        rth = await new_key("RTH")
        assert [r["status"] for r in await send(gateway, rth, [event])] == ["accepted"]
        probe = cloud_event("clinician.enrolled", event["data"], trust="RTH", site="RTH01")
        assert await publish_raw(js, probe, msg_id="window-probe")

        async def window_passed() -> bool:
            return await publish_raw(js, probe, msg_id="window-probe")

        await wait_for(window_passed, 30, "the stream's duplicate window to pass")
        before = (await js.stream_info(EVENTS_STREAM)).state.messages
        assert [r["status"] for r in await send(gateway, rth, [event])] == ["duplicate"]
        other = {**event, "source": "/trusts/RTH/another-system"}
        [refused] = await send(gateway, rth, [other], status=422)
        assert refused["errors"][0]["message"] == "id already used for a different event"
        assert (await js.stream_info(EVENTS_STREAM)).state.messages == before
    stored = [e for e in await stream_events(js, "clinician.enrolled") if e["id"] == event["id"]]
    assert [e["_msg_id"] for e in stored] == [platform_msg_id(event)]


async def test_a_course_platform_key_uses_each_trusts_id_space(
    settings: Settings, js: JetStreamContext, gateway: str, new_key: KeyMaker
) -> None:
    """A course platform sends for any trust: its events' ids are judged in their trust's
    space, as the stream and the consumers judge them. The trust reusing such an id for
    other content is told `reused-id` at once, never a 503 "send again" that no resend mends,
    and the validate-only sandbox says the same."""
    platform, rth = await new_key("course-platform:fl"), await new_key("RTH")
    ids = [str(uuid.uuid4()) for _ in range(2)]
    sent = [enrolled("c-fl", "RTH", ids[0]), enrolled("c-fl", "RXF", ids[1])]
    assert [r["status"] for r in await send(gateway, platform, sent)] == ["accepted"] * 2
    assert [r["status"] for r in await send(gateway, platform, sent)] == ["duplicate"] * 2
    own = enrolled("c-own", "RTH", ids[0])
    async with httpx.AsyncClient(base_url=gateway) as client:
        tried = await client.post(
            "/v1/events/validate", json=[own], headers={"Authorization": rth, **BATCH}
        )
    assert tried.status_code == 422 and tried.json()["results"][0]["errors"][0]["code"] == (
        "reused-id"
    )
    [refused] = await send(gateway, rth, [own], status=422)
    assert refused["errors"] == [
        {"field": "id", "code": "reused-id", "message": "id already used for a different event"}
    ]
    # Another trust's id space is its own: the same id from RKB is stored.
    assert [
        r["status"]
        for r in await send(gateway, await new_key("RKB"), [enrolled("c-rkb", "RKB", ids[0])])
    ] == ["accepted"]
    assert len(await stream_events(js, "clinician.enrolled")) == 3
