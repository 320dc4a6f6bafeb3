"""The forms' Prometheus metrics: what people asked of each page and what they got.

`page` is the route's template (`/c/{token}`, never the link itself: a link is a
credential and the label set stays small); `status` is the HTTP status answered. So an
operator sees forms answered (2xx, 3xx), refused (403 a forged or tampered link, 410 an
expired one, 422 answers to correct, 429 over the rate) and failing (5xx) without a log.
"""

from __future__ import annotations

from prometheus_client import Counter

RESPONSES = Counter(
    "ibest_forms_responses_total",
    "Answers of the forms' pages (static files included), by method, page (the route's "
    "template, never a link) and HTTP status.",
    ["method", "page", "status"],
)


def answered(method: str, page: str, status: int) -> None:
    """Count one answer of a page."""
    RESPONSES.labels(method, page, str(status)).inc()
