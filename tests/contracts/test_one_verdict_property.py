"""Property: over generated event sequences, every consumer that receives an event reaches
the same verdict on it: all apply it, or all reject it with the same reason.

Each consumer is modelled by exactly what its live consumer runs, minus the database: the
contract (`parse_event`, what `EventConsumer` calls first) and then the service's own pure
domain step, with its state carried across the sequence (enrolment's clinician records,
outcomes' patient states and the outcome.recorded events they derive, notifications' batch
fold, reporting's facts and contributions). A `ContractError` from any step is a rejection
(dead-lettered with that reason); anything else raised would be a crash, and fails the test.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.enrolment.domain.record import ClinicianRecord, apply_event
from services.enrolment.service import SPEC as ENROLMENT
from services.notifications.domain.batch import fold as notifications_fold
from services.notifications.service import SPEC as NOTIFICATIONS
from services.outcomes.application import class_doc, outcome_event
from services.outcomes.domain.assessments import Assessment
from services.outcomes.domain.outcomes import PatientState
from services.outcomes.service import SPEC as OUTCOMES
from services.reporting.domain.facts import CONTRIBUTION, Fact, fact_of
from services.reporting.service import SPEC as REPORTING
from shared.catalogue import catalogue
from shared.envelope import AnyEvent, ContractError, parse_event
from tests.harness import ID_KEY, cloud_event

T0 = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)
MODULES = [m.module_id for c in catalogue().courses for m in c.modules]
Step = Callable[[AnyEvent], None]


class Consumer:
    """One service: the contract first, then its domain step over its own state."""

    def __init__(self, name: str, consumes: list[str], step: Step) -> None:
        self.name = name
        self.consumes = set(consumes)
        self.step = step

    def verdict(self, subject: str, body: bytes) -> str:
        try:
            event = parse_event(subject, body)
            self.step(event)
        except ContractError as exc:
            return f"rejected: {exc}"
        return "applied"


def enrolment() -> Step:
    records: dict[str, ClinicianRecord] = {}

    def step(event: AnyEvent) -> None:
        ref = event.data.clinician_ref
        applied = apply_event(records.get(ref), event, catalogue(), id_key=ID_KEY)
        records[ref] = applied.record
        for entry in applied.record.outbox:  # the derived events it would publish
            parse_event(None, entry.body.encode())

    return step


def outcomes() -> Step:
    patients: dict[tuple[str, str], PatientState] = {}

    def step(event: AnyEvent) -> None:
        if event.event_type.name == "class.started":
            class_doc(event)
            return
        a = Assessment.from_event(
            str(event.id), event.trustcode, event.sitecode, event.time, event.data
        )
        key = (a.trustcode, a.patient_ref)
        state, changed = patients.get(key, PatientState()).apply(a)
        patients[key] = state
        for outcome in changed:
            outcome_event(outcome, ID_KEY)  # built through the contract, as published

    return step


def notifications() -> Step:
    def step(event: AnyEvent) -> None:
        notifications_fold([event])

    return step


def reporting() -> Step:
    entities: dict[tuple[str, str], dict[str, Fact]] = {}

    def step(event: AnyEvent) -> None:
        fact = fact_of(event)
        facts = entities.setdefault((fact.entity, fact.key), {})
        facts[fact.fact_id] = fact.fact
        CONTRIBUTION[fact.entity](facts)

    return step


def consumers() -> list[Consumer]:
    return [
        Consumer("enrolment", list(ENROLMENT.consumes), enrolment()),
        Consumer("outcomes", list(OUTCOMES.consumes), outcomes()),
        Consumer("notifications", list(NOTIFICATIONS.consumes), notifications()),
        Consumer("reporting", list(REPORTING.consumes), reporting()),
    ]


# --- generated events: mostly valid, with every kind of breach the audit looked at --------


def nhs(nine: str) -> str | None:
    total = sum(int(d) * w for d, w in zip(nine, range(10, 1, -1), strict=True))
    check = (11 - total % 11) % 11
    return None if check == 10 else nine + str(check)


clinicians = st.sampled_from(["c-1", "c-2", "c-3"])
patient_refs = st.one_of(
    st.sampled_from(["pt-a", "pt-b"]),
    st.binary(min_size=1, max_size=8).map(lambda b: hashlib.sha256(b).hexdigest()),
    st.builds(
        lambda n, sep: sep.join((n[:3], n[3:6], n[6:])),
        st.text("0123456789", min_size=9, max_size=9).map(nhs).filter(bool),
        st.sampled_from(["", " ", "-", ".", "_", ":"]),
    ),
)
modules = st.sampled_from([*MODULES, "m99-not-a-module"])
versions = st.sampled_from(["1", "1", "97"])
scores = st.one_of(st.integers(0, 24), st.just(25), st.just(-1))
timepoints = st.sampled_from(["baseline", "baseline", "month_3", "month_12", "group_end", "week_2"])


def data_for(name: str) -> st.SearchStrategy[dict[str, Any]]:
    if name == "clinician.enrolled":
        return st.fixed_dictionaries(
            {
                "clinician_ref": clinicians,
                "course_version": versions,
                "profession": st.sampled_from(["nurse", "physiotherapist", "astronaut"]),
            }
        )
    if name in ("module.started", "module.completed"):
        return st.fixed_dictionaries({"clinician_ref": clinicians, "module_id": modules})
    if name in ("clinician.training_started", "clinician.training_completed"):
        return st.fixed_dictionaries({"clinician_ref": clinicians, "course_version": versions})
    if name == "clinician.intention_reported":
        return st.fixed_dictionaries(
            {
                "clinician_ref": clinicians,
                "intends_to_deliver": st.booleans(),
                "confidence": st.integers(0, 11),
            }
        )
    if name == "clinician.delivery_reported":
        return st.fixed_dictionaries(
            {
                "clinician_ref": clinicians,
                "delivering": st.booleans(),
                "groups_delivered": st.integers(-1, 3),
            }
        )
    if name == "class.started":
        return st.fixed_dictionaries(
            {
                "class_id": st.sampled_from(["k-1", "k 2"]),
                "facilitator_refs": st.lists(clinicians, min_size=0, max_size=2),
                "planned_sessions": st.integers(0, 7),
            }
        )
    if name == "patient.assessed":
        return st.fixed_dictionaries(
            {
                "patient_ref": patient_refs,
                "timepoint": timepoints,
                "measures": st.fixed_dictionaries({"rmdq": scores}),
            }
        )
    assert name == "outcome.recorded"
    return st.fixed_dictionaries(
        {
            "patient_ref": patient_refs,
            "timepoint": st.sampled_from(["month_3", "baseline"]),
            "baseline_time": st.just(T0.isoformat()),
            "assessment_time": st.just((T0 + timedelta(days=91)).isoformat()),
            "revision": st.integers(0, 2),
            "measures": st.just(
                {"rmdq": {"baseline": 14.0, "value": 8.0, "change": -6.0, "improved": True}}
            ),
        }
    )


CONSUMED = sorted(
    {n for spec in (ENROLMENT, OUTCOMES, NOTIFICATIONS, REPORTING) for n in spec.consumes}
    - {"notification.sent", "notification.failed"}
)


EXTENSION_NAMES = st.sampled_from(["traceparent", "subject", "dataschema", "myext", "My-Ext"])
EXTENSION_VALUES = st.one_of(st.text(max_size=8), st.integers(), st.booleans(), st.just({"a": 1}))


@st.composite
def wire_event(draw: st.DrawFn) -> tuple[str, bytes]:
    name = draw(st.sampled_from(CONSUMED))
    site = draw(st.sampled_from(["RTH08", "RTH01", "RXF01"]))  # RXF01 breaks the trust rule
    raw = cloud_event(
        name,
        draw(data_for(name)),
        trust="RTH",
        site=site,
        time=T0 + timedelta(days=draw(st.integers(0, 400))),
        event_id=str(uuid.UUID(int=draw(st.integers(0, 2**64)))),
    )
    # CloudEvents' optional attributes and extensions, well or badly formed, and an absent
    # datacontenttype (JSON by default): every consumer tolerates or refuses them alike.
    raw.update(draw(st.dictionaries(EXTENSION_NAMES, EXTENSION_VALUES, max_size=2)))
    if draw(st.booleans()):
        raw.pop("datacontenttype")
    subject = f"ibest.v1.RTH.{name}"
    return subject, json.dumps(raw).encode()


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(st.lists(wire_event(), min_size=1, max_size=25))
def test_every_consumer_that_receives_an_event_reaches_the_same_verdict(
    sequence: list[tuple[str, bytes]],
) -> None:
    services = consumers()
    for subject, body in sequence:
        name = subject.split(".", 3)[3]
        verdicts = {c.name: c.verdict(subject, body) for c in services if name in c.consumes}
        assert len(verdicts) >= 1
        assert len(set(verdicts.values())) == 1, (name, verdicts)
