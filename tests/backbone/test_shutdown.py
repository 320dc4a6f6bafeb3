"""SIGTERM while events are in flight: nothing lost, nothing applied twice."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from nats.js import JetStreamContext
from pymongo import AsyncMongoClient

from ibest.backbone.settings import Settings
from ibest.backbone.streams import EVENTS_STREAM, consumer_config, ensure_consumer
from ibest.local.processes import Managed, free_port, wait_until
from tests.harness import cloud_event, publish_raw, wait_for

N = 300


def probe_process(settings: Settings, port: int, log: Path) -> Managed:
    env = {
        "NATS_URL": settings.nats_url,
        "MONGODB_URL": settings.mongodb_url,
        "IBEST_DB_PREFIX": settings.db_prefix,
        "IBEST_ENROLMENT_PORT": str(port),
        "IBEST_BATCH_SIZE": "20",
        "IBEST_FETCH_TIMEOUT": "0.2",
        "PROBE_DELAY": "0.01",
    }
    proc = Managed(
        "probe",
        [sys.executable, "-m", "tests.backbone.probe_service"],
        log,
        env={**os.environ, **env},
    ).start()

    def ready() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, 60, "probe service", proc.proc)
    return proc


@pytest.mark.slow
async def test_sigterm_mid_stream_loses_nothing_and_applies_nothing_twice(
    settings: Settings, js: JetStreamContext, tmp_path: Path
) -> None:
    # The probe runs as "enrolment" consuming enrolments only: the operator's declaration.
    await ensure_consumer(
        js, EVENTS_STREAM, consumer_config("enrolment", ["clinician.enrolled"], settings)
    )
    for i in range(N):
        await publish_raw(
            js,
            cloud_event(
                "clinician.enrolled",
                {"clinician_ref": f"c-{i}", "profession": "nurse", "course_version": "1"},
            ),
        )
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_url)
    calls = client[settings.database_of("enrolment")]["calls"]
    port = free_port()
    first = probe_process(settings, port, tmp_path / "probe1.log")

    async def some_applied() -> bool:
        return await calls.count_documents({}) >= 40

    await wait_for(some_applied, 60, "the first events applied")
    # SIGTERM: uvicorn shuts down gracefully, then re-raises the signal (exit -15).
    assert first.stop(timeout=60) in (0, -15), first.tail()
    assert "enrolment service stopped cleanly" in first.tail(400)
    stopped_at = await calls.count_documents({})
    assert stopped_at < N, "the run must be stopped mid-stream for this test to mean anything"

    second = probe_process(settings, port, tmp_path / "probe2.log")
    try:

        async def all_applied() -> bool:
            return await calls.count_documents({}) == N

        await wait_for(all_applied, 90, "every event applied after restart")
    finally:
        second.stop()
    twice = await calls.count_documents({"n": {"$gt": 1}})
    await client.close()
    assert twice == 0, f"{twice} events were applied twice across a graceful shutdown"
