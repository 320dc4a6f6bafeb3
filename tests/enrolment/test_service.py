"""The enrolment service over real NATS and the real database, driven as a trust drives it."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from pymongo import AsyncMongoClient

from ibest.backbone.outbox import read_entries
from ibest.backbone.publisher import Publisher
from ibest.backbone.settings import Settings
from ibest.backbone.streams import EVENTS_STREAM
from services.enrolment.adapters.contact_rpc import CONTACT_SUBJECT
from services.enrolment.adapters.repository import MongoClinicianRepository
from services.enrolment.cli import erase_command
from services.enrolment.domain.record import derived_event_id
from services.enrolment.service import build_spec
from services.enrolment.settings import EnrolmentSettings
from shared.catalogue import catalogue as load_catalogue
from tests.fakes.publisher import FakePublisher
from tests.harness import (
    ID_KEY,
    SERVICE_AUTH,
    cloud_event,
    dead_letters,
    platform_msg_id,
    publish_raw,
    running_service,
    stream_events,
    wait_for,
)

MODULES = list(load_catalogue().courses[0].required_modules)
T0 = datetime(2025, 5, 6, 9, 30, tzinfo=UTC)
EMAIL = "jo.bloggs@nhs.net"


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def enrolled(ref: str, minutes: int = 0, site: str = "RTH08", **extra: Any) -> dict[str, Any]:
    data = {"clinician_ref": ref, "profession": "physiotherapist", "course_version": "1", **extra}
    return cloud_event("clinician.enrolled", data, trust=site[:3], site=site, time=at(minutes))


def module(
    ref: str, verb: str, module_id: str, minutes: int, site: str = "RTH08"
) -> dict[str, Any]:
    return cloud_event(
        f"module.{verb}",
        {"clinician_ref": ref, "module_id": module_id},
        trust=site[:3],
        site=site,
        time=at(minutes),
    )


async def clinician_doc(settings: Settings, ref: str) -> dict[str, Any] | None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_url)
    try:
        return await client[settings.database_of("enrolment")]["clinicians"].find_one({"_id": ref})
    finally:
        await client.close()


async def consumer_idle(js: JetStreamContext) -> bool:
    info = await js.consumer_info(EVENTS_STREAM, "enrolment")
    return bool(info.num_pending == 0 and info.num_ack_pending == 0)


async def contact(nc: NatsClient, ref: str) -> dict[str, Any]:
    reply = await nc.request(
        CONTACT_SUBJECT, json.dumps({"clinician_ref": ref}).encode(), timeout=10
    )
    result: dict[str, Any] = json.loads(reply.data)
    return result


async def test_out_of_order_and_duplicated_events_complete_exactly_once(
    settings: Settings,
    js: JetStreamContext,
    nc: NatsClient,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ref = "clin-7f3a"
    # Everything arrives before the enrolment: modules (one twice, under a new message id so
    # the stream cannot drop it), an intention report; then the enrolment comes last.
    modules = [module(ref, "completed", m, 60 + i) for i, m in enumerate(MODULES)]
    for e in [module(ref, "started", MODULES[0], 55), *reversed(modules)]:
        await publish_raw(js, e)
    await publish_raw(js, modules[2], msg_id="resent-by-the-lms")
    await publish_raw(
        js,
        cloud_event(
            "clinician.intention_reported",
            {"clinician_ref": ref, "intends_to_deliver": True, "confidence": 8},
            time=at(200),
        ),
    )
    await publish_raw(js, enrolled(ref, 0, site="RTH02", contact_email=EMAIL))
    async with running_service(build_spec(), settings) as base:
        completed = await wait_for(
            lambda: stream_events(js, "clinician.training_completed"),
            60,
            "training_completed in the stream",
        )
        await wait_for(lambda: consumer_idle(js), 60, "every event acknowledged")
        async with httpx.AsyncClient(base_url=base, headers=SERVICE_AUTH) as http:
            state = (await http.get(f"/v1/clinicians/{ref}")).json()
            assert (await http.get("/v1/clinicians/nobody")).status_code == 404
        assert await contact(nc, ref) == {
            "clinician_ref": ref,
            "contact_email": EMAIL,
            "found": True,
        }
        assert await contact(nc, "nobody") == {
            "clinician_ref": "nobody",
            "contact_email": None,
            "found": False,
        }
        bad = json.loads((await nc.request(CONTACT_SUBJECT, b'{"ref": 1}', timeout=10)).data)
        assert bad["found"] is False and "clinician_ref" in bad["error"]

        # Erasure of the email keeps the record; the RPC then has nothing to give; with
        # --from-stream the stored enrolment event is replaced by a redacted copy, which the
        # running service takes as the same enrolment (no state change, no dead letter).
        code = await erase_command(
            argparse.Namespace(clinician_ref=ref, record=False, from_stream=True), settings
        )
        out = capsys.readouterr().out
        assert code == 0 and "contact email removed" in out
        assert "1 enrolment event(s) carrying the email replaced" in out
        assert await contact(nc, ref) == {
            "clinician_ref": ref,
            "contact_email": None,
            "found": True,
        }
        stored_enrolments = await stream_events(js, "clinician.enrolled")
        assert len(stored_enrolments) == 1 and EMAIL not in json.dumps(stored_enrolments)
        assert stored_enrolments[0]["data"]["clinician_ref"] == ref
        await wait_for(lambda: consumer_idle(js), 60, "the redacted copy acknowledged")
        async with httpx.AsyncClient(base_url=base, headers=SERVICE_AUTH) as http:
            assert (await http.get(f"/v1/clinicians/{ref}")).json() == state

    assert len(completed) == 1
    [event] = completed
    assert event["_msg_id"] == platform_msg_id(event) and event["id"] == str(
        derived_event_id(ID_KEY, ref, "1", "clinician.training_completed")
    )
    assert (event["trustcode"], event["sitecode"]) == ("RTH", "RTH02")
    assert event["source"] == "/services/enrolment"
    assert datetime.fromisoformat(event["time"]) == at(60 + len(MODULES) - 1)
    # The completion date the delivery surveys are timed from travels in the contract.
    done_at = event["data"].pop("completed_at")
    assert datetime.fromisoformat(done_at.replace("Z", "+00:00")) == at(60 + len(MODULES) - 1)
    assert event["data"] == {"clinician_ref": ref, "course_version": "1"}
    started = await stream_events(js, "clinician.training_started")
    assert len(started) == 1 and datetime.fromisoformat(started[0]["time"]) == at(55)

    assert state["status"] == "completed" and state["enrolment"]["sitecode"] == "RTH02"
    assert [m["module_id"] for m in state["modules"]] == MODULES
    assert state["intention"]["confidence"] == 8
    assert EMAIL not in json.dumps(state)
    doc = await clinician_doc(settings, ref)
    # What the record's outbox still holds is published (its next write drops it).
    in_stream = {e["id"] for e in [*completed, *started]}
    assert doc is not None and {o["id"] for o in doc.get("outbox", [])} <= in_stream
    assert len(doc["facts"]) == len(MODULES) + 3  # the resent copy is one fact
    assert EMAIL not in json.dumps(doc, default=str)  # erased
    assert await dead_letters(js) == []

    code = await erase_command(
        argparse.Namespace(clinician_ref=ref, record=True, from_stream=False), settings
    )
    out = capsys.readouterr().out
    assert code == 0 and "Record removed" in out and "IBEST_EVENTS" in out
    assert await clinician_doc(settings, ref) is None


async def test_erasure_from_stream_deletes_dead_lettered_enrolments_with_the_email(
    settings: Settings,
    js: JetStreamContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An invalid enrolment (dead-lettered, bytes as sent) and an unreadable one both carry
    the email; erasure from the stream leaves no copy of it in either stream."""
    ref, other = "clin-dl1", "clin-dl2"
    invalid = enrolled(ref, profession="astronaut", contact_email=EMAIL)
    unreadable = (
        b'{"data": {"clinician_ref": "'
        + ref.encode()
        + b'", "contact_email": "'
        + EMAIL.encode()
        + b'"'
    )
    kept = enrolled(other, profession="astronaut", contact_email="someone.else@nhs.net")
    await publish_raw(js, invalid)
    await publish_raw(js, unreadable, subject="ibest.v1.RTH.clinician.enrolled", msg_id="u-1")
    await publish_raw(js, kept)
    async with running_service(build_spec(), settings):
        letters = await wait_for(lambda: _at_least(dead_letters(js), 3), 60, "three dead letters")
        assert sum(EMAIL.encode() in letter.data for letter in letters) == 2

        code = await erase_command(
            argparse.Namespace(clinician_ref=ref, record=False, from_stream=True), settings
        )
        out = capsys.readouterr().out
        assert code == 1 and "No clinician 'clin-dl1'" in out  # never applied: no record
        assert "1 enrolment event(s) carrying the email replaced" in out
        assert "1 unreadable enrolment event(s) naming it deleted" in out
        assert "Dead letters: 2 of its enrolments carrying the email deleted" in out
        # The redacted copy of the invalid enrolment is still invalid: dead-lettered again,
        # now without the email. The other clinician's dead letter is untouched.
        after = await wait_for(lambda: _at_least(dead_letters(js), 2), 60, "the copy dead-lettered")
    assert len(after) == 2 and not any(EMAIL.encode() in letter.data for letter in after)
    assert any(b"someone.else@nhs.net" in letter.data for letter in after)
    assert EMAIL not in json.dumps(await stream_events(js, "clinician.enrolled"))


async def test_invalid_module_and_course_version_are_dead_lettered_with_reasons(
    settings: Settings, js: JetStreamContext
) -> None:
    ref = "clin-bad"
    await publish_raw(js, enrolled(ref, 0))
    await publish_raw(js, module(ref, "completed", "m42-made-up", 5))
    await publish_raw(js, enrolled("clin-v9", 0, course_version="9"))
    await publish_raw(js, module(ref, "started", MODULES[1], 6))
    async with running_service(build_spec(), settings):
        letters = await wait_for(lambda: _at_least(dead_letters(js), 2), 60, "two dead letters")
        doc = await wait_for(lambda: clinician_doc(settings, ref), 30, "the clinician stored")
        await wait_for(lambda: consumer_idle(js), 60, "every event acknowledged")
    by_ref = {json.loads(dl.data)["data"]["clinician_ref"]: dl for dl in letters}
    assert by_ref[ref].reason == "invalid" and by_ref[ref].consumer == "enrolment"
    assert "data.module_id" in by_ref[ref].error and "m42-made-up" in by_ref[ref].error
    assert "data.course_version" in by_ref["clin-v9"].error
    assert doc is not None and doc["state"]["status"] == "started"
    assert await clinician_doc(settings, "clin-v9") is None


async def _at_least(letters: Any, n: int) -> Any:
    found = await letters
    return found if len(found) >= n else None


@pytest.mark.slow
async def test_crash_between_store_and_publish_publishes_once_after_restart(
    settings: Settings, js: JetStreamContext
) -> None:
    ref = "clin-crash"
    await publish_raw(js, enrolled(ref, 0))
    for i, m in enumerate(MODULES):
        await publish_raw(js, module(ref, "completed", m, 10 + i))
    links: list[FakePublisher] = []

    def crashing(inner: Publisher) -> Publisher:
        """A link that fails (as if the process died) after storing."""
        links.append(FakePublisher(forward_to=inner))
        links[-1].down = True
        return links[-1]

    # Retry for as long as the link is down; a message fetched but never handled before the
    # stop comes back after ack_wait, as after a real crash (kept short for the test).
    patient = settings.model_copy(update={"max_deliveries": 1000, "ack_wait": 3.0})
    async with running_service(build_spec(wrap_publisher=crashing), patient):
        doc = await wait_for(
            lambda: _with_outbox(settings, ref, 2), 60, "state and both derived events stored"
        )
    assert doc is not None and links[0].failed >= 1
    assert doc["state"]["status"] == "completed"
    assert await stream_events(js, "clinician.training_completed") == []
    assert await _pending(settings) == [(ref, [o["id"] for o in doc["outbox"]])]

    # Restart with a working link: redelivery and the outbox loop both re-publish.
    own = EnrolmentSettings(IBEST_ENROLMENT_OUTBOX_INTERVAL=0.2)
    async with running_service(build_spec(own), patient):
        await wait_for(lambda: _published(js, 2), 60, "both derived events published")
        await wait_for(lambda: consumer_idle(js), 60, "every event acknowledged")
    completed = await stream_events(js, "clinician.training_completed")
    started = await stream_events(js, "clinician.training_started")
    assert [e["id"] for e in completed] == [doc["outbox"][1]["id"]]
    assert [e["id"] for e in started] == [doc["outbox"][0]["id"]]
    # The stored event is byte-identical to what was queued, and a re-publish is a duplicate.
    entry = read_entries(doc["outbox"])[1]  # as stored: its body compressed
    stored = {k: v for k, v in completed[0].items() if not k.startswith("_")}
    assert json.loads(entry.body) == stored
    assert (
        await publish_raw(
            js,
            entry.body.encode(),
            subject="ibest.v1.RTH.clinician.training_completed",
            msg_id=platform_msg_id(stored),
        )
        is False
    )
    assert await dead_letters(js) == []


async def _pending(settings: Settings) -> list[tuple[str, list[str]]]:
    """What the re-publish loop finds: the outboxes a crash left behind."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_url)
    try:
        repository = MongoClinicianRepository(client[settings.database_of("enrolment")])
        return [(r, [o.id for o in entries]) for r, entries in await repository.outbox.pending(500)]
    finally:
        await client.close()


async def _published(js: JetStreamContext, n: int) -> bool:
    """Whether the stream holds `n` derived training events."""
    started = await stream_events(js, "clinician.training_started")
    return len(started) + len(await stream_events(js, "clinician.training_completed")) >= n


async def _with_outbox(settings: Settings, ref: str, n: int) -> dict[str, Any] | None:
    doc = await clinician_doc(settings, ref)
    return doc if doc is not None and len(doc.get("outbox", [])) == n else None


async def test_courses_are_served_for_integrators(settings: Settings) -> None:
    async with (
        running_service(build_spec(), settings) as base,
        httpx.AsyncClient(base_url=base, headers=SERVICE_AUTH) as http,
    ):
        response = await http.get("/v1/courses")
    assert response.status_code == 200
    [course] = response.json()["courses"]
    assert course["course_version"] == "1"
    assert course["required_modules"] == MODULES
    assert course["modules"][0] == {
        "module_id": "m01-understanding-back-pain",
        "title": "Understanding persistent non-specific low back pain",
    }
