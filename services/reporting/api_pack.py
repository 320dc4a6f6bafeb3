"""`GET /v1/reports/monthly/{month}.{pdf|html|zip}`: the monthly report pack over HTTP.

Read scope (published figures only; the pack has no raw form). `?trust=RTH` gives one
trust's pack, none the national one. Drawing a pack takes a second or more, so it runs in
a worker thread, and the last packs drawn are kept per view of the figures (a board's
readers fetching the same pack cost one rendering).
"""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import Response

from ibest.backbone.tokens import Token
from services.reporting.api import _pattern, _service, accepting, negotiate, unprocessable
from services.reporting.cache import BoundedCache
from services.reporting.checks import MONTH, TRUST_RE, Malformed, NotFound
from services.reporting.pack import monthly_pack
from services.reporting.pack_render import MEDIA, file_name, render

PACK_FILE = re.compile(rf"(?P<month>{MONTH})\.(?P<extension>pdf|html|zip)")
PACK_MONTH = r"20(1[5-9]|[2-9][0-9])-(0[1-9]|1[0-2])"
"""What the OpenAPI promises: a month from the programme's start (2015) on."""
PACKS_KEPT = 16
PACK_BYTES_KEPT = 64 * 1024 * 1024
PACKS: BoundedCache[tuple[Any, ...], bytes] = BoundedCache(PACKS_KEPT, PACK_BYTES_KEPT)
PackAccess = Annotated[Token, Depends(accepting("trust"))]
PackFile = Annotated[
    str,
    Path(
        description="The month and format: YYYY-MM.pdf (A4, tagged), YYYY-MM.html or "
        "YYYY-MM.zip (the pack's tables as CSVs), e.g. 2026-11.pdf",
        json_schema_extra=_pattern(PACK_MONTH + r"\.(pdf|html|zip)", "2026-11.pdf"),
    ),
]
TrustQuery = Annotated[
    str | None,
    Query(
        description="A trust's ODS code for its own pack; absent for the national pack",
        json_schema_extra=_pattern(TRUST_RE.pattern, "RTH"),
    ),
]
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


def add_pack_routes(router: APIRouter) -> None:
    """Add the monthly pack route to the /v1 router."""

    @router.get(
        "/reports/monthly/{file}",
        response_class=Response,
        responses=PACK_RESPONSES,
        summary="The monthly report pack for programme boards (published figures only)",
        description="Headline funnel with the change since last month (only where neither "
        "value is suppressed), the funnel over time, classes and sites, follow-up rates "
        "against the trial's 85%, RMDQ improvement against the trial's interval, "
        "sustained sites, delivery surveys, the trusts' funnel plot, and the definitions "
        "(docs/figures.md). A month up to the current one; 404 for a month not yet begun.",
    )
    async def monthly(
        request: Request, token: PackAccess, file: PackFile, trust: TrustQuery = None
    ) -> Response:
        found = PACK_FILE.fullmatch(file)
        if found is None:
            raise unprocessable(
                "path", "file", f"{file[:40]!r} is not YYYY-MM.pdf, YYYY-MM.html or YYYY-MM.zip"
            )
        month, extension = found["month"], found["extension"]
        media = MEDIA[extension]
        if negotiate(request.headers.get("accept"), (media.split(";")[0],)) is None:
            raise HTTPException(406, f"this file is {media}, and the Accept header refuses it")
        reporting = _service(request)
        try:
            pack = await monthly_pack(reporting, reporting.names, month, trust)
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from None
        except Malformed as exc:
            where = "query" if exc.field == "trustcode" else "path"
            raise unprocessable(
                where, "trust" if exc.field == "trustcode" else "file", str(exc)
            ) from None
        key = ((await reporting.view()).key, month, pack.trustcode, extension)
        body = PACKS.get(key)
        if body is None:
            body = await asyncio.to_thread(render, pack, extension)
            PACKS.put(key, body, len(body))
        disposition = "inline" if extension != "zip" else "attachment"
        return Response(
            body,
            media_type=media,
            headers={
                "Content-Disposition": f'{disposition}; filename="{file_name(pack, extension)}"'
            },
        )
