"""The keyed hashes every system shares (shared/keyed.py)."""

from __future__ import annotations

import hashlib
import hmac
import uuid

import pytest

from shared.identifiers import is_nhs_number
from shared.keyed import (
    clinician_pseudonym,
    keyed_event_id,
    keyed_reference,
    normalise_registration_number,
)

KEY = b"programme-key-for-tests"


def test_clinician_pseudonym_is_hmac_of_the_normalised_number() -> None:
    expected = hmac.new(KEY, b"PH123456", hashlib.sha256).hexdigest()[:32]
    assert clinician_pseudonym(KEY, "ph 123 456") == expected
    assert clinician_pseudonym(KEY, "PH123456") == expected
    assert normalise_registration_number(" 12a3456e ") == "12A3456E"


def test_pseudonym_depends_on_the_key() -> None:
    assert clinician_pseudonym(KEY, "1234567") != clinician_pseudonym(b"other", "1234567")


def test_empty_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="registration number"):
        clinician_pseudonym(KEY, "   ")
    with pytest.raises(ValueError, match="non-empty key"):
        keyed_reference(b"", "learner", "1")


def test_references_keep_kinds_apart_and_are_not_nhs_numbers() -> None:
    a = keyed_reference(KEY, "learner", "run1", "42")
    assert a != keyed_reference(KEY, "learner", "run142")
    assert len(a) == 32 and not is_nhs_number(a)


def test_event_ids_are_deterministic_keyed_uuids() -> None:
    one = keyed_event_id(KEY, "clinician.training_started", "ref", "v1", "0")
    assert one == keyed_event_id(KEY, "clinician.training_started", "ref", "v1", "0")
    assert one != keyed_event_id(b"another key", "clinician.training_started", "ref", "v1", "0")
    assert isinstance(one, uuid.UUID) and one.version == 5
