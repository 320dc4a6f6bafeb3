"""The contract's one verdict: NHS numbers however written, and the reviewed catalogue."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import envelope
from shared.catalogue import catalogue
from shared.envelope import BY_NAME, EVENT_TYPES, AnyEvent, ContractError, parse_event
from shared.examples import example
from shared.identifiers import is_nhs_number
from tests.hostile.badevents import BadEvent, bad_events
from tests.strategies import valid_nhs_numbers


def raw_example(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(example(BY_NAME[name]).to_json())
    return loaded


def verdict(raw: dict[str, Any]) -> ContractError | None:
    try:
        parse_event(None, json.dumps(raw).encode())
    except ContractError as exc:
        return exc
    return None


# Any character that is neither a letter nor a digit, ASCII punctuation and spaces first.
SEPARATOR_CHARS = st.one_of(
    st.sampled_from(" .-_:/|,;+*#~\t"),
    st.characters(exclude_categories=("L", "N", "Cs")),
)


@st.composite
def separated(draw: st.DrawFn, number: str) -> str:
    """`number` with a (possibly empty) run of separators before, between and after its
    digits: the same separator everywhere half the time, as people write them."""
    if draw(st.booleans()):
        sep = draw(st.text(SEPARATOR_CHARS, min_size=1, max_size=2))
        gaps = [""] + [draw(st.sampled_from(["", sep])) for _ in range(9)] + [""]
    else:
        gaps = [draw(st.text(SEPARATOR_CHARS, max_size=2)) for _ in range(11)]
    return gaps[0] + "".join(d + g for d, g in zip(number, gaps[1:], strict=True))


@pytest.mark.parametrize(
    "written",
    [
        "9434765919",
        "943 476 5919",
        "943-476-5919",
        "943.476.5919",
        "943_476_5919",
        "943:476:5919",
        "943/476/5919",
        "9 4 3 4 7 6 5 9 1 9",
        " 943 476 5919 ",
    ],
)
def test_the_reported_nhs_numbers_are_refused_with_the_reason(written: str) -> None:
    raw = raw_example("patient.assessed")
    raw["data"]["patient_ref"] = written
    err = verdict(raw)
    assert err is not None
    assert [e.field for e in err.errors] == ["data.patient_ref"]
    assert "is a valid NHS number" in str(err)


@given(valid_nhs_numbers().flatmap(separated))
def test_a_valid_nhs_number_with_any_separators_is_refused(written: str) -> None:
    assert is_nhs_number(written)
    for name in ("patient.assessed", "outcome.recorded"):
        raw = raw_example(name)
        raw["data"]["patient_ref"] = written
        err = verdict(raw)
        assert err is not None
        assert [e.field for e in err.errors] == ["data.patient_ref"]
        assert "is a valid NHS number" in str(err)


@given(st.binary(), st.integers(0, 54), valid_nhs_numbers())
def test_hex_digests_stay_accepted_even_holding_an_nhs_number(
    secret: bytes, at: int, number: str
) -> None:
    digest = hashlib.sha256(secret).hexdigest()
    embedded = (digest[:at] + number + digest[at:])[:64]
    for ref in (digest, embedded, digest[:32]):
        assert not is_nhs_number(ref), ref
        raw = raw_example("patient.assessed")
        raw["data"]["patient_ref"] = ref
        assert verdict(raw) is None


def test_a_wrong_check_digit_or_a_letter_is_not_an_nhs_number() -> None:
    assert not is_nhs_number("943 476 5918")
    assert not is_nhs_number("943476591")
    assert not is_nhs_number("94347659190")
    assert not is_nhs_number("943a476.5919")


def test_enrolment_on_a_course_version_not_in_the_catalogue_is_refused() -> None:
    raw = raw_example("clinician.enrolled")
    raw["data"]["course_version"] = "97"
    err = verdict(raw)
    assert err is not None
    assert [e.field for e in err.errors] == ["data.course_version"]
    assert "'97' is not a course version in the catalogue (known: 1" in str(err)


@pytest.mark.parametrize("name", ["module.started", "module.completed"])
def test_a_module_in_no_course_version_is_refused(name: str) -> None:
    raw = raw_example(name)
    raw["data"]["module_id"] = "m99-made-up"
    err = verdict(raw)
    assert err is not None
    assert [e.field for e in err.errors] == ["data.module_id"]
    assert "'m99-made-up' is not a module of any course version" in str(err)


@pytest.mark.parametrize("name", ["clinician.training_started", "clinician.training_completed"])
def test_a_derived_training_event_on_an_unknown_version_is_refused(name: str) -> None:
    raw = raw_example(name)
    raw["data"]["course_version"] = "97"
    err = verdict(raw)
    assert err is not None and [e.field for e in err.errors] == ["data.course_version"]


def test_every_catalogue_module_and_version_is_accepted() -> None:
    for course in catalogue().courses:
        raw = raw_example("clinician.enrolled")
        raw["data"]["course_version"] = course.course_version
        assert verdict(raw) is None
        for module in course.modules:
            for name in ("module.started", "module.completed"):
                raw = raw_example(name)
                raw["data"]["module_id"] = module.module_id
                assert verdict(raw) is None


def _full_verdict(subject: str | None, body: bytes) -> AnyEvent | ContractError:
    """`parse_event` with its one-pass shortcut turned off: the full check alone."""
    shortcut = envelope._valid_in_one_pass
    envelope._valid_in_one_pass = lambda *_: None
    try:
        return envelope.parse_event(subject, body)
    except ContractError as exc:
        return exc
    finally:
        envelope._valid_in_one_pass = shortcut


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(EVENT_TYPES).flatmap(lambda t: bad_events(t)))
def test_the_one_pass_shortcut_never_accepts_what_the_full_check_refuses(bad: BadEvent) -> None:
    full = _full_verdict(bad.subject, bad.body)
    try:
        fast: AnyEvent | ContractError = envelope.parse_event(bad.subject, bad.body)
    except ContractError as exc:
        fast = exc
    assert isinstance(full, ContractError), "the corpus holds only events that break a rule"
    assert isinstance(fast, ContractError) and str(fast) == str(full)


def test_the_one_pass_shortcut_gives_the_full_checks_event_for_every_valid_example() -> None:
    for etype in EVENT_TYPES:
        event = example(etype)
        body = event.to_json()
        full = _full_verdict(event.subject, body)
        fast = envelope.parse_event(event.subject, body)
        assert not isinstance(full, ContractError), full
        assert fast.model_dump() == full.model_dump() and type(fast) is type(full)
