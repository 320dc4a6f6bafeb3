"""Content negotiation for the reporting API: which media type an `Accept` header prefers
(RFC 9110 12.5.1) and whether `Accept-Encoding` allows gzip. Pure functions of the
headers, so every route negotiates the same way."""

from __future__ import annotations

JSON = "application/json"
CSV_TYPE = "text/csv"


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
