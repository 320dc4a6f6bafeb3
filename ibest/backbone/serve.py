"""Run one service process: `python -m services.<name>` calls `serve(SPEC)`."""

from __future__ import annotations

import gc
import logging
import os
from typing import Any

import uvicorn

from ibest.backbone.runtime import ServiceSpec, create_app
from ibest.backbone.settings import Settings

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FRAMEWORKS = (
    "faststream",
    "faststream.access",
    "faststream.access.nats",
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "nats",
    "httpx",
    "httpcore",
)
"""Libraries whose INFO and DEBUG lines are framework noise, not what the service did."""


def plain_logging(level: str | int = "INFO") -> None:
    """One plain line per record on stderr (time, level, logger, message), no colour codes.

    Frameworks log through the root handler too (their own coloured handlers removed) and
    only from WARNING up, whatever `level` says; PyMongo never below INFO, as its DEBUG
    lines carry whole commands and replies (contact emails, message data).
    """
    logging.basicConfig(level=level, format=LOG_FORMAT, force=True)
    root_level = logging.getLogger().level
    for name in FRAMEWORKS:
        framework = logging.getLogger(name)
        framework.handlers.clear()
        framework.propagate = True
        framework.setLevel(max(logging.WARNING, root_level))
    logging.getLogger("pymongo").setLevel(max(logging.INFO, root_level))


SERVER_OPTIONS: dict[str, Any] = {"server_header": False}
"""uvicorn options every service process runs with (the test harness too): no `server:
uvicorn` banner telling a scanner which software and version to try."""

GC_THRESHOLDS = (10_000, 10, 10)
"""Young collections every 10,000 net allocations rather than CPython's 700 (see tune_gc)."""


def tune_gc() -> None:
    """Garbage collection tuned for a service's latency.

    A full collection walks every tracked object and stops the event loop while it does: at
    national scale, 100 - 170 ms in reporting (measured), the whole tail of its latency.
    What starts them is objects promoted to the old generation, mostly the state of requests
    in flight when a young collection runs, so rarer young collections promote far fewer;
    and what is alive once the service is built (modules, classes, routes) is frozen out of
    every future collection. Cycles still get collected; reference counting frees the rest.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def serve(spec: ServiceSpec) -> None:
    """Serve `spec` on its configured port until SIGTERM or SIGINT, then stop gracefully."""
    plain_logging(os.environ.get("IBEST_LOG_LEVEL", "INFO"))
    settings = Settings()
    app = create_app(spec, settings)
    tune_gc()
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.port_of(spec.name, spec.port),
        log_level="warning",
        log_config=None,  # uvicorn's own config would add coloured handlers; ours propagate
        http="httptools",  # the C parser: the gateway reads 1 MiB batches on its hot path
        timeout_graceful_shutdown=30,
        **SERVER_OPTIONS,
    )
