"""HTTP routes of the monthly series (domain.md, "Rollout over time"), beside the current
figures: same tokens, scopes, disclosure control and CSV (one row per month)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from ibest.backbone.tokens import Token
from services.reporting.api import CSV, Raw, SiteCode, TrustCode, _pattern, _report, accepting
from services.reporting.checks import MONTH

From = Annotated[
    str | None,
    Query(
        alias="from",
        description="First month, YYYY-MM",
        json_schema_extra=_pattern(MONTH, "2025-04"),
    ),
]
To = Annotated[
    str | None,
    Query(
        alias="to", description="Last month, YYYY-MM", json_schema_extra=_pattern(MONTH, "2025-09")
    ),
]
MonthsAccess = Annotated[Token, Depends(accepting("raw", "from", "to"))]
MONTHS_DOC = (
    "Per figure, its value at the end of each month in `months` (Europe/London, by "
    "event time; the last month is the current one and equals the current "
    "figures). Below national level, unless raw, each value is controlled on its "
    'own: 0 stays 0, 1-7 is "*", other counts rounded to 5, rates from the '
    "rounded counts; a rate over nobody is null."
)


class MonthsReport(BaseModel):
    as_of: datetime | None = Field(description="Event time of the newest applied event.")
    level: str
    raw: bool
    trustcode: str | None = None
    sitecode: str | None = None
    months: list[str] = Field(description="Calendar months, YYYY-MM, oldest first.")
    figures: dict[str, list[Any]] = Field(description=MONTHS_DOC)


def add_month_routes(router: APIRouter) -> None:
    """Add the three months routes to the /v1 router."""

    @router.get(
        "/national/months",
        response_model=MonthsReport,
        responses=CSV,
        summary="National figures month by month (exact)",
    )
    async def national_months(
        request: Request,
        token: MonthsAccess,
        raw: Raw = "false",
        start: From = None,
        end: To = None,
    ) -> Response:
        return await _report(
            request, token, raw, lambda s, r: s.months.report(None, None, r, start, end)
        )

    @router.get(
        "/trusts/{trustcode}/months",
        response_model=MonthsReport,
        responses=CSV,
        summary="One trust's figures month by month (controlled unless raw)",
    )
    async def trust_months(
        request: Request,
        token: MonthsAccess,
        trustcode: TrustCode,
        raw: Raw = "false",
        start: From = None,
        end: To = None,
    ) -> Response:
        return await _report(
            request, token, raw, lambda s, r: s.months.report(trustcode, None, r, start, end)
        )

    @router.get(
        "/trusts/{trustcode}/sites/{sitecode}/months",
        response_model=MonthsReport,
        responses=CSV,
        summary="One site's figures month by month (controlled unless raw)",
    )
    async def site_months(
        request: Request,
        token: MonthsAccess,
        trustcode: TrustCode,
        sitecode: SiteCode,
        raw: Raw = "false",
        start: From = None,
        end: To = None,
    ) -> Response:
        return await _report(
            request, token, raw, lambda s, r: s.months.report(trustcode, sitecode, r, start, end)
        )
