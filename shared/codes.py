"""The stable codes of the contract's rules: what an integration engine matches on.

Every `FieldError` carries one of these (`code`); its `rule` text is for people and may be
reworded, the code never changes meaning. docs/errors.md lists each one (a test keeps the two
equal). Codes of rules other branches of work add are listed too, so the list is the
contract's whole vocabulary.
"""

from __future__ import annotations

from typing import Any

RULE_CODES: dict[str, str] = {
    # reading the event
    "too-large": "the event is over the contract's size bound (64 KiB)",
    "not-json": "the event is not JSON (or holds a number too long to read)",
    "not-an-object": "the event is not a JSON object",
    "too-deep": "the event is nested too deeply to read",
    "duplicate-key": "a JSON object repeats a key, so which value counts would be a guess",
    # the envelope and the payload, field by field
    "missing": "a required attribute or field is absent",
    "unknown-field": "a field the event type's payload does not have (contract v1)",
    "wrong-type": "a value of the wrong JSON type (strict: no string for a number)",
    "pattern": "a string not in the field's pattern (codes, references, versions, emails)",
    "too-long": "a string or list over the field's maximum length",
    "too-short": "a string or list under the field's minimum length",
    "out-of-range": "a number outside the field's range (a measure's score, a count)",
    "not-allowed-value": "a value that is not one of the field's allowed values",
    "not-a-uuid": "an id that is not a UUID",
    "not-a-time": "a time that is not RFC 3339",
    "time-without-offset": "a time without a UTC offset (naive times are invalid)",
    "attribute-name": "an attribute name that is not a CloudEvents name (a-z, 0-9)",
    "attribute-value": "an optional or extension attribute whose value is not a string, "
    "number or boolean",
    "unknown-type": "an event type or contract version the contract does not have",
    "no-measure": "an assessment with no measure",
    "nhs-number": "a valid NHS number where a pseudonymous reference belongs",
    "wrong-site": "a site code that does not begin with the event's trust code",
    "subject-mismatch": "the NATS subject names another trust or event than the envelope",
    "unknown-course-version": "a course version not in the reviewed catalogue",
    "unknown-module": "a module id in no course version of the catalogue",
    "future-time": "an event time later than when it was received",
    "before-programme": "an event time before the programme began",
    "reused-id": "an id already used for a different event",
    "invalid": "any other rule (the message says which)",
    # the gateway's own, per event
    "wrong-trust": "an event of another trust than the API key's",
    "derived-event": "an event type the platform derives; trusts never send it",
    "not-a-training-event": "an event type a course-platform key may not send (it sends "
    "only clinician.enrolled, module.started and module.completed)",
    "refused-with-request": "not stored because another event of the request was refused",
    "stream-unavailable": "not stored: the event stream did not answer; send it again",
    "storage-share-exhausted": "not stored: the trust's share of the store for this event "
    "type is full; sending again will not help, ask the operators",
}

_PYDANTIC_CODES = {
    "missing": "missing",
    "json_invalid": "not-json",
    "extra_forbidden": "unknown-field",
    "string_pattern_mismatch": "pattern",
    "string_too_long": "too-long",
    "too_long": "too-long",
    "string_too_short": "too-short",
    "too_short": "too-short",
    "greater_than": "out-of-range",
    "greater_than_equal": "out-of-range",
    "less_than": "out-of-range",
    "less_than_equal": "out-of-range",
    "finite_number": "out-of-range",
    "literal_error": "not-allowed-value",
    "enum": "not-allowed-value",
    "uuid_parsing": "not-a-uuid",
    "uuid_type": "not-a-uuid",
    "uuid_version": "not-a-uuid",
    "datetime_parsing": "not-a-time",
    "datetime_from_date_parsing": "not-a-time",
    "datetime_type": "not-a-time",
    "timezone_aware": "time-without-offset",
}


def code_of_pydantic(error: Any) -> str:
    """The code of one pydantic error (`ValidationError.errors()` item): a rule's own
    (raised as `PydanticCustomError(<code>, ...)`), else by pydantic's error type."""
    kind = str(error.get("type", ""))
    if kind in RULE_CODES:
        return kind
    if kind in _PYDANTIC_CODES:
        return _PYDANTIC_CODES[kind]
    if kind.endswith("_type") or kind.endswith("_parsing") or kind == "int_from_float":
        return "wrong-type"
    return "invalid"
