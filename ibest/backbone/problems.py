"""RFC 9457 problem details: the one shape of every error of every JSON API.

`application/problem+json` with `type` (a stable URI, `urn:ibest:problem:<name>`, each listed
in docs/errors.md), `title` (the same for every problem of that type), `status`, `detail`
(this occurrence, in plain English), `code` (the type's name, for engines that match a word)
and, where fields are at fault, `errors[]` of `{field, code, message}`. `install` puts the
exception handlers on a service's app, so FastAPI's and Starlette's own errors (404, 405,
validation 422s, an `HTTPException`) and an unexpected exception (500) answer in this shape.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from shared.codes import code_of_pydantic

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:ibest:problem:"

TITLES: dict[str, str] = {
    "unreadable-body": "The request body cannot be read",
    "invalid-request": "The request's parameters break a rule",
    "no-key": "No API key or token was sent",
    "unknown-key": "The API key is unknown or revoked",
    "forbidden": "The credentials do not allow this",
    "forbidden-events": "The request holds events this key may not send",
    "not-found": "There is no such resource",
    "method-not-allowed": "The resource does not take this method",
    "not-acceptable": "No representation the Accept header allows",
    "too-large": "The request is over a limit",
    "unsupported-media-type": "The Content-Type is not accepted",
    "events-rejected": "Not every event was stored",
    "id-conflict": "An id is already stored with other content",
    "rate-limited": "Too many requests",
    "stream-unavailable": "The event stream is unreachable",
    "storage-share-exhausted": "The trust's storage share is full",
    "unavailable": "A dependency is unavailable",
    "internal-error": "Unexpected error",
}
"""Every problem type, by name; docs/errors.md documents each (a test keeps them equal)."""

_BY_STATUS = {
    400: "unreadable-body",
    401: "no-key",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    413: "too-large",
    415: "unsupported-media-type",
    422: "invalid-request",
    429: "rate-limited",
    503: "unavailable",
}


def problem(
    status: int,
    name: str,
    detail: str,
    errors: Sequence[Mapping[str, str]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A problem details document (`name` is a key of TITLES)."""
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + name,
        "title": TITLES[name],
        "status": status,
        "detail": detail,
        "code": name,
    }
    if errors is not None:
        body["errors"] = [dict(e) for e in errors]
    body.update(extra)
    return body


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_JSON


def name_for(status: int) -> str:
    return _BY_STATUS.get(status, "internal-error" if status >= 500 else "invalid-request")


def _pydantic_errors(items: Sequence[Any]) -> list[dict[str, str]]:
    """FastAPI's validation errors (`{loc, msg, type}`) as problem `errors[]`."""
    out = []
    for item in items:
        if not isinstance(item, Mapping):
            out.append({"field": "request", "code": "invalid", "message": str(item)})
            continue
        loc = [str(p) for p in item.get("loc", ()) if str(p) != "body"] or ["request"]
        out.append(
            {
                "field": ".".join(loc),
                "code": code_of_pydantic(item),
                "message": str(item.get("msg", "")),
            }
        )
    return out


def from_http_exception(exc: HTTPException) -> ProblemResponse:
    """An `HTTPException` (a service's own or Starlette's 404/405) as a problem; a list
    detail (FastAPI's validation shape) becomes `errors[]`."""
    detail: Any = exc.detail
    errors = None
    if isinstance(detail, list):
        errors = _pydantic_errors(detail)
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    body = problem(exc.status_code, name_for(exc.status_code), str(detail), errors)
    return ProblemResponse(body, exc.status_code, headers=dict(exc.headers or {}))


def wants_html(request: Request) -> bool:
    """A browser asking for a page (Accept names text/html, and no JSON): its errors are
    pages in plain English, not JSON (the forms; API clients send */* or JSON)."""
    accept = request.headers.get("accept", "").lower()
    return "text/html" in accept and "json" not in accept


def as_page(body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> HTMLResponse:
    """A problem as a plain page: its title and what happened, nothing more."""
    page = (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        f"<title>{html.escape(str(body['title']))}</title>"
        f"<h1>{html.escape(str(body['title']))}</h1><p>{html.escape(str(body['detail']))}</p>"
    )
    return HTMLResponse(page, int(body["status"]), headers=dict(headers or {}))


def install(app: FastAPI) -> None:
    """Answer every error of `app` as problem details (as a page to a browser)."""

    def answer(request: Request, response: ProblemResponse) -> Response:
        if not wants_html(request):
            return response
        body = json.loads(bytes(response.body))
        headers = {k: v for k, v in response.headers.items() if k.lower() not in _OWN}
        return as_page(body, headers)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return answer(request, from_http_exception(exc))

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = _pydantic_errors(list(exc.errors()))
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return answer(
            request, ProblemResponse(problem(422, "invalid-request", detail, errors), 422)
        )

    async def on_crash(request: Request, exc: Exception) -> Response:
        route = getattr(request.scope.get("route"), "path", "(no route)")
        # The route's template, never the path: a path may hold a reference.
        log.error("unexpected %s answering %s %s", type(exc).__name__, request.method, route)
        return answer(
            request,
            ProblemResponse(
                problem(500, "internal-error", "the service failed to answer; it has been logged"),
                500,
            ),
        )

    base_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _problem_openapi(base_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(Exception, on_crash)


_OWN = frozenset({"content-type", "content-length"})


class ProblemError(BaseModel):
    field: str
    code: str
    message: str


class Problem(BaseModel):
    """An error answer (RFC 9457), as documented in each API's OpenAPI."""

    type: str = Field(description="`urn:ibest:problem:<code>`, listed in docs/errors.md.")
    title: str
    status: int
    detail: str
    code: str = Field(description="The problem type's name, as in `type`.")
    errors: list[ProblemError] | None = Field(
        default=None, description="Fields at fault, where the problem names them."
    )
    results: list[dict[str, Any]] | None = Field(
        default=None,
        description="For events (the gateway): one result per event, in request order, each "
        "`{id, status, errors[]}`.",
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for these error statuses (`install` documents each as
    problem details)."""
    return {status: {"description": TITLES[name_for(status)]} for status in statuses}


def _problem_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    """Every error response of every operation documented as `application/problem+json`
    with the one `Problem` schema (FastAPI's own validation-error schemas removed)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(problem_schema.pop("$defs", {}))
    components["Problem"] = problem_schema
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    ref = {"$ref": "#/components/schemas/Problem"}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                if str(status).isdigit() and int(status) >= 400:
                    response["content"] = {PROBLEM_JSON: {"schema": ref}}
    return schema
