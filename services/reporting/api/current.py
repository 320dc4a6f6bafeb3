"""HTTP routes of the current figures: national, trusts, sites, funnels and the
comparisons against the trial. Thin: each names its use case and answers through
answering.report (tokens, scopes, negotiation, audit)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from ibest.backbone.tokens import Token
from services.reporting.api.access import accepting
from services.reporting.api.answering import report
from services.reporting.api.parameters import Figure, Measure, Raw, SiteCode, Timepoint, TrustCode
from services.reporting.api.schemas import (
    CSV,
    Comparison,
    Funnel,
    Report,
    SiteReport,
    TrustReport,
    TrustsReport,
)
from services.reporting.domain.funnel import COMPARISON_FIGURES

OnlyRaw = Annotated[Token, Depends(accepting("raw"))]
FunnelAccess = Annotated[Token, Depends(accepting("raw", "measure", "timepoint"))]


def _comparison_route(figure: str) -> Callable[..., Any]:
    async def compare(request: Request, token: OnlyRaw, raw: Raw = "false") -> Response:
        return await report(request, token, raw, lambda s, r: s.comparison(figure, r))

    return compare


def add_current_routes(router: APIRouter) -> None:
    """Add the current figures' routes (national, trusts, sites, funnels) to the /v1 router."""

    @router.get(
        "/national",
        response_model=Report,
        responses=CSV,
        summary="National figures (exact; never disclosure-controlled)",
    )
    async def national(request: Request, token: OnlyRaw, raw: Raw = "false") -> Response:
        return await report(request, token, raw, lambda s, r: s.national(r))

    @router.get(
        "/trusts",
        response_model=TrustsReport,
        responses=CSV,
        summary="Every trust with its figures (controlled unless raw)",
    )
    async def trusts(request: Request, token: OnlyRaw, raw: Raw = "false") -> Response:
        return await report(request, token, raw, lambda s, r: s.trusts(r))

    @router.get(
        "/trusts/{trustcode}",
        response_model=TrustReport,
        responses=CSV,
        summary="One trust's figures and its sites' (controlled unless raw)",
    )
    async def trust(
        request: Request, token: OnlyRaw, trustcode: TrustCode, raw: Raw = "false"
    ) -> Response:
        return await report(request, token, raw, lambda s, r: s.trust(trustcode, r))

    @router.get(
        "/trusts/{trustcode}/sites/{sitecode}",
        response_model=SiteReport,
        responses=CSV,
        summary="One site's figures (controlled unless raw)",
    )
    async def site(
        request: Request,
        token: OnlyRaw,
        trustcode: TrustCode,
        sitecode: SiteCode,
        raw: Raw = "false",
    ) -> Response:
        return await report(request, token, raw, lambda s, r: s.site(trustcode, sitecode, r))

    funnel_doc = (
        "Per trust: value and denominator (disclosure-controlled unless raw), "
        "outside_95 and outside_99_8 judged on the exact value against the binomial "
        "limits for the exact denominator (raw also gives those control_limits); "
        "`limits`: the plot's national line and 95% / 99.8% limits by denominator. "
        "JSON, or CSV with Accept: text/csv."
    )

    @router.get(
        "/funnel/improved_share",
        response_model=Funnel,
        summary="Funnel of the share of patients meaningfully improved",
        description="For one measure at one timepoint. " + funnel_doc,
    )
    async def funnel_improved_share(
        request: Request,
        token: FunnelAccess,
        measure: Measure,
        timepoint: Timepoint,
        raw: Raw = "false",
    ) -> Response:
        return await report(
            request, token, raw, lambda s, r: s.funnel("improved_share", measure, timepoint, r)
        )

    for comparison in COMPARISON_FIGURES:
        timepoint_name = comparison.removeprefix("rmdq_improvement_")

        router.add_api_route(
            f"/funnel/{comparison}",
            _comparison_route(comparison),
            methods=["GET"],
            response_model=Comparison,
            responses=CSV,
            name=f"funnel_{comparison}",
            summary=f"Trusts' RMDQ improvement at {timepoint_name} against the trial",
            description="Each trust's mean RMDQ improvement (baseline minus follow-up) and "
            "95% interval against the trial's interval and the national one "
            '(docs/figures.md, "Against the trial"); trusts disclosure-controlled '
            "unless raw. JSON, or CSV with Accept: text/csv.",
        )

    @router.get(
        "/funnel/{figure}",
        response_model=Funnel,
        summary="Funnel comparison of trusts against the national proportion",
        description="figure: followup_rate_month_3, followup_rate_month_12, "
        "delivery_response_rate_month_4, delivery_response_rate_month_12 or "
        "clinicians_completed (over enrolled); improved_share and "
        "rmdq_improvement_month_3/_month_12 have their own routes. " + funnel_doc,
    )
    async def funnel(
        request: Request,
        token: OnlyRaw,
        figure: Figure,
        raw: Raw = "false",
    ) -> Response:
        return await report(request, token, raw, lambda s, r: s.funnel(figure, None, None, r))
