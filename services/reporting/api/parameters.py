"""The reporting API's path and query parameters as FastAPI annotations, with the
OpenAPI schemas that document them (the checks themselves are checks.py's, so a bad
value gets the application's own message)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import Path, Query

from services.reporting.checks import MONTH, SITE_RE, TRUST_RE
from services.reporting.domain.figures import MEASURE_NAMES, OUTCOME_TIMEPOINTS
from services.reporting.domain.funnel import FUNNEL_FIGURES


def only(*values: str) -> Callable[[dict[str, Any]], None]:
    """An OpenAPI schema for a path parameter checked by our code (so a bad one gets our
    message): a string among `values`."""

    def schema(s: dict[str, Any]) -> None:
        s.clear()
        s.update({"type": "string", "enum": list(values)})

    return schema


def pattern(regex: str, example: str) -> dict[str, Any]:
    """An OpenAPI schema addition: the whole value matches `regex`; `example` does."""
    return {"pattern": f"^{regex}$", "examples": [example]}


RawValue = Literal["true", "false"]
Raw = Annotated[
    RawValue,
    Query(
        description="`true` for exact figures below national "
        "level (needs the raw scope); `false` or absent "
        "for published ones."
    ),
]
TrustCode = Annotated[
    str,
    Path(
        description="ODS trust code: 3 ASCII letters or digits "
        "(lower case is upper-cased), e.g. RTH",
        json_schema_extra=pattern(TRUST_RE.pattern, "RTH"),
    ),
]
SiteCode = Annotated[
    str,
    Path(
        description="ODS site code: 5 ASCII letters or digits "
        "beginning with the trust's code, e.g. RTH08",
        json_schema_extra=pattern(SITE_RE.pattern, "RTH08"),
    ),
]
FUNNEL_ONLY = tuple(f for f in FUNNEL_FIGURES if f != "improved_share")
Measure = Annotated[
    Literal[MEASURE_NAMES],  # type: ignore[valid-type]
    Query(description="The measure, e.g. rmdq"),
]
Timepoint = Annotated[
    Literal[OUTCOME_TIMEPOINTS],  # type: ignore[valid-type]
    Query(description="group_end, month_3 or month_12"),
]
Figure = Annotated[
    str, Path(description="The funnel's figure", json_schema_extra=only(*FUNNEL_ONLY))
]
From = Annotated[
    str | None,
    Query(
        alias="from",
        description="First month, YYYY-MM",
        json_schema_extra=pattern(MONTH, "2025-04"),
    ),
]
To = Annotated[
    str | None,
    Query(
        alias="to", description="Last month, YYYY-MM", json_schema_extra=pattern(MONTH, "2025-09")
    ),
]
PACK_MONTH = r"20(1[5-9]|[2-9][0-9])-(0[1-9]|1[0-2])"
"""What the OpenAPI promises: a month from the programme's start (2015) on."""
PackFile = Annotated[
    str,
    Path(
        description="The month and format: YYYY-MM.pdf (A4, tagged), YYYY-MM.html or "
        "YYYY-MM.zip (the pack's tables as CSVs), e.g. 2026-11.pdf",
        json_schema_extra=pattern(PACK_MONTH + r"\.(pdf|html|zip)", "2026-11.pdf"),
    ),
]
TrustQuery = Annotated[
    str | None,
    Query(
        description="A trust's ODS code for its own pack; absent for the national pack",
        json_schema_extra=pattern(TRUST_RE.pattern, "RTH"),
    ),
]
