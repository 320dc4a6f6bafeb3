"""NHS identifiers and pseudonymous references, validated as the contract requires."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

TRUST_CODE_PATTERN = r"^[A-Z0-9]{3}$"
SITE_CODE_PATTERN = r"^[A-Z0-9]{5}$"
# Opaque references: letters, digits and a few separators; never whitespace or '@'.
REF_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$"
REF_MAX_LENGTH = 64

TrustCode = Annotated[str, StringConstraints(pattern=TRUST_CODE_PATTERN)]
SiteCode = Annotated[str, StringConstraints(pattern=SITE_CODE_PATTERN)]


def is_nhs_number(value: str) -> bool:
    """True when `value` is a valid NHS number: 10 digits, last one the Modulus 11 check.

    Spaces and hyphens are ignored, because trusts write NHS numbers as '943 476 5919'.
    """
    digits = re.sub(r"[\s-]", "", value)
    if not re.fullmatch(r"\d{10}", digits):
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(digits[9])


def _not_nhs_number(value: str) -> str:
    if is_nhs_number(value):
        raise ValueError(
            "is a valid NHS number, which identifies a patient; "
            "send the trust's pseudonymous reference (a keyed hash) instead"
        )
    return value


Ref = Annotated[str, StringConstraints(pattern=REF_PATTERN, max_length=REF_MAX_LENGTH)]
"""A pseudonymous reference (clinician, class, module): opaque, bounded, no personal data."""

PatientRef = Annotated[Ref, AfterValidator(_not_nhs_number)]
"""A patient's pseudonymous reference; an NHS number is refused as identifying."""
