"""HTTP routes of the reporting service (OpenAPI at /docs and /openapi.json).

Every route needs a bearer token from IBEST_REPORTING_TOKENS; `raw=true` needs the raw
scope, and every request that uses it is written to the audit log (ibest.backbone.audit)
before its answer is sent. JSON by default, CSV with `Accept: text/csv`. Checks run in this
order: token (401), parameters (422: unknown, repeated or invalid), scope (403), `Accept`
(406), then the place (404 or 422).
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from ibest.backbone.problems import from_http_exception
from ibest.backbone.tokens import Token, matching
from services.reporting.cache import BoundedCache, deep_size
from services.reporting.checks import SITE_RE, TRUST_RE, Malformed, NotFound
from services.reporting.domain.figures import MEASURE_NAMES, OUTCOME_TIMEPOINTS
from services.reporting.domain.funnel import COMPARISON_FIGURES, FUNNEL_FIGURES
from services.reporting.domain.tables import report_rows, to_csv
from services.reporting.figures_doc import glossary
from services.reporting.reports import Reporting

log = logging.getLogger(__name__)
RawValue = Literal["true", "false"]
Raw = Annotated[
    RawValue,
    Query(
        description="`true` for exact figures below national "
        "level (needs the raw scope); `false` or absent "
        "for published ones."
    ),
]
FUNNEL_ONLY = tuple(f for f in FUNNEL_FIGURES if f != "improved_share")
FIGURES_DOC = (
    "Figures keyed by name (docs/figures.md): counts, "
    "`*_by_profession`, rates, and `outcomes.<measure>.<timepoint>` with n, "
    "mean_change, improved_share. Below national level, unless raw: 0 stays 0, "
    '1-7 is "*", other counts are rounded to the nearest 5.\n\n' + glossary()
)
JSON = "application/json"
CSV_TYPE = "text/csv"


def _problem(description: str) -> dict[str, Any]:
    """An error response: problem details (ibest.backbone.problems documents the body)."""
    return {"description": description}


ERRORS: dict[int | str, dict[str, Any]] = {
    401: _problem("No bearer token, or an unknown one (with WWW-Authenticate: Bearer)"),
    403: _problem("raw=true without the raw scope"),
    404: _problem("Unknown trust, site or funnel figure (the message says which)"),
    406: _problem("The Accept header allows none of the answer's media types"),
    503: _problem("raw=true could not be recorded in the audit log, so nothing is sent"),
    # 422: added by FastAPI to every route with parameters; our own checks raise it in
    # FastAPI's shape, and the runtime answers both as problem details with errors[].
}
CSV: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {CSV_TYPE: {"schema": {"type": "string"}}},
        "description": "The report (JSON, or CSV with Accept: text/csv)",
    }
}


def _only(*values: str) -> Callable[[dict[str, Any]], None]:
    """An OpenAPI schema for a path parameter checked by our code (so a bad one gets our
    message): a string among `values`."""

    def schema(s: dict[str, Any]) -> None:
        s.clear()
        s.update({"type": "string", "enum": list(values)})

    return schema


def _pattern(pattern: str, example: str) -> dict[str, Any]:
    return {"pattern": f"^{pattern}$", "examples": [example]}


TrustCode = Annotated[
    str,
    Path(
        description="ODS trust code: 3 ASCII letters or digits "
        "(lower case is upper-cased), e.g. RTH",
        json_schema_extra=_pattern(TRUST_RE.pattern, "RTH"),
    ),
]
SiteCode = Annotated[
    str,
    Path(
        description="ODS site code: 5 ASCII letters or digits "
        "beginning with the trust's code, e.g. RTH08",
        json_schema_extra=_pattern(SITE_RE.pattern, "RTH08"),
    ),
]


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


class NationalProportion(BaseModel):
    value: float | None
    numerator: int
    denominator: int


class FunnelPoint(BaseModel):
    trustcode: str
    value: float | str | None = Field(
        description='Controlled ("*" for 1-7; to the '
        "precision of its rounded denominator) "
        "unless raw."
    )
    denominator: int | str = Field(description='Controlled ("*" for 1-7) unless raw.')
    control_limits: dict[str, dict[str, float]] | None = Field(
        default=None, description="Only with raw=true: the limits for the exact denominator."
    )
    outside_95: bool | str = Field(
        description="Judged on the exact value against the limits "
        'for the exact denominator; "*" when the '
        "value is."
    )
    outside_99_8: bool | str = Field(description="As outside_95, at 99.8%.")


class LimitPoint(BaseModel):
    denominator: int
    national: float
    lower_95: float
    upper_95: float
    lower_99_8: float
    upper_99_8: float


class Funnel(BaseModel):
    as_of: datetime | None
    figure: str
    measure: str | None
    timepoint: str | None
    raw: bool
    national: NationalProportion
    trusts: list[FunnelPoint]
    limits: list[LimitPoint] = Field(
        description="The plot's lines: the national value and "
        "its 95% and 99.8% limits by denominator."
    )


class TrialBand(BaseModel):
    reference: str
    timepoint: str
    improvement: float
    ci_low: float
    ci_high: float
    followup_completeness: float


class Improvement(BaseModel):
    n: int | str = Field(description='Exact nationally; controlled ("*" for 1-7) below.')
    improvement: float | str | None
    ci_low: float | str | None
    ci_high: float | str | None
    vs_trial: str | None = Field(
        default=None, description='month_12 only: consistent, below or above ("*" if hidden)'
    )


class ComparisonPoint(Improvement):
    trustcode: str
    vs_national: str | None


class Comparison(BaseModel):
    as_of: datetime | None
    figure: str
    timepoint: str
    raw: bool
    trial: TrialBand
    national: Improvement
    trusts: list[ComparisonPoint]


def _service(request: Request) -> Reporting:
    service: Reporting = request.app.state.service
    return service


def unprocessable(where: str, name: str, message: str, kind: str = "value_error") -> HTTPException:
    """A 422 in FastAPI's own shape, so every 422 of the API has one body schema."""
    return HTTPException(422, [{"loc": [where, name], "msg": message, "type": kind}])


bearer_scheme = HTTPBearer(auto_error=False, description="A token from IBEST_REPORTING_TOKENS")


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Token:
    """401 without a known bearer token."""
    given = credentials.credentials.strip() if credentials else None
    token = matching(_service(request).tokens, given)
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


def _quality(params: list[str]) -> float | None:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return None
            return q if 0 <= q <= 1 else None
    return 1.0


def negotiate(accept: str | None, offers: tuple[str, ...]) -> str | None:
    """The offered media type the Accept header prefers (RFC 9110 12.5.1): case-insensitive,
    the most specific matching range sets each offer's quality, q=0 refuses it, ties go to
    the first offer; no header means the first offer; None when nothing is acceptable."""
    if accept is None or not accept.strip():
        return offers[0]
    ranges: list[tuple[str, str, float]] = []
    for item in accept.split(","):
        media, *params = item.split(";")
        kind, _, sub = media.strip().lower().partition("/")
        q = _quality(params)
        if kind and sub and q is not None:
            ranges.append((kind, sub, q))
    best: tuple[float, str] | None = None
    for offer in offers:
        kind, _, sub = offer.partition("/")
        found: tuple[int, float] | None = None
        for r_kind, r_sub, q in ranges:
            if (r_kind, r_sub) == (kind, sub):
                specificity = 2
            elif r_kind == kind and r_sub == "*":
                specificity = 1
            elif (r_kind, r_sub) == ("*", "*"):
                specificity = 0
            else:
                continue
            if found is None or specificity > found[0]:
                found = (specificity, q)
        if found is not None and found[1] > 0 and (best is None or found[1] > best[0]):
            best = (found[1], offer)
    return None if best is None else best[1]


def _json_default(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else jsonable_encoder(value)


ENCODED_KEPT = 512
"""Encoded answers kept (least recently used dropped first): more than a dashboard's
distinct requests between two changes of the figures."""
ENCODED_BYTES_KEPT = 64 * 1024 * 1024
"""Bytes of encoded answers kept: each counts its JSON, the answer object it keeps alive as
the Python objects it is (`deep_size`), and its gzipped copy."""
GZIP_FROM = 1400
"""Answers at least this long (about one network packet) are sent gzipped to clients that
accept it: every trust's figures at national scale are 950 KB of JSON, 70 KB gzipped."""


@dataclass
class Encoded:
    """One answer as JSON, and gzipped once a client accepting gzip asks for it."""

    report: dict[str, Any]
    body: bytes
    gzipped: bytes | None = None


ENCODED: BoundedCache[int, Encoded] = BoundedCache(ENCODED_KEPT, ENCODED_BYTES_KEPT)


def _encoded(report: dict[str, Any]) -> Encoded:
    """The report as JSON. Reporting hands out the same answer object until the figures
    change, so its encoding (costly for every trust at national scale) is kept with it."""
    found = ENCODED.get(id(report))
    if found is not None and found.report is report:
        return found
    found = Encoded(
        report,
        json.dumps(
            report,
            default=_json_default,
            ensure_ascii=False,
            allow_nan=False,
            separators=(",", ":"),
        ).encode(),
    )
    return ENCODED.put(id(report), found, len(found.body) + deep_size(report))


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


def _answer(request: Request, report: dict[str, Any], media: str) -> Response:
    if media == CSV_TYPE:
        return Response(
            to_csv(report_rows(report)), media_type=CSV_TYPE, headers={"Vary": "Accept"}
        )
    encoded = _encoded(report)
    headers = {"Vary": "Accept, Accept-Encoding"}
    if len(encoded.body) < GZIP_FROM or not accepts_gzip(
        request.headers.get("accept-encoding", "")
    ):
        return Response(encoded.body, media_type=JSON, headers=headers)
    if encoded.gzipped is None:
        encoded.gzipped = gzip.compress(encoded.body, compresslevel=6, mtime=0)
        ENCODED.resize(id(report), len(encoded.body) + deep_size(report) + len(encoded.gzipped))
    return Response(
        encoded.gzipped, media_type=JSON, headers={**headers, "Content-Encoding": "gzip"}
    )


async def _report(
    request: Request,
    token: Token,
    raw: RawValue,
    build: Callable[[Reporting, bool], Any],
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
    try:
        response = _answer(request, await build(_service(request), exact), media)
    except NotFound as exc:
        refusal = HTTPException(404, str(exc))
    except Malformed as exc:
        where = "path" if exc.field in ("trustcode", "sitecode") else "query"
        refusal = unprocessable(where, exc.field, str(exc))
    else:
        await _audit(request, token, exact, response.status_code, len(response.body))
        return response
    await _audit(request, token, exact, refusal.status_code, _error_size(refusal))
    raise refusal


def _error_size(refusal: HTTPException) -> int:
    """The bytes of the problem details body the runtime sends for `refusal`."""
    return len(from_http_exception(refusal).body)


async def _audit(request: Request, token: Token, exact: bool, status: int, size: int) -> None:
    """Record a raw request before answering; if the log cannot be written, refuse (503)."""
    audit = _service(request).audit
    if not exact or audit is None:
        return
    try:
        await audit.raw_report(token.id, request.url.path, request.url.query, status, size)
    except Exception:
        log.exception("audit log not written; raw answer withheld (token id %s)", token.id)
        raise HTTPException(
            503, "the audit log could not be written, so raw figures are not sent; try again later"
        ) from None


OnlyRaw = Annotated[Token, Depends(accepting("raw"))]
FunnelAccess = Annotated[Token, Depends(accepting("raw", "measure", "timepoint"))]
Measure = Annotated[
    Literal[MEASURE_NAMES],  # type: ignore[valid-type]
    Query(description="The measure, e.g. rmdq"),
]
Timepoint = Annotated[
    Literal[OUTCOME_TIMEPOINTS],  # type: ignore[valid-type]
    Query(description="group_end, month_3 or month_12"),
]
Figure = Annotated[
    str, Path(description="The funnel's figure", json_schema_extra=_only(*FUNNEL_ONLY))
]


def _comparison_route(figure: str) -> Callable[..., Any]:
    async def compare(request: Request, token: OnlyRaw, raw: Raw = "false") -> Response:
        return await _report(request, token, raw, lambda s, r: s.comparison(figure, r))

    return compare


def routes() -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["reports"], responses=ERRORS)

    @router.get(
        "/national",
        response_model=Report,
        responses=CSV,
        summary="National figures (exact; never disclosure-controlled)",
    )
    async def national(request: Request, token: OnlyRaw, raw: Raw = "false") -> Response:
        return await _report(request, token, raw, lambda s, r: s.national(r))

    @router.get(
        "/trusts",
        response_model=TrustsReport,
        responses=CSV,
        summary="Every trust with its figures (controlled unless raw)",
    )
    async def trusts(request: Request, token: OnlyRaw, raw: Raw = "false") -> Response:
        return await _report(request, token, raw, lambda s, r: s.trusts(r))

    @router.get(
        "/trusts/{trustcode}",
        response_model=TrustReport,
        responses=CSV,
        summary="One trust's figures and its sites' (controlled unless raw)",
    )
    async def trust(
        request: Request, token: OnlyRaw, trustcode: TrustCode, raw: Raw = "false"
    ) -> Response:
        return await _report(request, token, raw, lambda s, r: s.trust(trustcode, r))

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
        return await _report(request, token, raw, lambda s, r: s.site(trustcode, sitecode, r))

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
        return await _report(
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
        return await _report(request, token, raw, lambda s, r: s.funnel(figure, None, None, r))

    from services.reporting.api_months import add_month_routes  # it builds on this module

    add_month_routes(router)
    from services.reporting.api_pack import add_pack_routes  # likewise

    add_pack_routes(router)
    return router
