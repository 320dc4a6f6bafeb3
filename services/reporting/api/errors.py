"""Where the application's domain errors become HTTP statuses: the edge, and only here.

The use cases raise `NotFound` (an unknown place or figure: 404) and `Malformed` (a bad
parameter: 422 in FastAPI's own shape, so every 422 of the API has one body schema)."""

from __future__ import annotations

from fastapi import HTTPException

from ibest.backbone.problems import from_http_exception
from services.reporting.checks import Malformed, NotFound


def unprocessable(where: str, name: str, message: str, kind: str = "value_error") -> HTTPException:
    """A 422 in FastAPI's own shape, so every 422 of the API has one body schema."""
    return HTTPException(422, [{"loc": [where, name], "msg": message, "type": kind}])


def not_found(exc: NotFound) -> HTTPException:
    """404: an unknown trust, site, figure or month (the message says which)."""
    return HTTPException(404, str(exc))


def malformed(exc: Malformed, where: str, name: str | None = None) -> HTTPException:
    """422 for a parameter that cannot be valid, at `where` (path or query) under `name`
    (the parameter as the client sent it; the error's field when None)."""
    return unprocessable(where, name or exc.field, str(exc))


def error_size(refused: HTTPException) -> int:
    """The bytes of the problem details body the runtime sends for `refused`."""
    return len(from_http_exception(refused).body)
