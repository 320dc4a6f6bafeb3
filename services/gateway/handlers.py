"""HTTP routes: each maps a request to a use case (application.Gateway) and nothing more.

Every error answers as problem details (`application/problem+json`, docs/errors.md); an
unexpected exception is counted in `ibest_gateway_requests_total{status="500"}` before the
runtime's handler answers it as a problem too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer

from ibest.backbone.problems import PROBLEM_JSON, problem_responses
from services.gateway.application import Gateway, Reply
from services.gateway.domain.rejections import RejectionList
from services.gateway.domain.requests import MAX_BODY_BYTES, Refusal, client_address
from services.gateway.domain.results import Results
from services.gateway.openapi import request_body

BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="Your trust's API key: `Authorization: Bearer ibk_...`",
)
"""Declares the bearer scheme in the OpenAPI; the use cases read the header themselves."""
_EVENT_STATUSES = (400, 401, 403, 413, 415, 422, 429, 503, 507)


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes | Refusal:
    """The body, or a 413 refusal once it passes `limit` bytes (read no further)."""
    too_big = Refusal(413, f"the body is over {limit} bytes (1 MiB): split the batch")
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


def routes() -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["events"])
    authenticated = [Depends(BEARER)]

    async def ingest(request: Request, store: bool) -> JSONResponse:
        # Headers read directly (not as FastAPI parameters: this is the hot path, and
        # binary mode needs every ce- header anyway); documented in request_body().
        gateway: Gateway = request.app.state.service
        headers = dict(request.headers)  # names arrive lower-case

        async def answer() -> Reply:
            return await gateway.ingest(
                headers.get("authorization"),
                headers.get("content-type"),
                headers,
                await read_body(request),
                address_of(request, gateway),
                store,
            )

        return await counted(gateway, answer)

    @router.post(
        "/events",
        summary="Send one event, a batch or a binary-mode event",
        openapi_extra=request_body(),
        dependencies=authenticated,
        response_model=Results,
        responses=problem_responses(*_EVENT_STATUSES),
    )
    async def post_events(request: Request) -> JSONResponse:
        return await ingest(request, store=True)

    @router.post(
        "/events/validate",
        summary="Try events: exactly the answer POST /v1/events would give, nothing stored",
        openapi_extra=request_body(),
        dependencies=authenticated,
        response_model=Results,
        responses=problem_responses(*_EVENT_STATUSES),
    )
    async def validate_events(request: Request) -> JSONResponse:
        return await ingest(request, store=False)

    @router.get(
        "/rejections",
        summary="Your trust's rejected events and refused requests, newest first",
        tags=["rejections"],
        dependencies=authenticated,
        response_model=RejectionList,
        responses=problem_responses(400, 401, 422, 429),
    )
    async def get_rejections(
        request: Request,
        since: Annotated[
            str | None,
            Query(
                max_length=64,
                description="RFC 3339 time, e.g. 2026-03-01T00:00:00Z or "
                "2026-03-01T00:00:00+01:00 (the + may be sent unencoded)",
            ),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=1000, description="Rows per page")] = 100,
        cursor: Annotated[
            str | None,
            Query(max_length=400, description="The previous page's `next`, as it came"),
        ] = None,
    ) -> JSONResponse:
        gateway: Gateway = request.app.state.service

        async def answer() -> Reply:
            return await gateway.rejections(
                request.headers.get("authorization"),
                since,
                limit,
                cursor,
                address_of(request, gateway),
            )

        return await counted(gateway, answer)

    @router.get(
        "/courses",
        summary="The course catalogue: the versions and modules events may name",
        tags=["reference"],
        responses=problem_responses(429),
    )
    async def get_courses(request: Request) -> JSONResponse:
        gateway: Gateway = request.app.state.service

        async def answer() -> Reply:
            return gateway.courses(address_of(request, gateway))

        return await counted(gateway, answer)

    return router
