"""Who may ask, and the record of who asked: bearer tokens (401), the parameters a route
takes (422), the raw scope (403), and the audit log every raw request is written to
before its answer is sent (503 when it cannot be)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ibest.backbone.tokens import Token, matching
from services.reporting.api.errors import unprocessable
from services.reporting.reports import Reporting

log = logging.getLogger(__name__)
bearer_scheme = HTTPBearer(auto_error=False, description="A token from IBEST_REPORTING_TOKENS")


def reporting_of(request: Request) -> Reporting:
    """The read use cases this app serves (the runtime's `app.state.service`)."""
    service: Reporting = request.app.state.service
    return service


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Token:
    """401 without a known bearer token."""
    given = credentials.credentials.strip() if credentials else None
    token = matching(reporting_of(request).tokens, given)
    if token is None:
        raise HTTPException(
            401,
            "a bearer token is required (Authorization: Bearer <token>)",
            headers={"WWW-Authenticate": 'Bearer realm="ibest-reporting"'},
        )
    return token


def accepting(*names: str) -> Callable[..., Any]:
    """After the token: 422 for a query parameter the route does not take, or one given twice
    (which value would count would be a guess)."""
    allowed = frozenset(names)

    async def check(request: Request, token: Annotated[Token, Depends(authenticate)]) -> Token:
        seen: set[str] = set()
        for name, _ in request.query_params.multi_items():
            if name not in allowed:
                shown = name[:40]
                hint = (
                    " (only /v1/funnel/improved_share takes measure and timepoint)"
                    if name in ("measure", "timepoint")
                    else ""
                )
                raise unprocessable(
                    "query",
                    shown,
                    f"unknown parameter {shown!r}: this route "
                    f"takes {', '.join(sorted(allowed)) or 'none'}{hint}",
                    "extra_forbidden",
                )
            if name in seen:
                raise unprocessable("query", name, f"{name} is given more than once")
            seen.add(name)
        return token

    return check


def authorise(token: Token, raw: bool) -> None:
    """403 when raw figures are asked without the raw scope."""
    if raw and token.scope != "raw":
        raise HTTPException(403, "raw figures need a token with the raw scope")


async def audit(request: Request, token: Token, exact: bool, status: int, size: int) -> None:
    """Record a raw request before answering; if the log cannot be written, refuse (503)."""
    log_of = reporting_of(request).audit
    if not exact or log_of is None:
        return
    try:
        await log_of.raw_report(token.id, request.url.path, request.url.query, status, size)
    except Exception:
        log.exception("audit log not written; raw answer withheld (token id %s)", token.id)
        raise HTTPException(
            503, "the audit log could not be written, so raw figures are not sent; try again later"
        ) from None
