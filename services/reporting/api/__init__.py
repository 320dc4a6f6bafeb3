"""HTTP routes of the reporting service (OpenAPI at /docs and /openapi.json).

Every route needs a bearer token from IBEST_REPORTING_TOKENS; `raw=true` needs the raw
scope, and every request that uses it is written to the audit log (ibest.backbone.audit)
before its answer is sent. JSON by default, CSV with `Accept: text/csv`. Checks run in this
order: token (401), parameters (422: unknown, repeated or invalid), scope (403), `Accept`
(406), then the place (404 or 422).

The modules, each importing only those below it (an import-linter contract in
pyproject.toml): the routes (`current`, `months`, `pack`, independent of one another),
`answering` (the one way a report route answers), `access` (tokens, scopes, audit) and
`encoding` (JSON, CSV, gzip), then `errors` (domain errors to statuses), `negotiation`,
`parameters` and `schemas`.
"""

from __future__ import annotations

from fastapi import APIRouter

from services.reporting.api.current import add_current_routes
from services.reporting.api.months import add_month_routes
from services.reporting.api.pack import add_pack_routes
from services.reporting.api.schemas import ERRORS

__all__ = ["routes"]


def routes() -> APIRouter:
    """The /v1 router: current figures, then the months, then the monthly pack (in this
    order, so /v1/funnel/{figure} comes after the comparisons' own routes)."""
    router = APIRouter(prefix="/v1", tags=["reports"], responses=ERRORS)
    add_current_routes(router)
    add_month_routes(router)
    add_pack_routes(router)
    return router
