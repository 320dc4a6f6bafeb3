"""The one way a report route answers: authorise, negotiate, build the answer (unknown
places 404, malformed input 422) and audit it when it used the raw scope. Every report
route (current figures, months) goes through `report`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import Response

from ibest.backbone.tokens import Token
from services.reporting.api.access import audit, authorise, reporting_of
from services.reporting.api.encoding import answer
from services.reporting.api.errors import error_size, malformed, not_found
from services.reporting.api.negotiation import CSV_TYPE, JSON, negotiate
from services.reporting.api.parameters import RawValue
from services.reporting.checks import Malformed, NotFound
from services.reporting.reports import Reporting

Build = Callable[[Reporting, bool], Awaitable[dict[str, Any]]]
"""A read use case: the answer from the reports, exact or published."""


async def report(
    request: Request,
    token: Token,
    raw: RawValue,
    build: Build,
    offers: tuple[str, ...] = (JSON, CSV_TYPE),
) -> Response:
    """Authorise, negotiate, build the answer (unknown places 404, malformed input 422) and
    audit it when it used the raw scope."""
    exact = raw == "true"
    authorise(token, exact)
    media = negotiate(request.headers.get("accept"), offers)
    if media is None:
        raise HTTPException(
            406,
            f"this route answers {' or '.join(offers)} only, and the "
            "Accept header allows none of them",
        )
    reporting = reporting_of(request)
    try:
        found = await build(reporting, exact)
    except NotFound as exc:
        refused = not_found(exc)
    except Malformed as exc:
        refused = malformed(exc, "path" if exc.field in ("trustcode", "sitecode") else "query")
    else:
        response = answer(reporting.views, found, media, request.headers.get("accept-encoding", ""))
        await audit(request, token, exact, response.status_code, len(response.body))
        return response
    await audit(request, token, exact, refused.status_code, error_size(refused))
    raise refused
