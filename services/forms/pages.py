"""Rendering pages: Jinja2 templates on the NHS.UK design system, and the headers every page
carries (a strict Content-Security-Policy, no caching, no referrer: a link is a credential
and must not leak to another site through the Referer header)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

HERE = Path(__file__).parent
STATIC = HERE / "static"
VENDORED_CSS = STATIC / "vendor" / "nhsuk-frontend.min.css"
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
ENV = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def page(
    template: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any
) -> HTMLResponse:
    html = ENV.get_template(template).render(**context)
    return HTMLResponse(html, status, headers={**HEADERS, **(headers or {})})


def problem_page(status: int, title: str, message: str) -> HTMLResponse:
    """A plain-English error page (403, 404, 410, 422, 429, 500): never a stack trace."""
    extra = {"Retry-After": "10"} if status == 429 else {}
    return page("problem.html", status, extra, title=title, message=message)
