"""The reporting API's response models and documented responses: what /openapi.json
promises (the contract tests hold the service to it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from services.reporting.api.negotiation import CSV_TYPE
from services.reporting.figures_doc import glossary

FIGURES_DOC = (
    "Figures keyed by name (docs/figures.md): counts, "
    "`*_by_profession`, rates, and `outcomes.<measure>.<timepoint>` with n, "
    "mean_change, improved_share. Below national level, unless raw: 0 stays 0, "
    '1-7 is "*", other counts are rounded to the nearest 5.\n\n' + glossary()
)


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


PACK_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "application/pdf": {"schema": {"type": "string", "format": "binary"}},
            "text/html": {"schema": {"type": "string"}},
            "application/zip": {"schema": {"type": "string", "format": "binary"}},
        },
        "description": "The pack, in the format the file name's extension asks for",
    }
}


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
