"""Property: ids belong to their trust. A generated rollout of two trusts gives exactly the
same figures when its ids are fresh as when they collide: one trust's ids reused by the
other, ids equal to the derived events' ids as today's main makes them (public inputs), and
another trust's raw events carrying the platform's actual derived ids.

The platform is modelled by exactly what its consumers run, minus the database and the
stream: the contract, the per-trust id ledger (`ledger_key`, `content_digest`: an id
reused for other content is rejected, a repeat is a duplicate), enrolment's and outcomes'
domain steps with the derived events they publish (fed back in, as the stream would), and
reporting's facts and contributions (the figures).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ibest.backbone.ledger import content_digest, ledger_key
from services.enrolment.domain.record import (
    TRAINING_COMPLETED,
    TRAINING_STARTED,
    ClinicianRecord,
    apply_event,
    derived_event_id,
)
from services.enrolment.service import SPEC as ENROLMENT
from services.outcomes.application import outcome_event
from services.outcomes.domain.assessments import Assessment
from services.outcomes.domain.outcomes import PatientState
from services.reporting.domain.facts import CONSUMES, CONTRIBUTION, Fact, facts_of
from shared.catalogue import catalogue
from shared.envelope import AnyEvent, parse_event
from tests.harness import ID_KEY, cloud_event

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
MODULES = [m.module_id for m in catalogue().courses[0].modules if m.required]
TRUSTS = {"RTH": ["c-1", "c-2"], "RKB": ["k-1", "k-2"]}  # each trust's own clinicians
PATIENTS = ["pt-a", "pt-b"]
Plan = tuple[str, str, dict[str, Any]]  # trust, event name, data


@dataclass
class Platform:
    """Every consumer's state over one stream of events."""

    ledger: dict[str, str] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)
    clinicians: dict[str, ClinicianRecord] = field(default_factory=dict)
    patients: dict[tuple[str, str], PatientState] = field(default_factory=dict)
    entities: dict[tuple[str, str], dict[str, Fact]] = field(default_factory=dict)

    def receive(self, events: list[AnyEvent]) -> None:
        queue = list(events)
        while queue:
            event = queue.pop(0)
            digest = content_digest(event)
            if self.ledger.setdefault(ledger_key(event.trustcode, event.id), digest) != digest:
                self.rejected.append(f"{event.trustcode}:{event.id}")
                continue
            queue.extend(self.apply(event))

    def apply(self, event: AnyEvent) -> list[AnyEvent]:
        """Apply one event everywhere it is consumed; the derived events it publishes."""
        name, derived = event.event_type.name, []
        if name in ENROLMENT.consumes:
            ref = event.data.clinician_ref
            applied = apply_event(self.clinicians.get(ref), event, catalogue(), id_key=ID_KEY)
            derived += [entry.event() for entry in applied.record.outbox]
            self.clinicians[ref] = applied.record.model_copy(update={"outbox": ()})
        if name == "patient.assessed":
            a = Assessment.from_event(
                str(event.id), event.trustcode, event.sitecode, event.time, event.data
            )
            key = (a.trustcode, a.patient_ref)
            self.patients[key], changed = self.patients.get(key, PatientState()).apply(a)
            derived += [outcome_event(o, ID_KEY) for o in changed]
        if name in CONSUMES:
            for fact in facts_of(event):
                self.entities.setdefault((fact.entity, fact.key), {})[fact.fact_id] = fact.fact
        return derived

    def figures(self) -> dict[tuple[str, str], Any]:
        return {key: CONTRIBUTION[key[0]](facts) for key, facts in self.entities.items()}


def old_derived_ids() -> list[str]:
    """The ids today's main gives derived events: uuid5 of public inputs."""
    enrolment = uuid.uuid5(uuid.NAMESPACE_URL, "urn:uk:nhs:ibest:enrolment:derived")
    outcomes = uuid.uuid5(uuid.NAMESPACE_URL, "urn:ibest:outcomes:outcome.recorded")
    ids = [
        uuid.uuid5(enrolment, f"{ref}\n1\n{name}")
        for refs in TRUSTS.values()
        for ref in refs
        for name in (TRAINING_STARTED, TRAINING_COMPLETED)
    ]
    ids += [
        uuid.uuid5(outcomes, f"{trust}/{p}/{tp}/{rev}")
        for trust in TRUSTS
        for p in PATIENTS
        for tp in ("month_3", "month_12")
        for rev in (1, 2)
    ]
    return [str(i) for i in ids]


def derived_ids_of(trust: str) -> list[str]:
    """The platform's own (keyed) derived ids of `trust`'s clinicians."""
    return [
        str(derived_event_id(ID_KEY, ref, "1", name))
        for ref in TRUSTS[trust]
        for name in (TRAINING_STARTED, TRAINING_COMPLETED)
    ]


@st.composite
def plan(draw: st.DrawFn) -> Plan:
    trust = draw(st.sampled_from(sorted(TRUSTS)))
    ref = draw(st.sampled_from(TRUSTS[trust]))
    kind = draw(st.sampled_from(["enrolled", "module", "assessed", "class"]))
    data: dict[str, Any]
    if kind == "enrolled":
        data = {"clinician_ref": ref, "profession": "nurse", "course_version": "1"}
        return trust, "clinician.enrolled", data
    if kind == "module":
        verb = draw(st.sampled_from(["started", "completed"]))
        return trust, f"module.{verb}", {"clinician_ref": ref, "module_id": draw(modules)}
    if kind == "class":
        everyone = [r for refs in TRUSTS.values() for r in refs]
        facilitators = draw(st.lists(st.sampled_from(everyone), min_size=1, max_size=2))
        data = {"class_id": "k-1", "facilitator_refs": facilitators, "planned_sessions": 6}
        return trust, "class.started", data
    timepoint = draw(st.sampled_from(["baseline", "baseline", "month_3", "month_12"]))
    data = {
        "patient_ref": draw(st.sampled_from(PATIENTS)),
        "timepoint": timepoint,
        "measures": {"rmdq": draw(st.integers(0, 24))},
    }
    return trust, "patient.assessed", data


modules = st.sampled_from(MODULES)


def events(plans: list[Plan], ids: list[str], minutes: list[int]) -> list[AnyEvent]:
    """The plans as wire events (each a distinct time, so no tie is broken by an id)."""
    out = []
    for (trust, name, data), eid, minute in zip(plans, ids, minutes, strict=True):
        raw = cloud_event(
            name,
            data,
            trust=trust,
            site=f"{trust}01",
            time=T0 + timedelta(minutes=minute),
            event_id=eid,
        )
        out.append(parse_event(f"ibest.v1.{trust}.{name}", json.dumps(raw).encode()))
    return out


@st.composite
def colliding_ids(draw: st.DrawFn, plans: list[Plan]) -> list[str]:
    """Ids unique within each trust, colliding across trusts and with derived events: RTH
    takes fresh ids and today's main's derived ids; RKB takes RTH's ids and RTH's
    clinicians' keyed derived ids."""
    rth = [i for i, (trust, _, _) in enumerate(plans) if trust == "RTH"]
    rkb = [i for i, (trust, _, _) in enumerate(plans) if trust == "RKB"]
    old = old_derived_ids()
    pool_rth = [*old, *(str(uuid.UUID(int=n + 1)) for n in range(len(rth)))]
    chosen_rth = draw(st.permutations(pool_rth))[: len(rth)]
    pool_rkb = [*chosen_rth, *derived_ids_of("RTH"), *(str(uuid.uuid4()) for _ in rkb)]
    chosen_rkb = draw(st.permutations(pool_rkb))[: len(rkb)]
    ids = [""] * len(plans)
    for i, eid in [*zip(rth, chosen_rth, strict=True), *zip(rkb, chosen_rkb, strict=True)]:
        ids[i] = eid
    return ids


@settings(max_examples=60, deadline=None)
@given(st.data(), st.lists(plan(), min_size=4, max_size=30))
def test_colliding_ids_give_the_figures_fresh_ids_give(
    data: st.DataObject, plans: list[Plan]
) -> None:
    minutes = data.draw(st.permutations([7 * n for n in range(len(plans))]))
    fresh = [str(uuid.uuid4()) for _ in plans]
    colliding = data.draw(colliding_ids(plans))
    expected, got = Platform(), Platform()
    expected.receive(events(plans, fresh, minutes))
    got.receive(events(plans, colliding, minutes))
    assert expected.rejected == got.rejected == []
    assert got.figures() == expected.figures()
