"""No score outside its measure's range or kind gets past the contract (shared.events)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.envelope import ContractError, parse_event
from shared.measures import MEASURES, Measure, range_error
from tests.harness import cloud_event

SUBJECT = "ibest.v1.RTH.patient.assessed"


def body(measures: dict[str, object], patient_ref: str = "p-1") -> bytes:
    return json.dumps(
        cloud_event(
            "patient.assessed",
            {"patient_ref": patient_ref, "timepoint": "baseline", "measures": measures},
        )
    ).encode()


def valid(measure: Measure, value: float) -> bool:
    spec = MEASURES[measure]
    return (
        math.isfinite(value)
        and spec.minimum <= value <= spec.maximum
        and (not spec.integer or value == int(value))
    )


@given(
    st.sampled_from(list(Measure)),
    st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**6), 10**6)),
)
def test_a_score_is_accepted_only_within_its_range_and_kind(measure: Measure, value: float) -> None:
    try:
        event = parse_event(SUBJECT, body({measure.value: value}))
    except ContractError as exc:
        assert not valid(measure, value)
        assert all(e.field.startswith(f"data.measures.{measure.value}") for e in exc.errors)
    else:
        assert valid(measure, value)
        assert event.data.measures.present() == {measure: value}


@pytest.mark.parametrize(
    ("measures", "field", "words"),
    [
        ({"rmdq": 25}, "data.measures.rmdq", "must be from 0 to 24, got 25"),
        ({"pain_nrs": -1}, "data.measures.pain_nrs", "must be from 0 to 10"),
        ({"pseq": 7.5}, "data.measures.pseq", "whole number"),
        ({"von_korff_pain": 100.5}, "data.measures.von_korff_pain", "from 0 to 100"),
        ({"psfs": True}, "data.measures.psfs", "number"),
        ({"oswestry": 20}, "data.measures.oswestry", "is not a field"),
        ({}, "data.measures", "at least one measure"),
    ],
)
def test_each_broken_rule_is_named(measures: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(ContractError) as caught:
        parse_event(SUBJECT, body(measures))
    assert any(e.field.startswith(field) and words in e.rule for e in caught.value.errors), (
        caught.value
    )


def test_an_nhs_number_is_refused_as_a_patient_reference() -> None:
    with pytest.raises(ContractError, match=r"data.patient_ref: is a valid NHS number"):
        parse_event(SUBJECT, body({"rmdq": 3}, patient_ref="9434765919"))
    parse_event(SUBJECT, body({"rmdq": 3}, patient_ref="9434765918"))  # check digit wrong


def test_infinity_is_a_range_error_not_a_crash() -> None:
    assert range_error(Measure.RMDQ, math.inf) == "rmdq must be a finite number from 0 to 24"
