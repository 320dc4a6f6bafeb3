"""CloudEvents as the spec says, in the contract itself: optional attributes and extensions
are tolerated (and not kept), `datacontenttype` defaults to JSON, and every broken rule has
its stable code. Consumers, the rebuild and the gateway run this one function, so they agree.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from shared.codes import RULE_CODES
from shared.envelope import BY_NAME, CONTRACT_ATTRIBUTES, ContractError, parse_event
from shared.examples import example

ROOT = Path(__file__).resolve().parents[2]


def raw(name: str = "patient.assessed") -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(example(BY_NAME[name]).to_json())
    return loaded


def codes(event: dict[str, Any] | bytes) -> dict[str, str]:
    body = event if isinstance(event, bytes) else json.dumps(event).encode()
    with pytest.raises(ContractError) as caught:
        parse_event(None, body)
    return {e.field: e.code for e in caught.value.errors}


@pytest.mark.parametrize(
    "extra",
    [
        {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
        {"myext": "anything", "n": 3, "flag": True, "nothing": None},
        {"subject": "patient/pt-1", "dataschema": "https://example.nhs.uk/s.json"},
    ],
)
def test_optional_attributes_and_extensions_are_tolerated_and_not_kept(
    extra: dict[str, Any],
) -> None:
    event = {**raw(), **extra}
    parsed = parse_event("ibest.v1.RTH.patient.assessed", json.dumps(event).encode())
    kept = json.loads(parsed.to_json())
    assert set(kept) <= CONTRACT_ATTRIBUTES and not set(extra) & set(kept)
    assert parsed == parse_event(None, json.dumps(raw()).encode())


def test_datacontenttype_defaults_to_json() -> None:
    event = raw()
    del event["datacontenttype"]
    parsed = parse_event(None, json.dumps(event).encode())
    assert parsed.datacontenttype == "application/json"
    assert json.loads(parsed.to_json())["datacontenttype"] == "application/json"


def test_extension_names_and_values_follow_the_spec() -> None:
    assert codes({**raw(), "Trace-Parent": "x"}) == {"Trace-Parent": "attribute-name"}
    assert codes({**raw(), "x" * 21: "x"}) == {"x" * 21: "attribute-name"}
    assert codes({**raw(), "myext": {"nested": 1}}) == {"myext": "attribute-value"}
    assert codes({**raw(), "datacontenttype": "text/xml"}) == {
        "datacontenttype": "not-allowed-value"
    }


def test_every_rule_has_its_stable_code() -> None:
    event = raw()
    assert codes({**event, "data": {**event["data"], "patient_ref": "943 476 5919"}}) == {
        "data.patient_ref": "nhs-number"
    }
    assert codes({**event, "data": {**event["data"], "measures": {"rmdq": 25}}}) == {
        "data.measures.rmdq": "out-of-range"
    }
    assert codes({**event, "data": {**event["data"], "measures": {}}}) == {
        "data.measures": "no-measure"
    }
    assert codes({**event, "sitecode": "RXF01"}) == {"sitecode": "wrong-site"}
    assert codes({**event, "id": "nope"}) == {"id": "not-a-uuid"}
    assert codes({**event, "time": "2026-03-02T09:30:00"}) == {"time": "time-without-offset"}
    assert codes({**event, "type": "uk.nhs.ibest.patient.assessed.v9"}) == {"type": "unknown-type"}
    assert codes({**event, "data": {**event["data"], "colour": "red"}}) == {
        "data.colour": "unknown-field"
    }
    enrolled = raw("clinician.enrolled")
    assert codes({**enrolled, "data": {**enrolled["data"], "course_version": "99"}}) == {
        "data.course_version": "unknown-course-version"
    }
    module = raw("module.started")
    assert codes({**module, "data": {**module["data"], "module_id": "m-nope"}}) == {
        "data.module_id": "unknown-module"
    }
    assert codes(b"[1]") == {"event": "not-an-object"}
    assert codes(b"{") == {"event": "not-json"}


def test_an_integer_of_thousands_of_digits_is_a_contract_error_not_a_crash() -> None:
    body = json.dumps(raw()).replace('"rmdq": 14', '"rmdq": ' + "9" * 5000).encode()
    assert b"9" * 5000 in body
    assert codes(body) == {"event": "not-json"}


def test_every_code_is_documented_in_docs_errors() -> None:
    text = (ROOT / "docs" / "errors.md").read_text()
    documented = set(re.findall(r"^\| `([a-z-]+)` \|", text, re.MULTILINE))
    assert set(RULE_CODES) <= documented, set(RULE_CODES) - documented


def test_a_resend_with_other_extensions_is_the_same_event_to_the_id_ledger() -> None:
    from ibest.backbone.ledger import content_digest

    first = parse_event(None, json.dumps({**raw(), "traceparent": "00-a-b-01"}).encode())
    again = parse_event(None, json.dumps({**raw(), "traceparent": "00-c-d-01"}).encode())
    assert content_digest(first) == content_digest(again)
