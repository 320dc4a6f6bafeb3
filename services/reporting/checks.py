"""The reporting input checks: what a request may ask for, judged before any read.

Only parameters that pass these form cache keys, so no request can fill a cache with
answers to questions that cannot be valid.
"""

from __future__ import annotations

import re

from services.reporting.domain.figures import MEASURE_NAMES, OUTCOME_TIMEPOINTS

TRUST_RE = re.compile(r"[A-Za-z0-9]{3}")
SITE_RE = re.compile(r"[A-Za-z0-9]{5}")
"""Codes are checked with a full match on the text as given, ASCII letters and digits only;
lower-case ASCII is accepted and upper-cased after the check (`rth` is RTH), so `QAT\n` or
`ﬀx` (which `.upper()` would turn into `FFX`) are refused."""
MONTH = r"[0-9]{4}-(0[1-9]|1[0-2])"
MONTH_RE = re.compile(f"^{MONTH}$")


class NotFound(LookupError):
    """An unknown trust or site (HTTP 404)."""


class Malformed(ValueError):
    """A code or parameter that cannot be valid (HTTP 422); `field` names it."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def check_trust(trustcode: str) -> str:
    if not TRUST_RE.fullmatch(trustcode):
        raise Malformed(
            f"{trustcode[:40]!r} is not an ODS trust code: 3 ASCII letters or "
            "digits, for example RTH",
            "trustcode",
        )
    return trustcode.upper()


def check_site(trustcode: str, sitecode: str) -> str:
    if not SITE_RE.fullmatch(sitecode):
        raise Malformed(
            f"{sitecode[:40]!r} is not an ODS site code: 5 ASCII letters or "
            "digits beginning with the trust's code, for example RTH08",
            "sitecode",
        )
    code = sitecode.upper()
    if not code.startswith(trustcode):
        raise NotFound(
            f"site {code} is not a site of trust {trustcode} "
            "(a site's code begins with its trust's code)"
        )
    return code


def check_funnel_parameters(figure: str, measure: str | None, timepoint: str | None) -> None:
    """improved_share needs a known measure and timepoint; the other figures take neither
    (an ignored parameter would only make distinct requests for the same answer)."""
    if figure != "improved_share":
        for name, value in (("measure", measure), ("timepoint", timepoint)):
            if value is not None:
                raise Malformed(
                    f"the funnel of {figure} takes no {name} (only improved_share does)", name
                )
        return
    if measure not in MEASURE_NAMES:
        raise Malformed(
            f"improved_share needs a measure, one of {', '.join(MEASURE_NAMES)}", "measure"
        )
    if timepoint not in OUTCOME_TIMEPOINTS:
        raise Malformed(
            f"improved_share needs a timepoint, one of {', '.join(OUTCOME_TIMEPOINTS)}", "timepoint"
        )


def check_month(name: str, value: str | None) -> str | None:
    if value is not None and not MONTH_RE.match(value):
        raise Malformed(f"{name}={value[:40]!r} is not a month: YYYY-MM, for example 2025-04", name)
    return value
