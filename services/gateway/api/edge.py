"""What every gateway route shares: the body read with its size limit, the client address
behind the trusted proxies, and a use case's answer sent as JSON or problem details."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.responses import JSONResponse

from ibest.backbone.problems import PROBLEM_JSON
from services.gateway.api.answers import Reply
from services.gateway.application import Gateway
from services.gateway.domain.requests import MAX_BODY_BYTES, Refusal, Why, client_address


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes | Refusal:
    """The body, or a refusal (too large) once it passes `limit` bytes (read no further)."""
    too_big = Refusal(Why.TOO_LARGE, f"the body is over {limit} bytes (1 MiB): split the batch")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        return too_big
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return too_big
    return bytes(body)


def respond(reply: Reply) -> JSONResponse:
    media = PROBLEM_JSON if reply.status >= 400 else "application/json"
    return JSONResponse(reply.body, reply.status, headers=reply.headers, media_type=media)


def address_of(request: Request, gateway: Gateway) -> str:
    peer = request.client.host if request.client else ""
    return client_address(peer, request.headers.get("x-forwarded-for"), gateway.proxies)


async def counted(gateway: Gateway, answer: Callable[[], Awaitable[Reply]]) -> JSONResponse:
    """Answer, counting a crash as a 500 in the request metrics before it propagates."""
    try:
        return respond(await answer())
    except Exception:
        gateway.metrics.observe("", 500, [], 0.0)
        raise
