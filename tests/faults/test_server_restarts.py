"""The servers under the platform go away and come back: nothing lost, figures exact.

- nats-server (a dedicated one with its own store, so the streams survive) is stopped and
  started again on the same port while a trust publishes and the services consume: the
  publisher retries, the services' consumers resume.
- The database server is stopped for a while and started again on the same port and
  storage: handlers fail, are retried (never dead-lettered), and catch up.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from nats.js import JetStreamContext

from ibest.backbone.settings import Settings
from ibest.backbone.streams import ensure_streams
from ibest.local.processes import free_port
from ibest.registry import consumers
from tests.faults.stack import (
    Processes,
    PublishLog,
    ServiceProcess,
    await_figures,
    connect,
    figure_between,
    publish_all,
    reporting_script,
    start_database,
    start_nats,
    stream_count,
    training_script,
    wait_port_closed,
)
from tests.harness import dead_letters, fresh_settings, wait_for

pytestmark = pytest.mark.slow  # end-to-end: `pytest -m "not slow"` skips it


async def test_nats_restart_mid_stream_publishers_retry_consumers_resume(
    mongodb_url: str, procs: Processes, tmp_path: Path
) -> None:
    port = free_port()
    store = tmp_path / "nats-store"
    server = start_nats(port, store, tmp_path / "nats-1.log")
    procs.others.append(server)
    url = f"nats://127.0.0.1:{port}"
    settings = fresh_settings(url, mongodb_url)
    nc = await connect(url)
    try:
        js = nc.jetstream()
        await ensure_streams(js, settings, consumers())
        script = training_script(clinicians=60)
        extra = reporting_script(clinicians=60, patients=40)
        expected = {**extra.expected}
        for name in ("clinicians_enrolled", "clinicians_started", "clinicians_completed"):
            expected[name] += script.expected[name]
        enrolment = procs.service("enrolment", settings, tmp_path).start()
        reporting = procs.service("reporting", settings, tmp_path).start()
        events = [e for pair in zip(script.events, extra.events, strict=False) for e in pair]
        events += script.events[len(extra.events) :] + extra.events[len(script.events) :]
        half = len(events) // 2
        await publish_all(js, events[:half])
        await figure_between(
            reporting.url, "clinicians_enrolled", 10, expected["clinicians_enrolled"]
        )
        server.stop()
        wait_port_closed(port)
        # The second half is published while the server is down: the publisher must retry.
        progress = PublishLog()
        publishing = asyncio.create_task(publish_all(js, events[half:], progress))

        async def retrying() -> bool:
            return progress.failures >= 2

        await wait_for(retrying, 30, "the publisher retrying")
        assert progress.published == 0 and not publishing.done()
        server = start_nats(port, store, tmp_path / "nats-2.log")
        procs.others.append(server)
        await asyncio.wait_for(publishing, 90)
        await await_figures(
            reporting.url,
            expected,
            60,
            "exact figures after nats-server restarted",
            enrolment,
            reporting,
        )
        assert await stream_count(js, "ibest.v1.*.clinician.training_completed") == (
            script.expected["clinicians_completed"] + extra.expected["clinicians_completed"]
        )
        assert await dead_letters(js) == []
    finally:
        await nc.close()


async def _metric(svc: ServiceProcess, name: str) -> float:
    async with httpx.AsyncClient(base_url=svc.url, timeout=5) as client:
        text = (await client.get("/metrics")).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") or line.startswith(name + " ")
    )


async def _not_ready(svc: ServiceProcess) -> bool:
    async with httpx.AsyncClient(base_url=svc.url, timeout=10) as client:
        return (await client.get("/readyz")).status_code == 503


async def test_database_outage_is_retried_not_dead_lettered_and_caught_up(
    settings: Settings, js: JetStreamContext, procs: Processes, tmp_path: Path
) -> None:
    port = free_port()
    storage = tmp_path / "db"
    db = start_database(port, storage, tmp_path / "db-1.log")
    procs.others.append(db)
    settings = settings.model_copy(
        update={"mongodb_url": f"mongodb://127.0.0.1:{port}", "max_deliveries": 10_000}
    )
    script = reporting_script(clinicians=120, patients=60)
    reporting = procs.service("reporting", settings, tmp_path).start()
    first, rest = script.events[:100], script.events[100:]
    await publish_all(js, first)
    await figure_between(reporting.url, "clinicians_enrolled", 5, 10_000)
    db.stop()
    wait_port_closed(port)
    await publish_all(js, rest)  # NATS is up: these arrive while the database is down
    await wait_for(lambda: _not_ready(reporting), 30, "reporting reports the database down")

    async def handlers_failing() -> bool:
        return await _metric(reporting, "ibest_handler_errors_total") > 0

    await wait_for(handlers_failing, 60, "handlers failing while the database is down")
    assert await _metric(reporting, "ibest_events_retried_total") > 0
    db = start_database(port, storage, tmp_path / "db-2.log")
    procs.others.append(db)
    await await_figures(
        reporting.url,
        script.expected,
        60,
        "figures caught up after the database came back",
        reporting,
    )
    assert await dead_letters(js) == []
    assert await _metric(reporting, "ibest_dead_letters_total") == 0
