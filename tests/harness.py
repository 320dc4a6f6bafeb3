"""Helpers the integration tests share: run a service for real, wait on conditions.

Everything here talks to real servers: the nats-server and MongoDB-wire server the session
fixtures start (or those NATS_URL / MONGODB_URL point at).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import uvicorn
from fastapi import FastAPI
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from prometheus_client.parser import text_string_to_metric_families
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from ibest.backbone.clock import Clock, utc_now
from ibest.backbone.deadletters import DeadLetter, list_dead_letters
from ibest.backbone.publisher import stream_msg_id
from ibest.backbone.runtime import ServiceSpec, create_app
from ibest.backbone.serve import SERVER_OPTIONS
from ibest.backbone.settings import Settings
from ibest.backbone.streams import EVENTS_STREAM
from ibest.local.processes import free_port

T = TypeVar("T")
ID_KEY = b"tests-platform-id-key-4f1c9a7e0b"
"""The platform's id key in tests (IBEST_PLATFORM_ID_KEY_FILE holds it: tests/conftest.py)."""
SERVICE_TOKEN = "tests-service-token"


def platform_msg_id(event: dict[str, Any]) -> str:
    """The Nats-Msg-Id the platform's publishers set on `event` (a stored event's dict)."""
    return stream_msg_id(ID_KEY, str(event["trustcode"]), str(event["id"]))


SERVICE_TOKEN_ID = "tests"
SERVICE_AUTH = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
"""The service token every test's services accept (tests/conftest.py sets it)."""


async def wait_for(
    check: Callable[[], Awaitable[T | None]], timeout: float = 20, what: str = "condition"
) -> T:
    """Await `check()` until it returns something truthy; fail after `timeout` seconds.

    A falsy answer (None included) is never returned, so a check typed `X | None` yields `X`.
    """
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


@asynccontextmanager
async def scratch_database(mongodb_url: str, suffix: str) -> AsyncIterator[AsyncDatabase[Any]]:
    """A database of its own for one test on the suite's real server (`t<random>_<suffix>`),
    dropped afterwards: what the contract tests run a port's real adapter on."""
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongodb_url, tz_aware=True)
    name = f"t{uuid.uuid4().hex[:10]}_{suffix}"
    try:
        yield client[name]
    finally:
        await client.drop_database(name)
        await client.close()


@asynccontextmanager
async def running_service(
    spec: ServiceSpec,
    settings: Settings,
    clock: Clock = utc_now,
    apps: list[FastAPI] | None = None,
) -> AsyncIterator[str]:
    """Serve `spec` in-process over real HTTP on a free port; yields its base URL (and
    appends the app to `apps`, for tests that inspect its state)."""
    port = free_port()
    settings = settings.model_copy(update={"ports": {**settings.ports, spec.name: port}})
    app = create_app(spec, settings, clock)
    if apps is not None:
        apps.append(app)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            **SERVER_OPTIONS,
        )
    )
    task = asyncio.create_task(server.serve())
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base) as client:

        async def ready() -> bool:
            if task.done():
                task.result()
            try:
                return (await client.get("/readyz")).status_code == 200
            except httpx.TransportError:
                return False

        await wait_for(ready, 30, f"{spec.name} ready")
    try:
        yield base
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 60)


def cloud_event(
    name: str,
    data: dict[str, Any],
    *,
    trust: str = "RTH",
    site: str = "RTH08",
    time: datetime | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """A raw CloudEvent as a trust's system would write it (plain dict, not our models)."""
    return {
        "specversion": "1.0",
        "id": event_id or str(uuid.uuid4()),
        "source": f"/trusts/{trust}/test",
        "type": f"uk.nhs.ibest.{name}.v1",
        "time": (time or datetime.now(UTC)).isoformat(),
        "datacontenttype": "application/json",
        "trustcode": trust,
        "sitecode": site,
        "data": data,
    }


async def publish_raw(
    js: JetStreamContext,
    event: dict[str, Any] | bytes,
    subject: str | None = None,
    msg_id: str | None = None,
) -> bool:
    """Publish like an integrator with plain nats-py; True when stored, False if duplicate."""
    if isinstance(event, dict):
        body = json.dumps(event).encode()
        subject = subject or f"ibest.v1.{event['trustcode']}.{event['type'][13:-3]}"
        msg_id = msg_id or event["id"]
    else:
        body = event
    assert subject is not None
    headers = {"Nats-Msg-Id": msg_id} if msg_id else None
    ack = await js.publish(subject, body, headers=headers)
    return not ack.duplicate


async def stream_events(js: JetStreamContext, name: str) -> list[dict[str, Any]]:
    """Every stored event `name` (e.g. "outcome.recorded"), read with a plain ephemeral
    consumer, each with its `_msg_id` header and `_subject` added."""
    if (await js.stream_info(EVENTS_STREAM)).state.messages == 0:
        return []
    sub = await js.pull_subscribe(
        f"ibest.v1.*.{name}",
        stream=EVENTS_STREAM,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, inactive_threshold=30),
    )
    out: list[dict[str, Any]] = []
    try:
        while True:
            try:
                msgs = await sub.fetch(100, timeout=0.5)
            except TimeoutError:
                break
            for m in msgs:
                out.append(
                    {
                        **json.loads(m.data),
                        "_subject": m.subject,
                        "_msg_id": (m.headers or {}).get("Nats-Msg-Id"),
                    }
                )
                await m.ack()
            if msgs[-1].metadata.num_pending == 0:
                break
    finally:
        await sub.unsubscribe()
    return out


async def dead_letters(js: JetStreamContext, consumer: str | None = None) -> list[DeadLetter]:
    return await list_dead_letters(js, consumer)


def fresh_settings(nats_url: str, mongodb_url: str) -> Settings:
    """Settings for one test: its own database prefix, quick retries."""
    return Settings(
        NATS_URL=nats_url,
        MONGODB_URL=mongodb_url,
        IBEST_DB_PREFIX=f"t{uuid.uuid4().hex[:10]}",
        IBEST_FETCH_TIMEOUT=0.2,
        IBEST_RETRY_BACKOFF_MAX=1.0,
        IBEST_MAX_DELIVERIES=5,
    )


def metric_samples(metrics_text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """A /metrics text's samples of `name`: each one's labels and value."""
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
        if sample.name == name
    ]
