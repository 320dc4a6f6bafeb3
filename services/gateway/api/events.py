"""The trusts' routes (`/v1`): each maps a request to a use case (application.Gateway) and
nothing more.

Every error answers as problem details (`application/problem+json`, docs/errors.md); an
unexpected exception is counted in `ibest_gateway_requests_total{status="500"}` before the
runtime's handler answers it as a problem too.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer

from ibest.backbone.problems import problem_responses
from services.gateway.api.answers import Reply, admitted, ingested, rejection_page
from services.gateway.api.edge import address_of, counted, read_body
from services.gateway.api.openapi import request_body
from services.gateway.application import Gateway
from services.gateway.domain.rejections import RejectionList
from services.gateway.domain.results import Results

BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="Your trust's API key: `Authorization: Bearer ibk_...`",
)
"""Declares the bearer scheme in the OpenAPI; the use cases read the header themselves."""
_EVENT_STATUSES = (400, 401, 403, 413, 415, 422, 429, 503, 507)


def routes() -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["events"])
    authenticated = [Depends(BEARER)]

    async def ingest(request: Request, store: bool) -> JSONResponse:
        # Headers read directly (not as FastAPI parameters: this is the hot path, and
        # binary mode needs every ce- header anyway); documented in request_body().
        gateway: Gateway = request.app.state.service
        headers = dict(request.headers)  # names arrive lower-case

        async def answer() -> Reply:
            body = await read_body(request)
            started = gateway.timer()
            done = await gateway.ingest(
                headers.get("authorization"),
                headers.get("content-type"),
                headers,
                body,
                address_of(request, gateway),
                store,
            )
            return ingested(gateway, done, started)

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
            return rejection_page(
                gateway,
                await gateway.rejections(
                    request.headers.get("authorization"),
                    since,
                    limit,
                    cursor,
                    address_of(request, gateway),
                ),
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
            return admitted(gateway, address_of(request, gateway)) or Reply(200, gateway.courses())

        return await counted(gateway, answer)

    return router
