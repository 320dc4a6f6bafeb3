"""One truth by event time (issue 25), over real NATS and the real database, through the
enrolment and reporting services: the issue's exact sequence published in its scrambled
order, each event applied by enrolment before the next is sent (so enrolment first derives
the start from 3 November and must correct it), ends with the clinician started in October
2025, in the live figures and after `ibest reporting rebuild` alike. And an event dated in
the future of its storing, or before the programme, is refused with the same reason by the
gateway, every consumer and the rebuild."""

from __future__ import annotations

import argparse
import json
import uuid
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from nats.js import JetStreamContext

from ibest.backbone.mongo import mongo_client
from ibest.backbone.settings import Settings
from ibest.backbone.streams import EVENTS_STREAM
from ibest.eventtimes import check_times_command
from services.enrolment.adapters.repository import to_doc
from services.enrolment.cli import rederive_command
from services.enrolment.domain.clinician import fold
from services.enrolment.domain.record import Emitted, apply_event
from services.enrolment.service import SPEC as ENROLMENT
from services.gateway.bootstrap import key_admin
from services.gateway.service import build_spec as gateway_spec
from services.gateway.settings import GatewaySettings
from services.reporting.cli import rebuild_command
from services.reporting.service import SPEC as REPORTING
from shared.catalogue import catalogue
from shared.envelope import parse_event
from tests.harness import (
    ID_KEY,
    cloud_event,
    dead_letters,
    publish_raw,
    running_service,
    stream_events,
    wait_for,
)
from tests.platform.test_end_to_end import MODULES

TOKEN = "order-raw"
TRUST, SITE = "RKB", "RKB01"
REF = "c" * 32


def legacy_derived_id(ref: str, version: str, name: str) -> uuid.UUID:
    """A derived event's id as enrolment made it before revisions and keyed ids (uuid5)."""
    space = uuid.uuid5(uuid.NAMESPACE_URL, "urn:uk:nhs:ibest:enrolment:derived")
    return uuid.uuid5(space, f"{ref}\n{version}\n{name}")


def at(month: int, day: int) -> datetime:
    return datetime(2025, month, day, 12, 0, tzinfo=UTC)


def issue_sequence() -> dict[str, dict[str, Any]]:
    """The issue's clinician: enrolled 8 Oct 2025, m01 started 11 Oct, m01 to m07
    completed 13 to 31 Oct, m08 completed 3 Nov (all at 12:00 UTC)."""

    def ev(name: str, when: datetime, **data: Any) -> dict[str, Any]:
        return cloud_event(name, {"clinician_ref": REF, **data}, trust=TRUST, site=SITE, time=when)

    events = {
        "enrolment": ev(
            "clinician.enrolled", at(10, 8), profession="physiotherapist", course_version="1"
        ),
        "m01 started": ev("module.started", at(10, 11), module_id=MODULES[0]),
    }
    for i, day in enumerate((13, 16, 19, 22, 25, 28, 31)):
        events[f"m0{i + 1}"] = ev("module.completed", at(10, day), module_id=MODULES[i])
    events["m08"] = ev("module.completed", at(11, 3), module_id=MODULES[7])
    return events


SCRAMBLED = ["enrolment", "m08", "m07", "m02", "m06", "m01", "m05", "m03", "m01 started", "m04"]
"""The issue's order: enrolment, m08 (3 Nov), m07, m02, m06, m01 completed, m05, m03, m01
started (11 Oct), m04."""


async def applied_by(js: JetStreamContext, consumer: str) -> bool:
    info = await js.consumer_info(EVENTS_STREAM, consumer)
    return bool(info.num_pending == 0 and info.num_ack_pending == 0)


async def started_by_month(api: httpx.AsyncClient) -> dict[str, tuple[int, int]] | None:
    """(started, completed) per month of the trust's raw monthly series, once complete."""
    body = (await api.get(f"/v1/trusts/{TRUST}/months", params={"raw": "true"})).json()
    figures = body.get("figures", {})
    series = dict(
        zip(
            body.get("months", []),
            zip(
                figures.get("clinicians_started", []),
                figures.get("clinicians_completed", []),
                strict=True,
            ),
            strict=True,
        )
    )
    return series if series.get("2025-11", (0, 0))[1] == 1 else None


@pytest.mark.slow
async def test_the_issue_sequence_counts_the_start_in_october(
    settings: Settings, js: JetStreamContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IBEST_REPORTING_TOKENS", f"{TOKEN}:raw")
    monkeypatch.setenv("IBEST_REPORTING_SNAPSHOT_SECONDS", "0.2")
    events = issue_sequence()
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(running_service(ENROLMENT, settings))
        reporting = await stack.enter_async_context(running_service(REPORTING, settings))
        for name in SCRAMBLED:  # each applied by enrolment before the next is sent
            assert await publish_raw(js, events[name])
            await wait_for(lambda: applied_by(js, "enrolment"), 30, f"enrolment applied {name}")
        async with httpx.AsyncClient(
            base_url=reporting, headers={"Authorization": f"Bearer {TOKEN}"}
        ) as api:
            live = await wait_for(lambda: started_by_month(api), 60, "completion counted")
            assert live["2025-10"] == (1, 0)  # started in October, completed in November
            assert live["2025-11"] == (1, 1)
            current = (await api.get(f"/v1/trusts/{TRUST}", params={"raw": "true"})).json()
            assert current["figures"]["clinicians_started"] == 1

            # Enrolment first derived the start from m08 (3 Nov), then corrected it: one
            # start per revision in the stream, the highest at the earliest module event.
            starts = [
                e
                for e in await stream_events(js, "clinician.training_started")
                if e["data"]["clinician_ref"] == REF
            ]
            assert len(starts) >= 2
            latest = max(starts, key=lambda e: e["data"].get("revision", 1))
            assert datetime.fromisoformat(latest["time"]) == at(10, 11)
            assert len({e["id"] for e in starts}) == len(starts)

            # A rebuild replays the same set and gives the same history.
            assert await rebuild_command(argparse.Namespace(), settings) == 0
            rebuilt = await wait_for(lambda: started_by_month(api), 30, "rebuilt series")
            assert rebuilt == live
    assert await dead_letters(js) == []


async def test_a_future_or_pre_programme_time_is_refused_alike_by_gateway_consumers_and_rebuild(
    settings: Settings,
    js: JetStreamContext,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("IBEST_REPORTING_TOKENS", f"{TOKEN}:raw")
    monkeypatch.setenv("IBEST_REPORTING_SNAPSHOT_SECONDS", "0.2")

    def enrolled(ref: str, when: datetime) -> dict[str, Any]:
        return cloud_event(
            "clinician.enrolled",
            {"clinician_ref": ref, "profession": "nurse", "course_version": "1"},
            trust=TRUST,
            site=SITE,
            time=when,
        )

    now = datetime.now(UTC)
    good = enrolled("a" * 32, now - timedelta(days=1))
    future = enrolled("b" * 32, datetime(2999, 1, 1, tzinfo=UTC))
    ancient = enrolled("d" * 32, datetime(1900, 1, 1, tzinfo=UTC))
    extreme = enrolled("e" * 32, datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC))

    # The gateway, against its clock: only the believable one is stored.
    async with running_service(gateway_spec(GatewaySettings()), settings) as gateway:
        async with key_admin(settings) as admin:
            key = f"Bearer {(await admin.create(TRUST))[1]}"
        async with httpx.AsyncClient(base_url=gateway) as client:
            reply = await client.post(
                "/v1/events",
                json=[good, future, ancient, extreme],
                headers={
                    "Authorization": key,
                    "Content-Type": "application/cloudevents-batch+json",
                },
            )
    results = reply.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "rejected", "rejected"]
    at_gateway = [r["errors"][0]["message"] for r in results[1:]]
    assert "is in the future" in at_gateway[0] and "is in the future" in at_gateway[2]
    assert "before the programme" in at_gateway[1]

    # Sent straight to NATS (an integrator past the gateway): each consumer refuses them
    # against the time the stream stored them, with the gateway's reason.
    for event in (future, ancient, extreme):
        assert await publish_raw(js, event)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(running_service(ENROLMENT, settings))
        reporting = await stack.enter_async_context(running_service(REPORTING, settings))

        async def refused() -> list[Any] | None:
            letters = await dead_letters(js)
            return letters if len(letters) == 6 else None  # 3 events x 2 consumers

        letters = await wait_for(refused, 30, "both consumers dead-lettered the three")
        by_id: dict[str, set[str]] = {}
        for letter in letters:
            assert letter.reason == "invalid"
            by_id.setdefault(letter.event_id, set()).add(letter.error)
        for event, gateway_said in zip((future, ancient, extreme), at_gateway, strict=True):
            (error,) = by_id[event["id"]]  # the same reason from both consumers
            # ... and the gateway's: the rule is the same; only the moment of receipt
            # it names (the gateway's clock, the stream's stored time) differs.
            assert error.split(" (")[0] == "time: " + gateway_said.split(" (")[0]
        async with httpx.AsyncClient(
            base_url=reporting, headers={"Authorization": f"Bearer {TOKEN}"}
        ) as api:

            async def counted() -> dict[str, Any] | None:
                body = (await api.get(f"/v1/trusts/{TRUST}", params={"raw": "true"})).json()
                enrolled = body.get("figures", {}).get("clinicians_enrolled")
                return body if enrolled == 1 else None

            body = await wait_for(counted, 30, "the believable enrolment counted")
            assert body["as_of"] < "2999"
            months = (await api.get("/v1/national/months", params={"raw": "true"})).json()
            assert months["months"][0] >= "2015-01"

            # The rebuild judges each event against its stored time too: same exclusions.
            capsys.readouterr()
            assert await rebuild_command(argparse.Namespace(), settings) == 0
            printed = capsys.readouterr().out
            assert "2 future-time" in printed and "1 before-programme" in printed
            assert (await counted()) is not None

    # The operator's dry run lists exactly what the consumers and the rebuild refused.
    assert await check_times_command(argparse.Namespace(json=True), settings) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted((r["event_id"], r["code"]) for r in listed) == sorted(
        [
            (future["id"], "future-time"),
            (ancient["id"], "before-programme"),
            (extreme["id"], "future-time"),
        ]
    )
    assert all(r["reason"] == by_id[r["event_id"]].copy().pop() for r in listed)


async def test_upgrading_rederive_then_rebuild_mends_a_start_derived_before_revisions(
    settings: Settings, js: JetStreamContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An existing deployment: enrolment derived the start from m08 (3 Nov) once, and its
    record remembers only that it emitted it. `ibest enrolment rederive` publishes revision 2
    at 11 October; reporting then counts the start in October, live and after
    `ibest reporting rebuild` (README.md, "Upgrading")."""
    monkeypatch.setenv("IBEST_REPORTING_TOKENS", f"{TOKEN}:raw")
    monkeypatch.setenv("IBEST_REPORTING_SNAPSHOT_SECONDS", "0.2")
    events = issue_sequence()
    record = None
    for name in SCRAMBLED:
        event = parse_event(None, json.dumps(events[name]).encode())
        record = apply_event(record, event, catalogue(), id_key=ID_KEY).record
    assert record is not None
    legacy = record.model_copy(
        update={"emitted": {k: Emitted(revision=1) for k in record.emitted}, "outbox": ()}
    )
    doc = to_doc(legacy, fold(REF, legacy.facts, catalogue()), 1)
    del doc["derived"]  # as stored before revisions: the bare list of emitted keys
    doc["emitted"] = sorted(legacy.emitted)
    client = mongo_client(settings)
    try:
        await client[settings.database_of("enrolment")]["clinicians"].insert_one(doc)
    finally:
        await client.close()
    for name in SCRAMBLED:
        assert await publish_raw(js, events[name])
    for name, data in (
        ("clinician.training_started", {}),
        ("clinician.training_completed", {"completed_at": at(11, 3).isoformat()}),
    ):
        old = cloud_event(
            name,
            {"clinician_ref": REF, "course_version": "1", **data},
            trust=TRUST,
            site=SITE,
            time=at(11, 3),
            event_id=str(legacy_derived_id(REF, "1", name)),
        )
        assert await publish_raw(js, {**old, "source": "/services/enrolment"})

    async with (
        running_service(REPORTING, settings) as reporting,
        httpx.AsyncClient(base_url=reporting, headers={"Authorization": f"Bearer {TOKEN}"}) as api,
    ):
        before = await wait_for(lambda: started_by_month(api), 30, "legacy figures")
        assert before["2025-10"] == (0, 0)  # the defect, as deployed

        assert await rederive_command(argparse.Namespace(), settings) == 0

        async def mended() -> dict[str, tuple[int, int]] | None:
            series = await started_by_month(api)
            return series if series and series["2025-10"] == (1, 0) else None

        live = await wait_for(mended, 30, "the revised start counted in October")
        assert await rederive_command(argparse.Namespace(), settings) == 0  # idempotent
        assert await rebuild_command(argparse.Namespace(), settings) == 0
        assert await wait_for(mended, 30, "rebuilt") == live
    starts = await stream_events(js, "clinician.training_started")
    assert sorted(e["data"].get("revision", 1) for e in starts) == [1, 2]
