"""Builds the gateway from explicit settings and connections: one place, shared by the
runtime (service.py), the CLI (cli.py), the simulator and the tests."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from pymongo.asynchronous.database import AsyncDatabase

from ibest.backbone.clock import Clock, utc_now
from ibest.backbone.document import Document
from ibest.backbone.mongo import mongo_client
from ibest.backbone.settings import Settings
from services.gateway.adapters.deadletters import JetStreamDeadLetters
from services.gateway.adapters.keys import MongoKeyStore
from services.gateway.adapters.ledger import MongoIdLedger
from services.gateway.adapters.metrics import PrometheusGatewayMetrics
from services.gateway.adapters.rejections import MongoRejectionStore
from services.gateway.adapters.stream import NatsEventStream
from services.gateway.application import DeadLetterRecorder, Gateway, KeyAdmin
from services.gateway.declaration import DECLARATION
from services.gateway.domain.ratelimit import RateLimiter
from services.gateway.settings import GatewaySettings
from shared.eventtime import DEFAULT_TIME_BOUNDS, TimeBounds

NAME = DECLARATION.name


@dataclass
class GatewayParts:
    gateway: Gateway
    recorder: DeadLetterRecorder
    keys: KeyAdmin
    close: Callable[[], Awaitable[None]]


async def build(
    settings: GatewaySettings,
    db: AsyncDatabase[Document],
    nc: NatsClient,
    js: JetStreamContext,
    id_key: bytes,
    clock: Clock = utc_now,
    timer: Callable[[], float] = time.monotonic,
    bounds: TimeBounds = DEFAULT_TIME_BOUNDS,
) -> GatewayParts:
    """The running gateway over real MongoDB and NATS (indexes created here), publishing
    with the platform's `id_key` (its `Nats-Msg-Id`s)."""
    keys = MongoKeyStore(db)
    rejections = MongoRejectionStore(db, settings.rejections_retention_days)
    await keys.create_indexes()
    await rejections.create_indexes()
    gateway = Gateway(
        keys,
        rejections,
        NatsEventStream(nc, js, settings.publish_timeout, id_key),
        RateLimiter(settings.rate_per_second, settings.rate_burst, timer),
        PrometheusGatewayMetrics(),
        clock,
        timer,
        settings.retry_after_unavailable,
        key_cache_seconds=settings.key_cache_seconds,
        address_limiter=RateLimiter(
            settings.address_rate_per_second, settings.address_burst, timer
        ),
        proxies=settings.proxies(),
        ledger=MongoIdLedger(db),
        bounds=bounds,
    )
    dead_letters = JetStreamDeadLetters(js)
    return GatewayParts(
        gateway,
        DeadLetterRecorder(dead_letters, rejections),
        KeyAdmin(keys, clock),
        dead_letters.close,
    )


@asynccontextmanager
async def key_admin(settings: Settings) -> AsyncIterator[KeyAdmin]:
    """Key management over the gateway's database alone (the CLI, the simulator, tests)."""
    client = mongo_client(settings)
    try:
        keys = MongoKeyStore(client[settings.database_of(NAME)])
        await keys.create_indexes()
        yield KeyAdmin(keys, utc_now)
    finally:
        await client.close()
