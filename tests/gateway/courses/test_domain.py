"""The course-platform part's pure rules: export headers and times, steps to modules,
learners to clinicians, xAPI statements, course-platform keys."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from services.gateway.courses.domain.exports import STEP_ACTIVITY, header_problem, platform_time
from services.gateway.courses.domain.learners import Answers, clinician_of
from services.gateway.courses.domain.progress import (
    COMPLETED,
    STARTED,
    Fact,
    LearnerProgress,
    StepMap,
    fact_event_id,
)
from services.gateway.courses.domain.xapi import (
    Mapped,
    StatementError,
    as_bearer,
    map_statement,
    read_statement,
    statement_event_id,
)
from services.gateway.domain.keys import mint_key
from services.gateway.domain.results import sender_errors
from shared.catalogue import Catalogue, catalogue
from shared.keyed import clinician_pseudonym, keyed_reference

KEY = b"k" * 32
COURSE = catalogue().courses[0]
M01 = COURSE.modules[0]


def at(day: int) -> datetime:
    return datetime(2026, 3, day, 9, tzinfo=UTC)


def test_a_header_without_a_needed_column_names_the_file_and_the_column() -> None:
    header = ["learner_id", "step", "week_number", "first_visited_at", "extra"]
    assert header_problem("run_step-activity.csv", header, STEP_ACTIVITY) == (
        "run_step-activity.csv: missing column(s) last_completed_at (a step-activity export "
        "needs learner_id, step, first_visited_at, last_completed_at; is this the right file?)"
    )
    assert "repeats column(s) step" in str(
        header_problem("f.csv", ["step", *header], STEP_ACTIVITY)
    )
    assert header_problem("f.csv", [*header, "last_completed_at"], STEP_ACTIVITY) is None


def test_export_times() -> None:
    assert platform_time("2025-10-08 12:00:00 UTC") == datetime(2025, 10, 8, 12, tzinfo=UTC)
    assert platform_time("") is None
    for bad in ("08/10/2025 12:00", "2025-10-08 12:00:00", "2025-10-08 12:00:00+01:00 UTC"):
        with pytest.raises(ValueError):
            platform_time(bad)


def test_a_module_starts_at_its_earliest_visit_and_completes_when_every_step_is_done() -> None:
    steps = StepMap(COURSE)
    progress = LearnerProgress()
    # Rows in any order; one step of m02 visited but never completed.
    for i, step in reversed(list(enumerate(M01.steps))):
        assert steps.add(progress, step, at(10 - i), at(20 + i))
    assert steps.add(progress, "1.6", at(25), None)
    assert not steps.add(progress, "9.9", at(1), None)
    assert steps.facts(progress) == [
        Fact(STARTED, at(6), M01.module_id),
        Fact(COMPLETED, at(24), M01.module_id),
        Fact(STARTED, at(25), COURSE.modules[1].module_id),
    ]


def test_a_fact_id_is_keyed_and_does_not_move_with_the_time() -> None:
    first = fact_event_id(KEY, "learner", "1", Fact(COMPLETED, at(20), "m"))
    assert first == fact_event_id(KEY, "learner", "1", Fact(COMPLETED, at(28), "m"))
    assert first != fact_event_id(
        b"another key, 32 bytes long......", "learner", "1", Fact(COMPLETED, at(20), "m")
    )
    assert first != fact_event_id(KEY, "learner", "1", Fact(STARTED, at(20), "m"))


def test_a_learner_becomes_the_programme_clinician_or_a_reference_that_links_nowhere() -> None:
    linked = clinician_of(KEY, "h", "L1", Answers("rth08 ", "Physiotherapist", "ph 123456"))
    assert not isinstance(linked, str)
    assert linked.clinician_ref == clinician_pseudonym(KEY, "PH123456") and linked.linkable
    assert (linked.trustcode, linked.sitecode, linked.profession.value) == (
        "RTH",
        "RTH08",
        "physiotherapist",
    )
    other = clinician_of(KEY, "h", "L2", Answers("RTH08", "Other"))
    assert not isinstance(other, str)
    assert other.clinician_ref == keyed_reference(KEY, "learner", "h", "L2") and not other.linkable
    assert clinician_of(KEY, "h", "L3", Answers("Oxford", "Nurse")) == (
        "site 'Oxford' is not a 5-character ODS site code (e.g. RTH08)"
    )
    assert "is not one of" in str(clinician_of(KEY, "h", "L4", Answers("RTH08", "Porter")))
    assert clinician_of(KEY, "h", "L5", Answers(None, "Nurse")) == "no site (ODS code) given"


def statement(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": "2c1f1b9e-8f0e-4a51-9f0e-3b1d2a4c5e6f",
        "actor": {"account": {"homePage": "https://www.futurelearn.com", "name": "L1"}},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
        "object": {"id": M01.activity_iris[0]},
        "timestamp": "2026-03-02T09:00:00Z",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"id": None}, "id", "id-required"),
        ({"id": "7"}, "id", "not-a-uuid"),
        ({"timestamp": None}, "timestamp", "timestamp-required"),
        ({"timestamp": "2026-03-02T09:00:00"}, "timestamp", "no-time-zone"),
        ({"colour": "red"}, "colour", "unknown-property"),
        (
            {"actor": {"mbox": "mailto:a@b.nhs.uk", "account": {"homePage": "h:x", "name": "n"}}},
            "actor",
            "one-identifier",
        ),
        ({"verb": {"id": "completed"}}, "verb.id", "not-an-iri"),
        ({"object": {"objectType": "Activity"}}, "object.id", "not-an-iri"),
    ],
)
def test_an_invalid_statement_says_which_property_and_why(
    changes: dict[str, object], field: str, code: str
) -> None:
    with pytest.raises(StatementError) as refused:
        read_statement(statement(**changes))
    assert (refused.value.field, refused.value.code) == (field, code)


def test_statements_map_to_facts_or_are_ignored_with_a_reason() -> None:
    read = read_statement(statement())
    assert read.account == ("https://www.futurelearn.com", "L1")
    mapped = map_statement(read, catalogue())
    assert not isinstance(mapped, str) and mapped.fact == Fact(COMPLETED, at(2), M01.module_id)
    registered = read_statement(
        statement(
            verb={"id": "http://adlnet.gov/expapi/verbs/registered"},
            object={"id": COURSE.activity_iris[0]},
        )
    )
    assert not isinstance(enrolled := map_statement(registered, catalogue()), str)
    assert enrolled.fact.module_id is None and enrolled.course_version == "1"
    ignored = {
        "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced"},
        "object": {"id": "https://elsewhere.example/activity"},
    }
    for name, value in ignored.items():
        assert isinstance(
            map_statement(read_statement(statement(**{name: value})), catalogue()), str
        )
    # Same content, another way of writing the time: the same statement (not a conflict).
    assert read_statement(statement(timestamp="2026-03-02T09:00:00+00:00")).digest == read.digest
    assert read_statement(statement(result={"score": {"scaled": 1}})).digest != read.digest
    assert statement_event_id(KEY, read.id) != statement_event_id(KEY, "another")
    assert str(statement_event_id(KEY, read.id)) != read.id


def test_basic_authentication_carries_the_key_as_password_or_user() -> None:
    def basic(user: str, password: str) -> str:
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    assert as_bearer(basic("abc", "ibk_x")) == "Bearer ibk_x"
    assert as_bearer(basic("ibk_x", "")) == "Bearer ibk_x"
    assert as_bearer("Bearer ibk_y") == "Bearer ibk_y"
    assert as_bearer("Basic !!!") is None


def test_a_course_platform_key_sends_training_events_for_any_trust_only() -> None:
    key, _ = mint_key("course-platform:futurelearn", at(1))
    assert key.course_platform == "futurelearn"
    enrolled = {
        "type": "uk.nhs.ibest.clinician.enrolled.v1",
        "trustcode": "RXF",
        "sitecode": "RXF01",
    }
    assert sender_errors(enrolled, key.trust) == []
    assessed = {**enrolled, "type": "uk.nhs.ibest.patient.assessed.v1"}
    assert [e.field for e in sender_errors(assessed, key.trust)] == ["type"]
    assert [e.field for e in sender_errors(enrolled, "RTH")] == ["trustcode", "sitecode"]


def test_the_catalogue_gives_a_step_to_one_module_and_an_iri_to_one_thing() -> None:
    raw = catalogue().model_dump(by_alias=True)
    assert catalogue().activity(M01.activity_iris[0]) == ("1", M01.module_id)
    assert COURSE.module_of_step["1.1"] == M01.module_id and len(COURSE.module_of_step) == 40
    raw["courses"][0]["modules"][1]["steps"] = ["1.1"]
    with pytest.raises(ValidationError, match="gives a step to two modules"):
        Catalogue.model_validate(raw)
    raw = catalogue().model_dump(by_alias=True)
    raw["courses"][0]["modules"][1]["activity_iris"] = list(M01.activity_iris)
    with pytest.raises(ValidationError, match="activity IRI names two things"):
        Catalogue.model_validate(raw)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def mutated_statements(draw: st.DrawFn) -> object:
    """A valid statement broken in one or two places, or any JSON value at all."""
    raw: dict[str, object] = statement()
    for _ in range(draw(st.integers(0, 2))):
        name = draw(st.sampled_from(["id", "actor", "verb", "object", "timestamp", "result", "x"]))
        if draw(st.booleans()):
            raw.pop(name, None)
        else:
            raw[name] = draw(json_values)
    return draw(st.just(raw) | json_values)


@settings(max_examples=300, derandomize=True)
@given(mutated_statements())
def test_any_json_is_a_statement_or_a_statement_error_never_a_crash(raw: object) -> None:
    try:
        read = read_statement(raw)
    except StatementError as exc:
        assert exc.field and exc.code and exc.message
        return
    assert isinstance(map_statement(read, catalogue()), (str, Mapped))
