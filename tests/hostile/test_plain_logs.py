"""A service's log, as operators read it: plain lines, no colour codes, no framework chatter
at INFO; a rejected event named by type, id, trust and subject (never by its references),
and counted under its real type."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from nats.js import JetStreamContext
from prometheus_client.parser import text_string_to_metric_families

from ibest.backbone.settings import Settings
from tests.faults.stack import Processes, consumer_idle
from tests.harness import cloud_event, dead_letters, publish_raw, wait_for

LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) "
    r"[\w.]+: "
)


@pytest.mark.slow
async def test_outcomes_logs_plain_lines_naming_each_rejection(
    settings: Settings,
    js: JetStreamContext,
    procs: Processes,
    tmp_path: Path,
) -> None:
    broken = cloud_event(
        "patient.assessed",
        {"patient_ref": "pt-secret-4471", "timepoint": "baseline", "measures": {"rmdq": 99}},
    )
    nhs = cloud_event(
        "patient.assessed",
        {"patient_ref": "943.476.5919", "timepoint": "baseline", "measures": {"rmdq": 9}},
    )
    good = cloud_event(
        "patient.assessed",
        {"patient_ref": "pt-fine-0001", "timepoint": "baseline", "measures": {"rmdq": 9}},
    )
    for event in (broken, nhs, good):
        await publish_raw(js, event)
    svc = procs.service("outcomes", settings, tmp_path).start()
    await wait_for(lambda: consumer_idle(js, "outcomes"), 30, "outcomes caught up")
    letters = await dead_letters(js, "outcomes")
    assert sorted(d.event_id for d in letters) == sorted([broken["id"], nhs["id"]])
    async with httpx.AsyncClient(timeout=5) as client:
        metrics = (await client.get(f"{svc.url}/metrics")).text
    svc.stop()
    logs = svc.logs()

    assert "\x1b[" not in logs
    lines = [ln for ln in logs.splitlines() if ln.strip()]
    assert lines and all(LINE.match(ln) for ln in lines), [
        ln for ln in lines if not LINE.match(ln)
    ][:5]
    noise = [ln for ln in lines if re.search(r" INFO (faststream|uvicorn|nats)", ln)]
    assert noise == []
    for event, rule in ((broken, "data.measures.rmdq"), (nhs, "data.patient_ref")):
        [line] = [ln for ln in lines if event["id"] in ln]
        assert (
            f"outcomes: dead-lettering patient.assessed id={event['id']} trust=RTH "
            "subject=ibest.v1.RTH.patient.assessed" in line
        )
        assert rule in line
    assert "pt-secret-4471" not in logs and "943.476.5919" not in logs
    assert "pt-fine-0001" not in logs

    counted = {
        (s.labels["type"], s.labels["outcome"]): s.value
        for family in text_string_to_metric_families(metrics)
        for s in family.samples
        if s.name == "ibest_events_consumed_total"
    }
    assert counted[("patient.assessed", "dead_lettered")] == 2
    assert counted[("patient.assessed", "applied")] == 1
    assert ("unknown", "dead_lettered") not in counted
