"""Run one service process: `python -m services.<name>` calls `serve(SPEC)`."""

from __future__ import annotations

import logging
import os

import uvicorn

from ibest.backbone.runtime import ServiceSpec, create_app
from ibest.backbone.settings import Settings


def serve(spec: ServiceSpec) -> None:
    """Serve `spec` on its configured port until SIGTERM or SIGINT, then stop gracefully."""
    logging.basicConfig(
        level=os.environ.get("IBEST_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # PyMongo's DEBUG logs carry whole commands and replies (contact emails, message data):
    # never below INFO, whatever IBEST_LOG_LEVEL says.
    logging.getLogger("pymongo").setLevel(max(logging.INFO, logging.getLogger().level))
    settings = Settings()
    app = create_app(spec, settings)
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.port_of(spec.name),
        log_level="warning",
        timeout_graceful_shutdown=30,
    )
