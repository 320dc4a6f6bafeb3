"""A report as an HTTP answer: CSV (one row per figure), or JSON, gzipped for clients that
accept it when it is long. Reporting hands out the same answer until the figures change,
so its encoding (costly for every trust at national scale) is kept beside it, under the
answer's own key, in the views' bounded `encoded` cache."""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.responses import Response

from services.reporting.api.negotiation import CSV_TYPE, JSON, accepts_gzip
from services.reporting.domain.tables import report_rows, to_csv
from services.reporting.views import Answer, Encoded, Views

GZIP_FROM = 1400
"""Answers at least this long (about one network packet) are sent gzipped to clients that
accept it: every trust's figures at national scale are 950 KB of JSON, 70 KB gzipped."""


def _json_default(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else jsonable_encoder(value)


def json_body(report: dict[str, Any]) -> bytes:
    """The report as compact UTF-8 JSON (datetimes in ISO 8601; no NaN)."""
    return json.dumps(
        report,
        default=_json_default,
        ensure_ascii=False,
        allow_nan=False,
        separators=(",", ":"),
    ).encode()


def encoded(views: Views, report: dict[str, Any]) -> Encoded:
    """The report's JSON, kept under its answer's key (an answer not kept by the views,
    which every report is, would be encoded each time)."""
    if not isinstance(report, Answer):
        return Encoded(json_body(report))
    found = views.encoded.get(report.key)
    if found is None:
        found = Encoded(json_body(report))
        views.encoded.put(report.key, found, found.size())
    return found


def answer(views: Views, report: dict[str, Any], media: str, accept_encoding: str) -> Response:
    """The response for `report` in `media`: CSV, or JSON gzipped when long and accepted."""
    if media == CSV_TYPE:
        return Response(
            to_csv(report_rows(report)), media_type=CSV_TYPE, headers={"Vary": "Accept"}
        )
    found = encoded(views, report)
    headers = {"Vary": "Accept, Accept-Encoding"}
    if len(found.body) < GZIP_FROM or not accepts_gzip(accept_encoding):
        return Response(found.body, media_type=JSON, headers=headers)
    if found.gzipped is None:
        found.gzipped = gzip.compress(found.body, compresslevel=6, mtime=0)
        if isinstance(report, Answer):
            views.encoded.resize(report.key, found.size())
    return Response(found.gzipped, media_type=JSON, headers={**headers, "Content-Encoding": "gzip"})
