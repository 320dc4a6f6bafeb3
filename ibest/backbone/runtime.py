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
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import PlainTextResponse
from faststream import AckPolicy, Context
from faststream.nats import JStream, NatsBroker, NatsSecurity, NatsUserPassword, PullSub
from faststream.nats.message import NatsBatchMessage
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pymongo.asynchronous.database import AsyncDatabase

from ibest.backbone import compat
from ibest.backbone.clock import Clock, utc_now
from ibest.backbone.connect import connect_nats
from ibest.backbone.consumer import ConsumerPolicy, EventConsumer, Handlers, handlers
from ibest.backbone.declaration import ServiceDeclaration
from ibest.backbone.document import Document
from ibest.backbone.ledger import EventLedger
from ibest.backbone.metrics import TRUST_SHARE_USED
from ibest.backbone.mongo import mongo_client
from ibest.backbone.periodic import every
from ibest.backbone.problems import install as install_problem_details
from ibest.backbone.publisher import EventPublisher
from ibest.backbone.settings import Settings, inbox_prefix
from ibest.backbone.streams import (
    EVENTS_STREAM,
    consumer_config,
    filter_subjects,
    trust_share_used,
)
from shared.envelope import AnyEvent

log = logging.getLogger(__name__)


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


async def _consumes_nothing(events: list[AnyEvent]) -> None:
    """The use case of a service that consumes no events (the gateway): never called."""
    raise AssertionError(f"{len(events)} events given to a service that consumes none")


NO_EVENTS = handlers((), _consumes_nothing)
"""The handlers of a service that consumes no events (the gateway)."""


@dataclass
class Wiring:
    """What a service contributes: its handlers (`consumer.handlers`: the consumed events
    and the batch use case applying them), the object its HTTP routes use
    (`request.app.state.service`), background loops and clean-up."""

    handlers: Handlers = NO_EVENTS
    api: Any = None
    background: Sequence[Callable[[], Awaitable[None]]] = ()
    on_stop: Sequence[Callable[[], Awaitable[None]]] = ()
    metrics_text: Callable[[], bytes] | None = None
    """Optional: more Prometheus exposition text, appended to /metrics. For a large set of
    series rendered once per change (reporting's figures): kept as bytes, not as a
    hundred thousand Python objects the garbage collector must walk on every full pass."""


@dataclass
class ServiceSpec:
    name: str
    consumes: Sequence[str]
    wire: Callable[[ServiceContext], Awaitable[Wiring]]
    publishes: Sequence[str] = ()
    title: str = ""
    description: str = ""
    routes: Callable[[], APIRouter] | None = None
    app_setup: Callable[[FastAPI], None] | None = None
    """Optional: adjusts the built app (the forms answer unknown paths with an HTML page)."""
    port: int = 0
    """Default HTTP port (its declaration's); `IBEST_<NAME>_PORT` overrides it."""
    unledgered: Sequence[str] = ()
    """Consumed events applied without the id ledger (`ServiceDeclaration.unledgered`)."""

    @classmethod
    def declared(
        cls,
        declaration: ServiceDeclaration,
        wire: Callable[[ServiceContext], Awaitable[Wiring]],
        *,
        routes: Callable[[], APIRouter] | None = None,
        title: str = "",
        description: str = "",
        app_setup: Callable[[FastAPI], None] | None = None,
    ) -> ServiceSpec:
        """The spec of a declared service: name, events and port come from its declaration
        (said once), the wiring and routes from the service."""
        return cls(
            name=declaration.name,
            consumes=list(declaration.consumes),
            wire=wire,
            publishes=[*declaration.publishes, *declaration.nats.makes],
            title=title,
            description=description,
            routes=routes,
            port=declaration.port,
            app_setup=app_setup,
            unledgered=list(declaration.unledgered),
        )


def broker_security(options: dict[str, Any]) -> NatsSecurity | None:
    """`Settings.nats_options()` in the form FastStream's broker takes them."""
    if "user" in options:
        return NatsUserPassword(
            username=options["user"],
            password=options.get("password", ""),
            ssl_context=options.get("tls"),
        )
    if "tls" in options:
        return NatsSecurity(ssl_context=options["tls"])
    return None


def create_app(
    spec: ServiceSpec, settings: Settings | None = None, clock: Clock = utc_now
) -> FastAPI:
    """Build the service's ASGI app; nothing connects until the app starts."""
    settings = settings or Settings()
    compat.apply()
    # Per-batch access lines go to DEBUG: our consumer logs what matters (dead letters, retries).
    # Our own logger, so FastStream adds no handler of its own (colour codes, its format).
    broker = NatsBroker(
        settings.nats_servers,
        name=f"ibest-{spec.name}",
        graceful_timeout=30,
        logger=logging.getLogger("ibest.broker"),
        log_level=logging.DEBUG,
        inbox_prefix=inbox_prefix(spec.name),
        security=broker_security(settings.nats_options()),
    )
    state: dict[str, Any] = {}

    @broker.subscriber(
        # A service that consumes no events (the gateway) never starts the broker.
        filter_subjects(spec.consumes)[0] if spec.consumes else "ibest.none",
        stream=JStream(EVENTS_STREAM, declare=False),
        durable=spec.name,
        pull_sub=PullSub(
            batch_size=settings.batch_size, batch=True, timeout=settings.fetch_timeout
        ),
        ack_policy=AckPolicy.MANUAL,
        inbox_prefix=f"{inbox_prefix(spec.name)}.".encode(),
        title=f"{spec.name}:events",
        description=f"Consumes {', '.join(spec.consumes)} from every trust.",
    )
    async def on_events(message: NatsBatchMessage = Context("message")) -> None:  # noqa: B008
        await state["consumer"].process_batch(list(message.raw_message))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        id_key = settings.platform_id_key()  # read first: no service runs without it
        mongo = mongo_client(settings)
        nc = await connect_nats(settings, f"{spec.name}-admin", user=spec.name, service=True)
        js = nc.jetstream()
        try:
            if spec.consumes:
                await check_consumer(js, spec, settings)
        except ConsumerNotDeclared:
            await nc.close()
            await mongo.close()
            raise
        db = mongo[settings.database_of(spec.name)]
        ctx = ServiceContext(
            spec.name, settings, db, nc, js, EventPublisher(js, spec.name, id_key=id_key), clock
        )
        wiring = await spec.wire(ctx)
        try:
            check_handlers(spec, wiring)
        except HandlersNotDeclared:
            for stop in wiring.on_stop:
                await stop()
            await nc.close()
            await mongo.close()
            raise
        state["consumer"] = EventConsumer(
            spec.name,
            wiring.handlers,
            js,
            EventLedger(db, unledgered=spec.unledgered),
            ConsumerPolicy(settings.max_deliveries, settings.retry_backoff_max),
            settings.time_bounds(),
        )
        app.state.ctx = ctx
        app.state.mongo = mongo
        app.state.service = wiring.api
        app.state.metrics_text = wiring.metrics_text
        if spec.consumes:  # a service that consumes no events (the gateway) has no broker
            await broker.start()
        jobs = [*wiring.background]
        if spec.consumes:
            jobs.append(lambda: watch_trust_shares(js))
        tasks = [asyncio.create_task(_forever(spec.name, job)) for job in jobs]
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

    app = FastAPI(
        title=spec.title or f"iBeST {spec.name} service",
        description=spec.description,
        lifespan=lifespan,
    )
    app.state.broker = broker
    install_problem_details(app)
    if spec.routes is not None:
        app.include_router(spec.routes())
    app.include_router(health_router(spec.name))
    if spec.app_setup is not None:
        spec.app_setup(app)
    return app


class HandlersNotDeclared(RuntimeError):
    """A service's handlers are not exactly the events its declaration says it consumes."""


def check_handlers(spec: ServiceSpec, wiring: Wiring) -> None:
    """The consumed events are declared once (the declaration); the wiring must handle
    exactly those: an undeclared handler would never be delivered an event (the consumer
    is filtered to the declaration), a declared event without one would be dead-lettered."""
    handled, declared = set(wiring.handlers.consumes), set(spec.consumes)
    if handled != declared:
        raise HandlersNotDeclared(
            f"{spec.name}: handlers for {sorted(handled - declared)} not declared as consumed; "
            f"declared {sorted(declared - handled)} without a handler"
        )


class ConsumerNotDeclared(RuntimeError):
    """The operator has not declared this service's consumer as it needs it."""


async def check_consumer(js: JetStreamContext, spec: ServiceSpec, settings: Settings) -> None:
    """Bind only to the consumer `ibest streams apply` declared, with the filters this
    service consumes; a service never creates one (its NATS user may not)."""
    try:
        info = await js.consumer_info(EVENTS_STREAM, spec.name)
    except NotFoundError:
        raise ConsumerNotDeclared(
            f"durable consumer {EVENTS_STREAM}/{spec.name} does not exist: the operator "
            "declares it with `ibest streams apply`"
        ) from None
    wanted = consumer_config(spec.name, spec.consumes, settings)
    have = sorted(info.config.filter_subjects or [info.config.filter_subject or ""])
    if have != sorted(wanted.filter_subjects or []) or info.config.deliver_subject:
        raise ConsumerNotDeclared(
            f"durable consumer {EVENTS_STREAM}/{spec.name} filters {have} (deliver subject "
            f"{info.config.deliver_subject!r}), not the pull consumer of "
            f"{wanted.filter_subjects}: run `ibest streams apply`"
        )


SHARE_WATCH_SECONDS = 30.0


async def watch_trust_shares(js: JetStreamContext) -> None:
    """Export how full each trust's share of the events stream is, for the alert."""

    async def watch_once() -> None:
        for (trust, event), ratio in (await trust_share_used(js)).items():
            TRUST_SHARE_USED.labels(trust, event).set(ratio)

    await every("trust shares", SHARE_WATCH_SECONDS, watch_once)


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

    @router.get(
        "/readyz",
        summary="Readiness: NATS and MongoDB are reachable",
        responses={503: {"description": "Not ready: a dependency does not answer"}},
    )
    async def readyz(request: Request, response: Response) -> dict[str, Any]:
        checks = await readiness(request.app.state)
        ok = all(checks.values())
        response.status_code = 200 if ok else 503
        return {"status": "ready" if ok else "not ready", "service": name, "checks": checks}

    @router.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=PlainTextResponse,
        responses={
            200: {
                "description": "Prometheus text exposition format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    )
    async def metrics(request: Request) -> Response:
        extra: Callable[[], bytes] | None = getattr(request.app.state, "metrics_text", None)
        text = generate_latest() + (extra() if extra else b"")
        return Response(text, media_type=CONTENT_TYPE_LATEST)

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
