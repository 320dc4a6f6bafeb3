"""NHS identifiers and pseudonymous references, validated as the contract requires."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator, StringConstraints
from pydantic_core import PydanticCustomError

TRUST_CODE_PATTERN = r"^[A-Z0-9]{3}$"
SITE_CODE_PATTERN = r"^[A-Z0-9]{5}$"
# Opaque references: letters, digits and a few separators; never whitespace or '@'.
REF_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$"
REF_MAX_LENGTH = 64

TrustCode = Annotated[str, StringConstraints(pattern=TRUST_CODE_PATTERN)]
SiteCode = Annotated[str, StringConstraints(pattern=SITE_CODE_PATTERN)]


_SEPARATED_TEN_DIGITS = re.compile(r"[^A-Za-z0-9]*(?:[0-9][^A-Za-z0-9]*){10}")
"""Ten ASCII digits and nothing else but separators (any character that is neither a letter
nor a digit) before, between or after them: '9434765919', '943 476 5919', '943.476.5919',
'943_476_5919', '943:476:5919'. A letter is never a separator, so a hashed reference is
judged whole: a hex digest that merely contains ten digits in a row is not an NHS number."""


def is_nhs_number(value: str) -> bool:
    """True when `value` is a valid NHS number: 10 digits, last one the Modulus 11 check.

    However the digits are separated, because trusts write NHS numbers as '943 476 5919',
    '943-476-5919' or '943.476.5919'. The whole value must be those digits and separators;
    no substring is searched (see `_SEPARATED_TEN_DIGITS`).
    """
    if not _SEPARATED_TEN_DIGITS.fullmatch(value):
        return False
    digits = re.sub(r"[^0-9]", "", value)
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(digits[9])


def _not_nhs_number(value: object) -> object:
    """Runs before the reference's own pattern, so '943 476 5919' (whitespace breaks the
    pattern too) is refused for what it is: an NHS number."""
    if isinstance(value, str) and is_nhs_number(value):
        raise PydanticCustomError(
            "nhs-number",
            "is a valid NHS number, which identifies a patient; "
            "send the trust's pseudonymous reference (a keyed hash) instead",
        )
    return value


Ref = Annotated[str, StringConstraints(pattern=REF_PATTERN, max_length=REF_MAX_LENGTH)]
"""A pseudonymous reference (clinician, class, module): opaque, bounded, no personal data."""

PatientRef = Annotated[Ref, BeforeValidator(_not_nhs_number)]
"""A patient's pseudonymous reference; an NHS number is refused as identifying."""
