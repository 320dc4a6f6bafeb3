"""HTTP routes of the reporting service (OpenAPI at /docs and /openapi.json).

Every route needs a bearer token from IBEST_REPORTING_TOKENS; `raw=true` needs the raw
scope. JSON by default, CSV with `Accept: text/csv`.
"""

from __future__ import annotations

import gzip
import hmac
import json
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import Response
from pydantic import BaseModel, Field

from .domain.tables import report_rows, to_csv
from .reports import Malformed, NotFound, Reporting

Raw = Annotated[bool, Query(description="Exact figures below national level; needs the "
                                        "raw scope.")]
FIGURES_DOC = ("Figures keyed by name (domain.md, Figure definitions): counts, "
               "`*_by_profession`, rates, and `outcomes.<measure>.<timepoint>` with n, "
               "mean_change, improved_share. Below national level, unless raw: 0 stays 0, "
               "1-7 is \"*\", other counts are rounded to the nearest 5.")
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No bearer token, or an unknown one"},
    403: {"description": "raw=true without the raw scope"},
    404: {"description": "Unknown trust or site (the message says which)"},
    422: {"description": "A malformed trust or site code, or funnel parameters"},
}
CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}},
          "description": "The report (JSON, or CSV with Accept: text/csv)"}}


class PlaceFigures(BaseModel):
    trustcode: str | None = None
    sitecode: str | None = None
    figures: dict[str, Any] = Field(description=FIGURES_DOC)


class Report(BaseModel):
    as_of: datetime | None = Field(description="Event time of the newest applied event.")
    level: str
    figures: dict[str, Any] = Field(description=FIGURES_DOC)


class TrustsReport(BaseModel):
    as_of: datetime | None
    level: str
    raw: bool
    figures: dict[str, dict[str, Any]] = Field(description="Each trust's figures by trust code.")
    trusts: list[PlaceFigures]


class TrustReport(Report):
    raw: bool
    trustcode: str
    sites: list[PlaceFigures]


class SiteReport(Report):
    raw: bool
    trustcode: str
    sitecode: str


def _service(request: Request) -> Reporting:
    service: Reporting = request.app.state.service
    return service


def authorise(request: Request, raw: bool) -> None:
    """401 without a known bearer token; 403 when raw figures are asked without raw scope."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    scope = None
    if scheme.lower() == "bearer" and token:
        for known, known_scope in _service(request).tokens.items():
            if hmac.compare_digest(known.encode(), token.strip().encode()):
                scope = known_scope
    if scope is None:
        raise HTTPException(401, "a bearer token is required (Authorization: Bearer <token>)",
                            headers={"WWW-Authenticate": 'Bearer realm="ibest-reporting"'})
    if raw and scope != "raw":
        raise HTTPException(403, "raw figures need a token with the raw scope")


def _json_default(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else jsonable_encoder(value)


ENCODED_KEPT = 512
"""Encoded answers kept (least recently used dropped first): more than a dashboard's
distinct requests between two changes of the figures."""
GZIP_FROM = 1400
"""Answers at least this long (about one network packet) are sent gzipped to clients that
accept it: every trust's figures at national scale are 950 KB of JSON, 70 KB gzipped."""


@dataclass
class Encoded:
    """One answer as JSON, and gzipped once a client accepting gzip asks for it."""

    report: dict[str, Any]
    body: bytes
    gzipped: bytes | None = None


_ENCODED: OrderedDict[int, Encoded] = OrderedDict()


def _encoded(report: dict[str, Any]) -> Encoded:
    """The report as JSON. Reporting hands out the same answer object until the figures
    change, so its encoding (costly for every trust at national scale) is kept with it."""
    found = _ENCODED.get(id(report))
    if found is not None and found.report is report:
        _ENCODED.move_to_end(id(report))
        return found
    found = _ENCODED[id(report)] = Encoded(report, json.dumps(
        report, default=_json_default, ensure_ascii=False, allow_nan=False,
        separators=(",", ":")).encode())
    while len(_ENCODED) > ENCODED_KEPT:
        _ENCODED.popitem(last=False)
    return found


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header allows gzip (RFC 9110: `gzip;q=0` refuses it)."""
    for item in accept_encoding.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() in ("gzip", "x-gzip", "*"):
            weight = params.strip().lower().removeprefix("q=")
            try:
                return not params or float(weight) > 0
            except ValueError:
                return False
    return False


def _answer(request: Request, report: dict[str, Any], table: bool) -> Response:
    if table and "text/csv" in request.headers.get("accept", ""):
        return Response(to_csv(report_rows(report)), media_type="text/csv")
    encoded = _encoded(report)
    headers = {"Vary": "Accept-Encoding"}
    if len(encoded.body) < GZIP_FROM \
            or not accepts_gzip(request.headers.get("accept-encoding", "")):
        return Response(encoded.body, media_type="application/json", headers=headers)
    if encoded.gzipped is None:
        encoded.gzipped = gzip.compress(encoded.body, compresslevel=6, mtime=0)
    return Response(encoded.gzipped, media_type="application/json",
                    headers={**headers, "Content-Encoding": "gzip"})


async def _report(request: Request, raw: bool, build: Any, table: bool = True) -> Response:
    """Authorise, build the answer, map unknown places to 404 and malformed input to 422."""
    authorise(request, raw)
    try:
        return _answer(request, await build(_service(request)), table)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except Malformed as exc:
        raise HTTPException(422, str(exc)) from None


def routes() -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["reports"], responses=ERRORS)

    @router.get("/national", response_model=Report, responses=CSV,
                summary="National figures (exact; never disclosure-controlled)")
    async def national(request: Request, raw: Raw = False) -> Response:
        return await _report(request, raw, lambda s: s.national(raw))

    @router.get("/trusts", response_model=TrustsReport, responses=CSV,
                summary="Every trust with its figures (controlled unless raw)")
    async def trusts(request: Request, raw: Raw = False) -> Response:
        return await _report(request, raw, lambda s: s.trusts(raw))

    @router.get("/trusts/{trustcode}", response_model=TrustReport, responses=CSV,
                summary="One trust's figures and its sites' (controlled unless raw)")
    async def trust(request: Request, trustcode: str, raw: Raw = False) -> Response:
        return await _report(request, raw, lambda s: s.trust(trustcode, raw))

    @router.get("/trusts/{trustcode}/sites/{sitecode}", response_model=SiteReport,
                responses=CSV, summary="One site's figures (controlled unless raw)")
    async def site(request: Request, trustcode: str, sitecode: str,
                   raw: Raw = False) -> Response:
        return await _report(request, raw, lambda s: s.site(trustcode, sitecode, raw))

    @router.get(
        "/funnel/{figure}",
        summary="Funnel comparison of trusts against the national proportion",
        description="figure: followup_rate_month_3, followup_rate_month_12, "
                    "clinicians_completed (over enrolled) or improved_share (with measure and "
                    "timepoint). Per trust: value and denominator (disclosure-controlled unless "
                    "raw), outside_95 and outside_99_8 judged on the exact value against the "
                    "binomial limits for the exact denominator (raw also gives those "
                    "control_limits); `limits`: the plot's national line and 95% / 99.8% "
                    "limits by denominator. CSV with Accept: text/csv. "
                    "rmdq_improvement_month_12 and rmdq_improvement_month_3: each trust's "
                    "mean RMDQ improvement and 95% interval against the trial's and the "
                    "national one.",
    )
    async def funnel(
        request: Request, figure: str, raw: Raw = False,
        measure: Annotated[str | None, Query(description="For improved_share, e.g. rmdq")] = None,
        timepoint: Annotated[str | None, Query(description="For improved_share: group_end, "
                                                           "month_3 or month_12")] = None,
    ) -> Response:
        return await _report(request, raw,
                             lambda s: s.funnel(figure, measure, timepoint, raw))

    from .api_months import add_month_routes  # it builds on this module
    add_month_routes(router)
    return router
