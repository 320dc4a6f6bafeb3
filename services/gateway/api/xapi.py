"""xAPI routes (`/xapi/statements`, `/xapi/about`): each maps a request to the
course-platform use case (application.XapiStatements) and nothing more."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from ibest.backbone.problems import problem_responses
from services.gateway.api.answers import Reply, admitted, refused
from services.gateway.api.edge import address_of, read_body
from services.gateway.api.edge import respond as edge_respond
from services.gateway.application import Gateway
from services.gateway.courses.domain.xapi import VERSION, as_bearer
from services.gateway.courses.statements import XapiReply, XapiStatements, problem
from services.gateway.domain.requests import Refusal

_PROBLEM = {"content": {"application/problem+json": {"example": {"title": "Bad Request"}}}}
_HEADERS = {"X-Experience-API-Version": VERSION}


def respond(reply: XapiReply | Reply | Refusal) -> JSONResponse:
    """The answer with the xAPI version header; a refusal as the gateway's problem details."""
    if isinstance(reply, Refusal):
        reply = refused(reply)
    is_problem = reply.problem if isinstance(reply, XapiReply) else reply.status >= 400
    return JSONResponse(
        reply.body,
        reply.status,
        headers={**_HEADERS, **reply.headers},
        media_type="application/problem+json" if is_problem else "application/json",
    )


def routes() -> APIRouter:
    router = APIRouter(prefix="/xapi", tags=["xAPI (course platforms)"])

    @router.get(
        "/about",
        summary="The xAPI versions this endpoint speaks",
        responses=problem_responses(429),
    )
    async def about(request: Request) -> JSONResponse:
        # No key needed: limited by address with every keyless path (api/unkeyed.py).
        return JSONResponse(XapiStatements.about(), headers=_HEADERS)

    @router.post(
        "/statements",
        summary="Store xAPI 1.0.3 statements (one or an array), all or nothing",
        responses={400: _PROBLEM, 401: _PROBLEM, 403: _PROBLEM, 409: _PROBLEM, 503: _PROBLEM},
    )
    async def post_statements(
        request: Request,
        authorization: Annotated[str | None, Header()] = None,
        x_experience_api_version: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        gateway: Gateway = request.app.state.service
        address = address_of(request, gateway)
        statements: XapiStatements | None = gateway.xapi
        body = await read_body(request) if statements is not None else b""
        if statements is None or not isinstance(body, bytes):
            # refused before any key is read: charged to the address, as a request without one
            limited = admitted(gateway, address)
            if limited is not None:
                return edge_respond(limited)
        if statements is None:
            return respond(
                problem(
                    503,
                    "unavailable",
                    "the course-platform part has no programme key (IBEST_CLINICIAN_KEY_FILE)",
                )
            )
        if not isinstance(body, bytes):
            return respond(body)
        return respond(
            await statements.post(as_bearer(authorization), x_experience_api_version, body, address)
        )

    return router
