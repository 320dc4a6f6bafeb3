"""One way to run a service: FastStream consuming, FastAPI serving health, metrics and API.

A service declares a `ServiceSpec` (its name, the events it consumes and a `wire`
function that builds its handlers once the database and NATS are connected). `create_app`
turns that into an ASGI app; uvicorn runs it and, on SIGTERM, the lifespan stops the
broker first (in-flight messages finish and are acknowledged, undelivered ones stay in
the stream), then background tasks, then closes the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import nats
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import PlainTextResponse
from faststream import AckPolicy, Context
from faststream.nats import JStream, NatsBroker, PullSub
from faststream.nats.message import NatsBatchMessage
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from ibest.backbone import compat
from ibest.backbone.consumer import (
    BatchHandler,
    ConsumerPolicy,
    EventConsumer,
    EventLedger,
    Handler,
)
from ibest.backbone.publisher import EventPublisher
from ibest.backbone.settings import Settings
from ibest.backbone.streams import EVENTS_STREAM
from shared.envelope import BY_NAME

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
Document = dict[str, Any]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ServiceContext:
    """What a service's wiring gets: connections, a publisher and a clock."""

    name: str
    settings: Settings
    db: AsyncDatabase[Document]
    nats: NatsClient
    js: JetStreamContext
    publisher: EventPublisher
    clock: Clock = utc_now


@dataclass
class Wiring:
    """What a service contributes: handlers by event name, the object its HTTP routes use
    (`request.app.state.service`), background loops and clean-up."""

    handlers: Mapping[str, Handler]
    api: Any = None
    background: Sequence[Callable[[], Awaitable[None]]] = ()
    on_stop: Sequence[Callable[[], Awaitable[None]]] = ()
    batch_handler: BatchHandler | None = None
    """Optional: applies a whole delivered batch with bulk writes (see consumer.BatchHandler)."""


@dataclass
class ServiceSpec:
    name: str
    consumes: Sequence[str]
    wire: Callable[[ServiceContext], Awaitable[Wiring]]
    publishes: Sequence[str] = ()
    title: str = ""
    description: str = ""
    routes: Callable[[], APIRouter] | None = None


def inbox_prefix(service: str) -> str:
    """Replies to a service go to its own inboxes, so NATS permissions can keep every other
    user from reading them (contact emails travel as replies to notifications)."""
    return f"_INBOX_{service}"


def filter_subjects(consumes: Sequence[str]) -> list[str]:
    """Server-side filters of a consumer: one per event name, any trust."""
    unknown = [n for n in consumes if n not in BY_NAME]
    if unknown:
        raise ValueError(f"unknown event names: {unknown}")
    return [f"ibest.v1.*.{name}" for name in consumes]


def consumer_config(name: str, consumes: Sequence[str], settings: Settings) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=name,
        description=f"{name} service",
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=settings.ack_wait,
        max_deliver=-1,  # the consumer policy bounds retries and dead-letters itself
        max_ack_pending=max(1000, settings.batch_size * 4),
        filter_subjects=filter_subjects(consumes),
    )


def create_app(
    spec: ServiceSpec, settings: Settings | None = None, clock: Clock = utc_now
) -> FastAPI:
    """Build the service's ASGI app; nothing connects until the app starts."""
    settings = settings or Settings()
    compat.apply()
    # Per-batch access lines go to DEBUG: our consumer logs what matters (dead letters, retries).
    # Our own logger, so FastStream adds no handler of its own (colour codes, its format).
    broker = NatsBroker(settings.nats_servers, name=f"ibest-{spec.name}", graceful_timeout=30,
                        logger=logging.getLogger("ibest.broker"), log_level=logging.DEBUG,
                        inbox_prefix=inbox_prefix(spec.name))
    state: dict[str, Any] = {}

    @broker.subscriber(
        # A service that consumes no events (the gateway) never starts the broker.
        filter_subjects(spec.consumes)[0] if spec.consumes else "ibest.none",
        stream=JStream(EVENTS_STREAM, declare=False),
        durable=spec.name,
        pull_sub=PullSub(batch_size=settings.batch_size, batch=True,
                         timeout=settings.fetch_timeout),
        ack_policy=AckPolicy.MANUAL,
        config=consumer_config(spec.name, spec.consumes, settings),
        inbox_prefix=f"{inbox_prefix(spec.name)}.".encode(),
        title=f"{spec.name}:events",
        description=f"Consumes {', '.join(spec.consumes)} from every trust.",
    )
    async def on_events(message: NatsBatchMessage = Context("message")) -> None:  # noqa: B008
        await state["consumer"].process_batch(list(message.raw_message))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        mongo: AsyncMongoClient[Document] = AsyncMongoClient(
            settings.mongodb_url, tz_aware=True, serverSelectionTimeoutMS=5000
        )
        nc = await nats.connect(settings.nats_servers, name=f"ibest-{spec.name}-admin",
                                max_reconnect_attempts=-1,
                                inbox_prefix=inbox_prefix(spec.name).encode())
        js = nc.jetstream()
        db = mongo[settings.database_of(spec.name)]
        ctx = ServiceContext(spec.name, settings, db, nc, js,
                             EventPublisher(js, spec.name), clock)
        wiring = await spec.wire(ctx)
        state["consumer"] = EventConsumer(
            spec.name, wiring.handlers, js, EventLedger(db),
            ConsumerPolicy(settings.max_deliveries, settings.retry_backoff_max),
            wiring.batch_handler,
        )
        app.state.ctx = ctx
        app.state.mongo = mongo
        app.state.service = wiring.api
        if spec.consumes:
            await broker.start()
        tasks = [asyncio.create_task(_forever(spec.name, job)) for job in wiring.background]
        log.info("%s service started", spec.name)
        try:
            yield
        finally:
            if spec.consumes:
                await broker.stop()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for stop in wiring.on_stop:
                await stop()
            await nc.drain()
            await mongo.close()
            log.info("%s service stopped cleanly", spec.name)

    app = FastAPI(title=spec.title or f"iBeST {spec.name} service",
                  description=spec.description, lifespan=lifespan)
    app.state.broker = broker
    if spec.routes is not None:
        app.include_router(spec.routes())
    app.include_router(health_router(spec.name))
    return app


async def _forever(name: str, job: Callable[[], Awaitable[None]]) -> None:
    """Run a background loop; log and restart it if it fails, so one bad pass is not fatal."""
    while True:
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: background task failed; restarting in 5s", name)
            await asyncio.sleep(5)
        else:
            return


def health_router(name: str) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness: the process is serving")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": name}

    @router.get("/readyz", summary="Readiness: NATS and MongoDB are reachable",
                responses={503: {"description": "Not ready: a dependency does not answer"}})
    async def readyz(request: Request, response: Response) -> dict[str, Any]:
        checks = await readiness(request.app.state)
        ok = all(checks.values())
        response.status_code = 200 if ok else 503
        return {"status": "ready" if ok else "not ready", "service": name, "checks": checks}

    @router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse,
                responses={200: {"description": "Prometheus text exposition format",
                                 "content": {"text/plain": {"schema": {"type": "string"}}}}})
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


async def readiness(app_state: Any) -> dict[str, bool]:
    """Which dependencies answer now; a service is ready only when all do."""
    checks = {"nats": False, "mongodb": False}
    ctx: ServiceContext | None = getattr(app_state, "ctx", None)
    if ctx is None:
        return checks
    checks["nats"] = ctx.nats.is_connected
    try:
        await asyncio.wait_for(ctx.db.command("ping"), timeout=2)
        checks["mongodb"] = True
    except Exception:
        checks["mongodb"] = False
    return checks
