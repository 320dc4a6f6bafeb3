"""The gateway's HTTP edge (OpenAPI at /docs and /openapi.json): the trusts' routes (`/v1`,
`events`), the course platforms' xAPI routes (`/xapi`, `xapi`), the per-address limit on
every path no key covers (`unkeyed`, the service's `app_setup`), and what they share
(`edge`: the body read, the client address, the answer sent)."""

from __future__ import annotations

from fastapi import APIRouter

from services.gateway.api import events, xapi

__all__ = ["routes"]


def routes() -> APIRouter:
    """The trusts' routes (/v1) and the course platforms' xAPI routes (/xapi)."""
    router = APIRouter()
    router.include_router(events.routes())
    router.include_router(xapi.routes())
    return router
