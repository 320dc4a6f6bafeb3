"""Fixtures of the notifications tests: a real SMTP server, the enrolment contact
responder on real NATS, a movable clock, and a reader of published notification events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from pymongo import AsyncMongoClient

from ibest.backbone.runtime import ServiceSpec
from ibest.backbone.settings import Settings
from services.notifications.service import build_spec
from services.notifications.settings import NotificationSettings
from tests.harness import SERVICE_AUTH
from tests.mailbox import Mailbox, smtp_server

START = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)  # Monday 10:00 in London (GMT)


class FakeClock:
    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set(self, now: datetime) -> None:
        self.now = now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server() as server:
        yield server


@dataclass
class Contacts:
    emails: dict[str, str | None] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)


@pytest.fixture
async def contacts(nc: NatsClient) -> AsyncIterator[Contacts]:
    """Answers ibest.rpc.enrolment.contact as the enrolment service does."""
    book = Contacts()

    async def respond(msg: Msg) -> None:
        ref = json.loads(msg.data)["clinician_ref"]
        book.asked.append(ref)
        email = book.emails.get(ref)
        await msg.respond(
            json.dumps(
                {"clinician_ref": ref, "contact_email": email, "found": ref in book.emails}
            ).encode()
        )

    sub = await nc.subscribe("ibest.rpc.enrolment.contact", cb=respond)
    yield book
    await sub.unsubscribe()


class Published:
    """Every notification event in the stream (an ordered consumer: no core-NATS copies)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    async def start(self, js: JetStreamContext) -> None:
        async def collect(msg: Msg) -> None:
            self.events.append(json.loads(msg.data))

        await js.subscribe(
            "ibest.v1.*.notification.>",
            cb=collect,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.ALL,
        )

    def of(self, verb: str, notification_id: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events
            if e["type"] == f"uk.nhs.ibest.notification.{verb}.v1"
            and notification_id in (None, e["data"]["notification_id"])
        ]


@pytest.fixture
async def published(js: JetStreamContext) -> Published:
    p = Published()
    await p.start(js)
    return p


@pytest.fixture
def smtp_env(mailbox: tuple[Mailbox, int]) -> Mailbox:
    """The mailbox the `service` fixture's SMTP channel sends to."""
    return mailbox[0]


@pytest.fixture
def service(mailbox: tuple[Mailbox, int]) -> ServiceSpec:
    """The notifications service with explicit settings: SMTP to the test mailbox, quick
    passes and retries, two site teams."""
    return build_spec(
        NotificationSettings(
            IBEST_NOTIFY_CHANNEL="smtp",
            IBEST_SMTP_HOST="127.0.0.1",
            IBEST_SMTP_PORT=mailbox[1],
            IBEST_NOTIFY_POLL_SECONDS=0.1,
            IBEST_NOTIFY_RETRY_BASE_SECONDS=0,
            IBEST_NOTIFY_CONTACT_TIMEOUT=0.5,
            IBEST_NOTIFY_CALLBACK_TOKEN="callback-secret",
            IBEST_SITE_TEAMS=json.dumps(
                {"RTH08": ["rth08-team@example.nhs.uk"], "RTH09": ["rth09-team@example.nhs.uk"]}
            ),
        )
    )


async def stored(settings: Settings, collection: str, doc_id: str) -> dict[str, Any] | None:
    """A document of the notifications database, read directly."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_url, tz_aware=True)
    try:
        db = client[settings.database_of("notifications")]
        return await db[collection].find_one({"_id": doc_id})
    finally:
        await client.close()


async def reminder(base: str, rid: str) -> dict[str, Any] | None:
    async with httpx.AsyncClient(base_url=base, headers=SERVICE_AUTH) as client:
        r = await client.get(f"/v1/reminders/{rid}")
        return r.json() if r.status_code == 200 else None


async def passed(base: str, clock: FakeClock) -> bool:
    """True once this instance finished a scheduler pass that began at the clock's time."""
    async with httpx.AsyncClient(base_url=base, headers=SERVICE_AUTH) as client:
        last = (await client.get("/v1/scheduler")).json()["last_pass"]
    return last is not None and datetime.fromisoformat(last) >= clock.now


async def now_true(value: Any) -> Any:
    return value


@pytest.fixture
def nsettings(settings: Settings) -> Settings:
    """Test settings with a short ack wait: at start-up FastStream's pull task can fail its
    first fetch (TimeoutError escapes to its supervisor) and leave a pull request behind
    that holds the first messages until ack_wait; 5 s instead of 30 s bounds that stall."""
    return settings.model_copy(update={"ack_wait": 5.0})
