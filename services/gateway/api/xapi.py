"""xAPI routes (`/xapi/statements`, `/xapi/about`): each maps a request to the
course-platform use case (application.XapiStatements) and nothing more."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from ibest.backbone.problems import PROBLEM_JSON, problem, problem_responses
from services.gateway.api.answers import Reply, admitted, refused
from services.gateway.api.edge import address_of, read_body
from services.gateway.api.edge import respond as edge_respond
from services.gateway.application import Gateway
from services.gateway.courses.domain.xapi import VERSION, as_bearer
from services.gateway.courses.statements import XapiRefusal, XapiStatements, XapiStored, XapiWhy
from services.gateway.domain.requests import Refusal

_PROBLEM = {"content": {"application/problem+json": {"example": {"title": "Bad Request"}}}}
_HEADERS = {"X-Experience-API-Version": VERSION}


STATUS_OF_REFUSAL = {
    XapiWhy.NOT_A_COURSE_PLATFORM: 403,
    XapiWhy.INVALID: 400,
    XapiWhy.UNREADABLE: 400,
    XapiWhy.ID_CONFLICT: 409,
    XapiWhy.RATE_LIMITED: 429,
    XapiWhy.STREAM_UNAVAILABLE: 503,
}
"""The HTTP status of each refusal of the xAPI use case: the edge's, and only here."""


def answer(outcome: XapiStored | XapiRefusal | Refusal) -> Reply:
    """The use case's outcome over HTTP: the ids (200), or RFC 9457 problem details in the
    shape of every other API of the platform (`type` `urn:ibest:problem:<name>`, `title`,
    `code`; ibest.backbone.problems), with `errors[]` of field, code and message where
    statements are at fault; a key refused as the gateway refuses it on /v1."""
    if isinstance(outcome, Refusal):
        return refused(outcome)
    if isinstance(outcome, XapiStored):
        return Reply(200, outcome.ids)
    status = STATUS_OF_REFUSAL[outcome.why]
    body = problem(status, outcome.why.value, outcome.detail, list(outcome.errors) or None)
    headers = {"Retry-After": str(outcome.retry_after)} if outcome.retry_after else {}
    return Reply(status, body, headers)


def respond(reply: Reply) -> JSONResponse:
    """The answer with the xAPI version header."""
    return JSONResponse(
        reply.body,
        reply.status,
        headers={**_HEADERS, **reply.headers},
        media_type=PROBLEM_JSON if reply.status >= 400 else "application/json",
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
            why = "the course-platform part has no programme key (IBEST_CLINICIAN_KEY_FILE)"
            return respond(Reply(503, problem(503, "unavailable", why)))
        if not isinstance(body, bytes):
            return respond(refused(body))
        return respond(
            answer(
                await statements.post(
                    as_bearer(authorization), x_experience_api_version, body, address
                )
            )
        )

    return router
