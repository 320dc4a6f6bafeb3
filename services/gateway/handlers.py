"""HTTP routes: each maps a request to a use case (application.Gateway) and nothing more."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse

from services.gateway.application import Gateway, Reply
from services.gateway.domain.rejections import RejectionList
from services.gateway.domain.requests import BATCH, MAX_BODY_BYTES, STRUCTURED, Refusal
from services.gateway.domain.results import Results

_EVENT_BODY: dict[str, Any] = {
    "parameters": [
        {
            "name": "Authorization",
            "in": "header",
            "required": True,
            "schema": {"type": "string"},
            "description": "`Bearer <your API key>`",
        },
        {"name": "Content-Type", "in": "header", "required": True, "schema": {"type": "string"}},
    ],
    "requestBody": {
        "required": True,
        "content": {
            STRUCTURED: {
                "schema": {"type": "object", "description": "One CloudEvent (structured)."}
            },
            BATCH: {
                "schema": {
                    "type": "array",
                    "maxItems": 500,
                    "items": {"type": "object"},
                    "description": "Up to 500 CloudEvents.",
                }
            },
            "application/json": {
                "schema": {"type": "object"},
                "description": "Binary mode: the event's data, attributes as ce- "
                "headers (ce-specversion, ce-id, ce-source, ce-type, "
                "ce-time, ce-trustcode, ce-sitecode).",
            },
        },
    },
}
_DETAIL = {"content": {"application/json": {"example": {"detail": "why"}}}}


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
    return JSONResponse(reply.body, reply.status, headers=reply.headers)


def routes() -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["events"])

    @router.post(
        "/events",
        summary="Send one event, a batch or a binary-mode event",
        openapi_extra=_EVENT_BODY,
        response_model=Results,
        responses={
            422: {"model": Results, "description": "Not every event stored"},
            400: _DETAIL,
            401: _DETAIL,
            403: _DETAIL,
            413: _DETAIL,
            415: _DETAIL,
            429: _DETAIL,
            503: {"model": Results},
        },
    )
    async def post_events(request: Request) -> JSONResponse:
        # Headers read directly (not as FastAPI parameters: this is the hot path, and
        # binary mode needs every ce- header anyway); documented in _EVENT_BODY.
        gateway: Gateway = request.app.state.service
        headers = dict(request.headers)  # names arrive lower-case
        return respond(
            await gateway.ingest(
                headers.get("authorization"),
                headers.get("content-type"),
                headers,
                await read_body(request),
            )
        )

    @router.get(
        "/rejections",
        summary="Your trust's rejected events, newest first",
        tags=["rejections"],
        response_model=RejectionList,
        responses={400: _DETAIL, 401: _DETAIL},
    )
    async def get_rejections(
        request: Request,
        authorization: Annotated[str | None, Header()] = None,
        since: Annotated[
            str | None, Query(description="RFC 3339 time, e.g. 2026-03-01T00:00:00Z")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
    ) -> JSONResponse:
        gateway: Gateway = request.app.state.service
        return respond(await gateway.rejections(authorization, since, limit))

    return router
