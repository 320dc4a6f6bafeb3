"""Dead letters say which event (id, type, trust), who rejected it and whether the whole
platform did; one rejected event is one row; the consumer logs and counts the real type."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
from typing import Any

import pytest
from nats.js import JetStreamContext
from prometheus_client import REGISTRY

from ibest.backbone.consumer import handlers
from ibest.backbone.deadletters import (
    H_EVENT_ID,
    H_TRUST,
    H_TYPE,
    DeadLetter,
    group_dead_letters,
    list_dead_letters,
)
from ibest.backbone.runtime import ServiceContext, ServiceSpec, Wiring
from ibest.backbone.settings import Settings
from ibest.backbone.streams import EVENTS_STREAM, consumer_config, ensure_consumer
from ibest.cli import deadletters_list, deadletters_replay
from shared.envelope import AnyEvent, ContractError
from tests.harness import cloud_event, publish_raw, running_service, wait_for

# The real consumers of clinician.enrolled, so the CLI's verdict is the platform's.
CONSUMERS = ("enrolment", "notifications", "reporting")
ENROLLED = {"clinician_ref": "c-secret-ref", "profession": "nurse", "course_version": "1"}


def probe(name: str, applied: list[str]) -> ServiceSpec:
    """A stand-in consumer of clinician.enrolled under a real service's name; enrolment's
    refuses one made-up clinician, as a service's own rule would."""

    async def wire(ctx: ServiceContext) -> Wiring:
        async def on_enrolled(event: AnyEvent) -> None:
            if name == "enrolment" and event.data.clinician_ref == "c-only-enrolment":
                raise ContractError.one("data.clinician_ref", "is refused by this probe alone")
            applied.append(event.data.clinician_ref)

        async def apply(events: list[AnyEvent]) -> None:  # one event: a batch of one
            for event in events:
                await on_enrolled(event)

        return Wiring(handlers=handlers(["clinician.enrolled"], apply))

    return ServiceSpec(name, ["clinician.enrolled"], wire)


async def letters_at_least(js: JetStreamContext, n: int) -> list[DeadLetter] | None:
    found = await list_dead_letters(js)
    return found if len(found) >= n else None


def consumed(service: str, kind: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "ibest_events_consumed_total",
            {"service": service, "type": kind, "outcome": "dead_lettered"},
        )
        or 0.0
    )


def cli_args(**kw: Any) -> argparse.Namespace:
    base = {
        "consumer": None,
        "limit": 1000,
        "json": True,
        "trust": None,
        "event_id": None,
        "seq": None,
        "all": False,
    }
    return argparse.Namespace(**{**base, **kw})


async def test_one_row_per_rejected_event_naming_every_consumer(
    settings: Settings,
    js: JetStreamContext,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    unknown_course = cloud_event("clinician.enrolled", {**ENROLLED, "course_version": "97"})
    other_trust = cloud_event(
        "clinician.enrolled", {**ENROLLED, "profession": "astronaut"}, trust="RNU", site="RNU02"
    )
    only_one = cloud_event("clinician.enrolled", {**ENROLLED, "clinician_ref": "c-only-enrolment"})
    good = cloud_event("clinician.enrolled", {**ENROLLED, "clinician_ref": "c-good"})
    for e in (unknown_course, other_trust, only_one, good):
        await publish_raw(js, e)
    await publish_raw(js, b"{not json", subject="ibest.v1.RTH.clinician.enrolled", msg_id="x1")
    before = consumed("reporting", "clinician.enrolled")
    applied: dict[str, list[str]] = {c: [] for c in CONSUMERS}
    caplog.set_level(logging.WARNING, logger="ibest.backbone.consumer")
    for c in CONSUMERS:  # the operator's declaration for these probes
        await ensure_consumer(
            js, EVENTS_STREAM, consumer_config(c, ["clinician.enrolled"], settings)
        )
    async with contextlib.AsyncExitStack() as stack:
        for c in CONSUMERS:
            await stack.enter_async_context(running_service(probe(c, applied[c]), settings))
        found = await wait_for(lambda: letters_at_least(js, 10), 30, "ten dead letters")
    letters = found or []

    # Every consumer's letter carries the event's id, type and trust beside the reason.
    for letter in letters:
        assert letter.headers[H_TYPE] == "clinician.enrolled"
    course_letters = [d for d in letters if d.event_id == unknown_course["id"]]
    assert sorted(d.consumer for d in course_letters) == sorted(CONSUMERS)
    assert {d.headers[H_TRUST] for d in course_letters} == {"RTH"}
    assert {d.headers[H_EVENT_ID] for d in course_letters} == {unknown_course["id"]}
    assert all(
        "data.course_version: '97' is not a course version" in d.error for d in course_letters
    )
    unreadable = [d for d in letters if d.data == b"{not json"]
    assert {(d.event_id, d.trust, d.event_type) for d in unreadable} == {
        ("", "RTH", "clinician.enrolled")
    }

    # Grouped by the event's stream sequence: one row each, with the platform's verdict.
    rejected = group_dead_letters(letters)
    assert len(rejected) == 4
    await deadletters_list(cli_args(), settings)
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 4
    by_id = {r["event_id"]: r for r in rows}
    assert by_id[unknown_course["id"]]["consumers"] == sorted(CONSUMERS)
    assert by_id[unknown_course["id"]]["verdict"].startswith("rejected by the platform")
    assert by_id[only_one["id"]]["verdict"] == (
        "rejected by enrolment only; not by notifications, reporting"
    )
    assert by_id[""]["verdict"].startswith("rejected by the platform")

    # Filters by consumer (rows still name every consumer), trust and event id.
    await deadletters_list(cli_args(consumer="enrolment"), settings)
    assert len(json.loads(capsys.readouterr().out)) == 4
    await deadletters_list(cli_args(consumer="reporting"), settings)
    only_reporting = json.loads(capsys.readouterr().out)
    assert len(only_reporting) == 3
    assert all(r["consumers"] == sorted(CONSUMERS) for r in only_reporting)
    await deadletters_list(cli_args(trust="RNU"), settings)
    [rnu] = json.loads(capsys.readouterr().out)
    assert rnu["event_id"] == other_trust["id"] and rnu["trust"] == "RNU"
    await deadletters_list(cli_args(event_id=unknown_course["id"], json=False), settings)
    text = capsys.readouterr().out
    assert text.count("event seq") == 1
    assert f"id={unknown_course['id']}" in text and "rejected by the platform" in text

    # Logged and counted under the real type, with id and subject, never the reference.
    assert consumed("reporting", "clinician.enrolled") - before == 3  # not only_one
    logged = caplog.text
    assert (
        f"clinician.enrolled id={unknown_course['id']} trust=RTH "
        "subject=ibest.v1.RTH.clinician.enrolled" in logged
    )
    assert "dead-lettering unknown" not in logged
    assert "c-secret-ref" not in logged and "c-only-enrolment" not in logged

    # Replaying a grouped event publishes it once and removes every letter of it.
    stored_before = (await js.stream_info(EVENTS_STREAM)).state.messages
    seq = by_id[unknown_course["id"]]["seqs"][1]
    assert await deadletters_replay(cli_args(seq=[seq]), settings) == 0
    assert (await js.stream_info(EVENTS_STREAM)).state.messages == stored_before + 1
    remaining = group_dead_letters(await list_dead_letters(js))
    assert len(remaining) == 3
    assert unknown_course["id"] not in {r.first.event_id for r in remaining}
    assert applied == {
        "enrolment": ["c-good"],
        "notifications": ["c-only-enrolment", "c-good"],
        "reporting": ["c-only-enrolment", "c-good"],
    }
