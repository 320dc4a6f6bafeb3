"""SIGKILL a service in the middle of a stream of events, restart it: figures exact.

The service is killed while it works through the first half of the script (so the crash
lands mid-batch: unacknowledged messages come back after the ack wait and are applied again,
idempotently); the second half is published while it is down, so the restarted process must
resume. The expected figures are computed from the script, not from the service.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from nats.js import JetStreamContext

from ibest.backbone.settings import Settings
from tests.faults.stack import (
    Processes,
    await_figures,
    figure_between,
    publish_all,
    reporting_script,
    training_script,
)
from tests.harness import dead_letters, stream_events

pytestmark = pytest.mark.slow  # end-to-end: `pytest -m "not slow"` skips it


async def test_reporting_killed_mid_stream_counts_everything_once(
    settings: Settings, js: JetStreamContext, procs: Processes, tmp_path: Path
) -> None:
    script = reporting_script(clinicians=160, patients=80)
    reporting = procs.service("reporting", settings, tmp_path).start()
    half = len(script.events) // 2
    publishing = asyncio.create_task(publish_all(js, script.events[:half]))
    total = script.expected["clinicians_enrolled"]
    seen = await figure_between(reporting.url, "clinicians_enrolled", 20, total)
    reporting.kill()
    await publishing
    await publish_all(js, script.events[half:])  # the rest arrives while it is down
    reporting.start()
    figures = await await_figures(
        reporting.url,
        script.expected,
        60,
        f"exact figures after the crash (seen {seen} before it)",
        reporting,
    )
    assert figures["patients_month_3"] == script.expected["patients_month_3"]
    assert await dead_letters(js) == []


async def test_enrolment_killed_mid_stream_derives_each_completion_once(
    settings: Settings, js: JetStreamContext, procs: Processes, tmp_path: Path
) -> None:
    script = training_script(clinicians=90)
    enrolment = procs.service("enrolment", settings, tmp_path).start()
    reporting = procs.service("reporting", settings, tmp_path).start()
    half = len(script.events) // 2
    publishing = asyncio.create_task(publish_all(js, script.events[:half]))
    completed = script.expected["clinicians_completed"]
    await figure_between(reporting.url, "clinicians_completed", 3, completed)
    enrolment.kill()
    await publishing
    await publish_all(js, script.events[half:])  # the rest arrives while it is down
    enrolment.start()
    await await_figures(
        reporting.url,
        script.expected,
        60,
        "exact training figures after enrolment's crash",
        enrolment,
        reporting,
    )
    # Each derived event exists once in the stream (deterministic ids, deduplicated): no id
    # twice, one fact per clinician. A redelivery after the crash can bring a clinician's
    # earlier module event after a later one; enrolment then publishes a corrected start
    # (a new revision, its own id: issue 25), which is a new event, not a copy.
    for name, figure in (
        ("clinician.training_completed", "clinicians_completed"),
        ("clinician.training_started", "clinicians_started"),
    ):
        stored = await stream_events(js, name)
        assert len({e["id"] for e in stored}) == len(stored), name
        assert len({e["data"]["clinician_ref"] for e in stored}) == script.expected[figure]
        first = [e for e in stored if e["data"].get("revision") is None]
        assert len(first) == script.expected[figure], name
    assert await dead_letters(js) == []
