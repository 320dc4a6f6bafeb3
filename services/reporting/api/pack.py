"""`GET /v1/reports/monthly/{month}.{pdf|html|zip}`: the monthly report pack over HTTP.

Read scope (published figures only; the pack has no raw form). `?trust=RTH` gives one
trust's pack, none the national one. Drawing a pack takes a second or more, so it runs in
a worker thread, and the last packs drawn are kept per view of the figures (a board's
readers fetching the same pack cost one rendering), by the router of each app.
"""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response

from ibest.backbone.tokens import Token
from services.reporting.api.access import accepting, reporting_of
from services.reporting.api.errors import malformed, not_found, unprocessable
from services.reporting.api.negotiation import negotiate
from services.reporting.api.parameters import PackFile, TrustQuery
from services.reporting.api.schemas import PACK_RESPONSES
from services.reporting.cache import BoundedCache
from services.reporting.checks import MONTH, Malformed, NotFound
from services.reporting.pack import monthly_pack
from services.reporting.pack_render import MEDIA, file_name, render

PACK_FILE = re.compile(rf"(?P<month>{MONTH})\.(?P<extension>pdf|html|zip)")
PACKS_KEPT = 16
PACK_BYTES_KEPT = 64 * 1024 * 1024
PackAccess = Annotated[Token, Depends(accepting("trust"))]


def add_pack_routes(router: APIRouter) -> None:
    """Add the monthly pack route to the /v1 router, with its own cache of drawn packs."""
    packs: BoundedCache[tuple[Any, ...], bytes] = BoundedCache(PACKS_KEPT, PACK_BYTES_KEPT)

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
        reporting = reporting_of(request)
        try:
            pack = await monthly_pack(reporting, reporting.names, month, trust)
        except NotFound as exc:
            raise not_found(exc) from None
        except Malformed as exc:
            on_trust = exc.field == "trustcode"
            raise malformed(
                exc, "query" if on_trust else "path", "trust" if on_trust else "file"
            ) from None
        key = ((await reporting.view()).key, month, pack.trustcode, extension)
        body = packs.get(key)
        if body is None:
            body = await asyncio.to_thread(render, pack, extension)
            packs.put(key, body, len(body))
        disposition = "inline" if extension != "zip" else "attachment"
        return Response(
            body,
            media_type=media,
            headers={
                "Content-Disposition": f'{disposition}; filename="{file_name(pack, extension)}"'
            },
        )
