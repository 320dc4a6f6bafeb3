"""The event contract: examples valid, every broken rule rejected with its field named."""

from __future__ import annotations

import json
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no types-jsonschema in the dev deps
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ibest import contract_docs
from shared.envelope import (
    BY_NAME,
    EVENT_TYPES,
    MAX_EVENT_BYTES,
    ContractError,
    EventType,
    parse_event,
)
from shared.examples import example
from shared.identifiers import is_nhs_number
from shared.measures import MEASURES
from tests.strategies import valid_nhs_numbers


def raw_example(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(example(BY_NAME[name]).to_json())
    return loaded


def reject(raw: dict[str, Any] | bytes, subject: str | None = None) -> ContractError:
    body = raw if isinstance(raw, bytes) else json.dumps(raw).encode()
    with pytest.raises(ContractError) as caught:
        parse_event(subject, body)
    return caught.value


def fields(err: ContractError) -> set[str]:
    return {e.field for e in err.errors}


@pytest.mark.parametrize("etype", EVENT_TYPES, ids=lambda t: t.name)
def test_every_example_is_valid_on_its_subject_and_against_its_schema(etype: EventType) -> None:
    event = example(etype)
    parsed = parse_event(etype.subject("RTH"), event.to_json())
    assert parsed == event
    jsonschema.validate(json.loads(event.to_json()), contract_docs.event_schema(etype))


def test_committed_contract_docs_are_current() -> None:
    assert contract_docs.stale() == []


def test_nhs_number_check_digit() -> None:
    assert is_nhs_number("9434765919")
    assert is_nhs_number("943 476 5919")
    assert not is_nhs_number("9434765918")  # wrong check digit
    assert not is_nhs_number("943476591")  # nine digits


@given(valid_nhs_numbers())
def test_an_nhs_number_is_refused_as_patient_ref(number: str) -> None:
    raw = raw_example("patient.assessed")
    raw["data"]["patient_ref"] = number
    err = reject(raw)
    assert fields(err) == {"data.patient_ref"}
    assert "NHS number" in str(err)


@given(st.sampled_from(sorted(MEASURES)), st.floats(allow_nan=False, allow_infinity=False))
def test_out_of_range_scores_are_refused(measure: Any, value: float) -> None:
    spec = MEASURES[measure]
    raw = raw_example("patient.assessed")
    raw["data"]["measures"] = {measure.value: value}
    in_range = spec.minimum <= value <= spec.maximum and (not spec.integer or value == int(value))
    if in_range:
        assert parse_event(None, json.dumps(raw).encode()).data.measures.present() == {
            measure: value
        }
    else:
        assert fields(reject(raw)) == {f"data.measures.{measure.value}"}


PAYLOAD_BREAKS = [
    ("clinician.enrolled", "profession", "surgeon"),
    ("clinician.enrolled", "clinician_ref", ""),
    ("clinician.enrolled", "clinician_ref", "has spaces in it"),
    ("clinician.enrolled", "clinician_ref", "x" * 65),
    ("clinician.enrolled", "contact_email", "not-an-email"),
    ("module.completed", "quiz_score", 101),
    ("module.completed", "quiz_score", "85"),
    ("clinician.intention_reported", "confidence", 11),
    ("clinician.intention_reported", "intends_to_deliver", "yes"),
    ("clinician.delivery_reported", "groups_delivered", -1),
    ("class.started", "planned_sessions", 7),
    ("class.started", "facilitator_refs", []),
    ("patient.assessed", "timepoint", "month_6"),
    ("patient.assessed", "measures", {}),
    ("patient.assessed", "measures", {"oswestry": 10}),
    ("patient.assessed", "measures", {"rmdq": 12.5}),
    ("patient.assessed", "measures", {"pain_nrs": True}),
]
"""(event name, field, bad value): one broken rule each in an otherwise valid example."""


@given(
    st.sampled_from([t.name for t in EVENT_TYPES]),
    st.sampled_from(
        [
            ("specversion", "0.3"),
            ("id", "not-a-uuid"),
            ("id", 42),
            ("source", ""),
            ("time", "2026-03-02T09:30:00"),
            ("time", "yesterday"),
            ("datacontenttype", "text/xml"),
            ("trustcode", "rth"),
            ("trustcode", "RT"),
            ("sitecode", "RTH0"),
            ("sitecode", 12345),
        ]
    ),
)
def test_broken_envelope_attributes_name_the_attribute(name: str, change: tuple[str, Any]) -> None:
    raw = raw_example(name)
    key, value = change
    raw[key] = value
    assert key in fields(reject(raw))


@pytest.mark.parametrize(("name", "key", "value"), PAYLOAD_BREAKS)
def test_broken_payload_fields_name_the_field(name: str, key: str, value: Any) -> None:
    raw = raw_example(name)
    raw["data"][key] = value
    assert any(f.startswith(f"data.{key}") for f in fields(reject(raw)))


@given(st.sampled_from([t.name for t in EVENT_TYPES]), st.data())
def test_missing_required_fields_are_named(name: str, data: st.DataObject) -> None:
    raw = raw_example(name)
    required = BY_NAME[name].payload.model_json_schema().get("required", [])
    where = data.draw(st.sampled_from(["envelope", "data"] if required else ["envelope"]))
    if where == "data":
        key = data.draw(st.sampled_from(required))
        del raw["data"][key]
        assert f"data.{key}" in fields(reject(raw))
    else:
        key = data.draw(
            st.sampled_from(
                [
                    "specversion",
                    "id",
                    "source",
                    "type",
                    "time",
                    "trustcode",
                    "sitecode",
                    "data",
                ]
            )
        )
        del raw[key]
        assert key in fields(reject(raw))
        assert {e.code for e in reject(raw).errors} <= {"missing", "unknown-type"}


@settings(max_examples=50)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash_the_parser(body: bytes) -> None:
    with pytest.raises(ContractError):
        parse_event("ibest.v1.RTH.clinician.enrolled", body)


def test_subject_trust_must_match_envelope() -> None:
    err = reject(raw_example("clinician.enrolled"), "ibest.v1.RXF.clinician.enrolled")
    assert fields(err) == {"subject"}
    err = reject(raw_example("clinician.enrolled"), "ibest.v1.RTH.module.started")
    assert fields(err) == {"subject"}


def test_site_must_belong_to_trust_and_size_is_bounded() -> None:
    raw = raw_example("class.started")
    raw["sitecode"] = "RXF01"
    assert fields(reject(raw)) == {"sitecode"}
    raw = raw_example("class.started")
    raw["source"] = "x" * 200
    raw["data"]["facilitator_refs"] = ["a" * 64] * 20
    big = json.dumps(raw).encode() + b" " * MAX_EVENT_BYTES
    assert fields(reject(big)) == {"event"}


def test_unknown_type_and_version_are_named() -> None:
    raw = raw_example("module.started")
    raw["type"] = "uk.nhs.ibest.module.started.v2"
    err = reject(raw)
    assert "type" in fields(err) and "unknown event type or version" in str(err)
