"""The enrolment domain without servers: catalogue, fold, derived events, contact rules."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import patch

import bson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.enrolment.domain.clinician import Status
from services.enrolment.domain.record import (
    TRAINING_COMPLETED,
    TRAINING_STARTED,
    ClinicianRecord,
    apply_event,
    derived_event_id,
)
from shared.catalogue import Catalogue, catalogue
from shared.envelope import AnyEvent, ContractError, parse_event
from shared.keyed import keyed_event_id
from tests.harness import ID_KEY, cloud_event

CATALOGUE = catalogue()
MODULES = list(CATALOGUE.courses[0].required_modules)
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
REF = "c-100"


def event(
    name: str,
    data: dict[str, Any],
    minutes: int,
    *,
    site: str = "RTH08",
    event_id: str | None = None,
) -> AnyEvent:
    raw = cloud_event(
        name,
        {"clinician_ref": REF, **data},
        trust=site[:3],
        site=site,
        time=T0 + timedelta(minutes=minutes),
        event_id=event_id,
    )
    return parse_event(None, json.dumps(raw).encode())


def enrolled(
    minutes: int,
    site: str = "RTH08",
    email: str | None = None,
    version: str = "1",
    profession: str = "nurse",
) -> AnyEvent:
    data: dict[str, Any] = {"profession": profession, "course_version": version}
    if email:
        data["contact_email"] = email
    return event("clinician.enrolled", data, minutes, site=site)


def module(verb: str, module_id: str, minutes: int) -> AnyEvent:
    return event(f"module.{verb}", {"module_id": module_id}, minutes)


def apply_all(events: list[AnyEvent], catalogue: Catalogue = CATALOGUE) -> ClinicianRecord:
    record: ClinicianRecord | None = None
    for e in events:
        record = apply_event(record, e, catalogue, id_key=ID_KEY).record
    assert record is not None
    return record


def state_of(events: list[AnyEvent], catalogue: Catalogue = CATALOGUE) -> Any:
    from services.enrolment.domain.clinician import fold

    return fold(REF, apply_all(events, catalogue).facts, catalogue)


def test_shipped_catalogue_is_ibest_version_1_in_course_order() -> None:
    served = CATALOGUE.as_json()["courses"]
    assert isinstance(served, list) and len(served) == 1
    [course] = served
    assert course["course_version"] == "1"
    assert course["required_modules"][0] == "m01-understanding-back-pain"
    assert len(course["required_modules"]) == 8
    assert [m["module_id"] for m in course["modules"]] == course["required_modules"]


def test_completion_needs_every_required_module_and_is_timed_by_the_last() -> None:
    events = [enrolled(0)] + [module("completed", m, 10 + i) for i, m in enumerate(MODULES[:-1])]
    assert state_of(events).status is Status.STARTED
    done = state_of([*events, module("completed", MODULES[-1], 99)])
    assert done.status is Status.COMPLETED
    assert done.completed_at == T0 + timedelta(minutes=99)
    assert done.started_at == T0 + timedelta(minutes=10)


def test_module_before_enrolment_waits_then_counts() -> None:
    early = module("completed", MODULES[0], 5)
    waiting = state_of([early])
    assert waiting.status is Status.AWAITING_ENROLMENT and waiting.enrolment is None
    assert waiting.not_counted_modules == (MODULES[0],)
    after = state_of([early, enrolled(60)])
    assert after.status is Status.STARTED
    assert [m.module_id for m in after.modules] == [MODULES[0]]
    assert after.not_counted_modules == ()


def test_module_in_no_course_version_is_refused_by_the_contract_not_enrolment() -> None:
    with pytest.raises(ContractError) as exc:
        module("started", "m99-not-a-module", 1)
    assert exc.value.errors[0].field == "data.module_id"
    assert "not a module of any course version" in str(exc.value)


def test_unknown_course_version_is_refused_by_the_contract() -> None:
    with pytest.raises(ContractError, match=r"data\.course_version"):
        enrolled(0, version="7")


TWO_VERSIONS = Catalogue.model_validate(
    {
        "courses": [
            {
                "course_version": "1",
                "title": "v1",
                "modules": [{"module_id": "a", "title": "A"}, {"module_id": "old", "title": "Old"}],
            },
            {
                "course_version": "2",
                "title": "v2",
                "modules": [
                    {"module_id": "a", "title": "A"},
                    {"module_id": "b", "title": "B"},
                    {"module_id": "extra", "title": "Optional", "required": False},
                ],
            },
        ]
    }
)


@contextmanager
def contract_catalogue(other: Catalogue) -> Iterator[None]:
    """Events built here are judged by the contract against `other` (a made-up catalogue
    with two versions), as they would be were it the shipped one."""
    with patch("shared.envelope.catalogue", lambda: other):
        yield


@given(st.permutations(range(3)))
def test_module_outside_the_enrolled_version_kept_not_counted_in_any_order(
    order: list[int],
) -> None:
    """Valid by the contract, so never rejected (whatever arrived first); it just does not
    count towards the version the clinician enrolled on."""
    with contract_catalogue(TWO_VERSIONS):
        events = [
            enrolled(0, version="2"),
            module("completed", "old", 5),
            module("completed", "a", 6),
        ]
        state = state_of([events[i] for i in order], TWO_VERSIONS)
    assert state.not_counted_modules == ("old",)
    assert [m.module_id for m in state.modules] == ["a"]
    assert state.status is Status.STARTED


def test_re_enrolment_latest_decides_and_modules_count_once() -> None:
    with contract_catalogue(TWO_VERSIONS):
        events = [
            enrolled(0, site="RTH08", version="1"),
            module("completed", "a", 5),
            module("completed", "a", 6),
            enrolled(30, site="RNU02", version="2", profession="psychologist"),
            module("completed", "b", 40),
            module("started", "extra", 41),
        ]
        state = state_of(events, TWO_VERSIONS)
    assert state.enrolment is not None
    assert (state.enrolment.trustcode, state.enrolment.sitecode) == ("RNU", "RNU02")
    assert state.enrolment.course_version == "2" and state.enrolment.profession == "psychologist"
    assert state.enrolments == 2
    assert state.status is Status.COMPLETED  # a (from v1 time) and b; extra is optional
    assert [m.module_id for m in state.modules] == ["a", "b", "extra"]
    assert state.modules[0].completed_at == T0 + timedelta(minutes=5)


def test_derived_events_are_deterministic_and_emitted_once() -> None:
    events = [enrolled(0, site="RTH08")] + [
        module("completed", m, 10 + i) for i, m in enumerate(MODULES)
    ]
    record = apply_all(events)
    assert [o.name for o in record.outbox] == [TRAINING_STARTED, TRAINING_COMPLETED]
    completed = parse_event(None, record.outbox[1].body.encode())
    assert completed.id == derived_event_id(ID_KEY, REF, "1", TRAINING_COMPLETED)
    # keyed: nobody without the platform's id key can compute it (the old uuid5 of the
    # public namespace and inputs is not it)
    assert completed.id == keyed_event_id(ID_KEY, "enrolment.derived", REF, "1", TRAINING_COMPLETED)
    assert completed.id != uuid.uuid5(
        uuid.uuid5(uuid.NAMESPACE_URL, "urn:uk:nhs:ibest:enrolment:derived"),
        f"{REF}\n1\n{TRAINING_COMPLETED}",
    )
    assert completed.id != derived_event_id(
        b"another-platform-key-0123", REF, "1", TRAINING_COMPLETED
    )
    assert completed.time == T0 + timedelta(minutes=10 + len(MODULES) - 1)
    assert (completed.trustcode, completed.sitecode) == ("RTH", "RTH08")
    assert completed.source == "/services/enrolment"
    assert completed.data.course_version == "1"
    assert completed.data.completed_at == completed.time  # times the delivery surveys
    # A later repeat of a module emits nothing new: the facts say the same.
    cleared = apply_event(
        record.model_copy(update={"outbox": ()}),
        module("completed", MODULES[0], 500),
        CATALOGUE,
        id_key=ID_KEY,
    ).record
    assert cleared.outbox == ()
    # A re-enrolment on the same version elsewhere moves both to its place: revision 2 of
    # each, same times, with ids of their own.
    moved = apply_event(cleared, enrolled(600, site="RNU02"), CATALOGUE, id_key=ID_KEY).record
    revised = [parse_event(None, o.body.encode()) for o in moved.outbox]
    assert [(e.event_type.name, e.sitecode, e.data.revision) for e in revised] == [
        (TRAINING_STARTED, "RNU02", 2),
        (TRAINING_COMPLETED, "RNU02", 2),
    ]
    assert revised[1].time == completed.time
    assert (
        revised[1].id == derived_event_id(ID_KEY, REF, "1", TRAINING_COMPLETED, 2) != completed.id
    )
    # The same event again changes nothing at all.
    again = apply_event(record, events[3], CATALOGUE, id_key=ID_KEY)
    assert not again.changed and again.record == record


def test_an_earlier_module_event_arriving_late_revises_the_start_and_completion() -> None:
    """The issue's sequence: the start and completion end at the earliest facts, as new
    revisions with their own ids; an arrival that changes nothing emits nothing."""
    record = apply_all([enrolled(0), module("started", MODULES[1], 50)])
    first = parse_event(None, record.outbox[0].body.encode())
    assert first.time == T0 + timedelta(minutes=50) and first.data.revision is None
    record = apply_event(
        record, module("completed", MODULES[0], 20), CATALOGUE, id_key=ID_KEY
    ).record
    second = parse_event(None, record.outbox[-1].body.encode())
    assert second.event_type.name == TRAINING_STARTED
    assert (second.time, second.data.revision) == (T0 + timedelta(minutes=20), 2)
    assert second.id == derived_event_id(ID_KEY, REF, "1", TRAINING_STARTED, 2)
    later = apply_event(record, module("started", MODULES[2], 60), CATALOGUE, id_key=ID_KEY).record
    assert later.outbox == record.outbox
    # Completion: the latest of the required modules' FIRST completions, in any order.
    done = [module("completed", m, 100 + i) for i, m in enumerate(MODULES)]
    redo = module("completed", MODULES[-1], 900)
    for order in ([*done, redo], [redo, *done[::-1]]):
        final = apply_all([enrolled(0), *order])
        latest = {}
        for o in final.outbox:
            e = parse_event(None, o.body.encode())
            latest[e.event_type.name] = e
        assert latest[TRAINING_COMPLETED].data.completed_at == T0 + timedelta(
            minutes=100 + len(MODULES) - 1
        )
        assert latest[TRAINING_STARTED].time == T0 + timedelta(minutes=100)


def test_a_version_left_for_another_keeps_its_derived_events_in_any_order() -> None:
    """Completion of version 1 is derived even when the re-enrolment on version 2 arrived
    first: the history before the re-enrolment is the same in any order."""
    with contract_catalogue(TWO_VERSIONS):
        v1 = [enrolled(0), module("completed", "a", 10), module("completed", "old", 20)]
        v2 = enrolled(500, version="2")
    for events in ([*v1, v2], [v2, *v1[::-1]]):
        with contract_catalogue(TWO_VERSIONS):
            outbox = apply_all(events, TWO_VERSIONS).outbox
            derived = [parse_event(None, o.body.encode()) for o in outbox]
        names = {(e.data.course_version, e.event_type.name, e.time) for e in derived}
        assert ("1", TRAINING_COMPLETED, T0 + timedelta(minutes=20)) in names
        assert ("2", TRAINING_STARTED, T0 + timedelta(minutes=10)) in names


def test_contact_is_the_latest_enrolment_that_gave_one_in_any_order() -> None:
    first = enrolled(0, email="old@nhs.net")
    second = enrolled(10, email="new@nhs.net")
    third = enrolled(20)  # no email: keeps the one given
    for order in ([first, second, third], [third, second, first], [second, first, third]):
        record = apply_all(order)
        assert record.contact is not None and record.contact.email == "new@nhs.net"
        assert all("contact_email" not in f.data for f in record.facts)


# Property: every arrival order of one clinician's events gives the same state.


@st.composite
def clinician_history(draw: st.DrawFn) -> list[AnyEvent]:
    sites = ["RTH08", "RTH02", "RNU01"]
    out = []
    for _ in range(draw(st.integers(1, 3))):
        out.append(
            enrolled(
                draw(st.integers(0, 300)),
                site=draw(st.sampled_from(sites)),
                email=draw(st.sampled_from([None, "a@nhs.net", "b@nhs.net"])),
                profession=draw(st.sampled_from(["nurse", "physiotherapist"])),
            )
        )
    for module_id in draw(st.lists(st.sampled_from(MODULES), max_size=12)):
        verb = draw(st.sampled_from(["started", "completed"]))
        out.append(module(verb, module_id, draw(st.integers(0, 300))))
    if draw(st.booleans()):
        out.append(
            event(
                "clinician.intention_reported",
                {"intends_to_deliver": draw(st.booleans()), "confidence": draw(st.integers(0, 10))},
                draw(st.integers(0, 300)),
            )
        )
    if draw(st.booleans()):
        out.append(
            event(
                "clinician.delivery_reported",
                {"delivering": True, "groups_delivered": 2},
                draw(st.integers(0, 300)),
            )
        )
    return out


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(st.data())
def test_every_arrival_order_gives_the_same_state(data: st.DataObject) -> None:
    history = data.draw(clinician_history())
    orders = [history, list(reversed(history))]
    orders += [data.draw(st.permutations(history)) for _ in range(3)]
    results = []
    for order in orders:
        record = apply_all(order + order[:2])  # with redeliveries
        results.append((state_of(order), record.contact, len(record.facts)))
    assert all(r == results[0] for r in results)
    state = results[0][0]
    # The funnel is cumulative: completed implies started implies enrolled.
    assert state.status is not Status.AWAITING_ENROLMENT
    if state.status is Status.COMPLETED:
        assert state.started_at is not None and state.completed_at is not None


def test_stored_document_round_trips_exactly() -> None:
    from services.enrolment.adapters.repository import from_doc, to_doc
    from services.enrolment.domain.clinician import fold

    odd = event("module.completed", {"module_id": MODULES[1], "quiz_score": 87.5}, 3)
    record = apply_all([enrolled(0, email="x@nhs.net"), module("started", MODULES[0], 1), odd])
    # through BSON, as the database stores it (the outbox's bodies are compressed bytes)
    doc = bson.decode(bson.encode(to_doc(record, fold(REF, record.facts, CATALOGUE), 4)))
    assert from_doc(doc) == record
    # the document keeps where the clinician counts and how far they got; the modules are
    # folded from the facts on read (issue 26)
    assert doc["state"]["status"] == "started" and doc["state"]["enrolment"]["trustcode"]
    assert "modules" not in doc["state"]
    assert fold(REF, from_doc(doc).facts, CATALOGUE).modules[1].best_quiz_score == 87.5
    assert "x@nhs.net" not in json.dumps(doc["facts"]) + json.dumps(doc["state"])


def test_a_signature_stored_as_text_before_digests_still_says_the_same_event() -> None:
    """Records written before issue 26 hold each derived event's signature as its text;
    the same facts must not emit a revision because the signature is now stored as a
    digest, and what is stored from now on is the 16-byte digest."""
    from services.enrolment.domain.record import (
        SIGNATURE_BYTES,
        Emitted,
        _signature,
        derive,
        derived_facts,
    )

    record = apply_all([enrolled(0), module("started", MODULES[0], 5)])
    (key, at, (trust, site), payload), *_ = derived_facts(record, CATALOGUE)
    stored = record.emitted[key]
    assert isinstance(stored.signature, bytes) and len(stored.signature) == SIGNATURE_BYTES
    text = _signature(at, trust, site, payload)
    old = record.model_copy(
        update={"emitted": {key: Emitted(revision=1, signature=text)}, "outbox": ()}
    )
    assert not derive(old, CATALOGUE, id_key=ID_KEY).changed
    # other content under the old text is a new revision, as before
    other = old.model_copy(update={"emitted": {key: Emitted(revision=1, signature=text + "x")}})
    assert derive(other, CATALOGUE, id_key=ID_KEY).record.emitted[key].revision == 2
