"""HTTP routes of the monthly series (domain.md, "Rollout over time"), beside the current
figures: same tokens, scopes, disclosure control and CSV (one row per month)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from ibest.backbone.tokens import Token
from services.reporting.api.access import accepting
from services.reporting.api.answering import report
from services.reporting.api.parameters import From, Raw, SiteCode, To, TrustCode
from services.reporting.api.schemas import CSV, MonthsReport

MonthsAccess = Annotated[Token, Depends(accepting("raw", "from", "to"))]


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
        return await report(
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
        return await report(
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
        return await report(
            request, token, raw, lambda s, r: s.months.report(trustcode, sitecode, r, start, end)
        )
