"""The simulated rollout without servers: reproducible, realistic, and within the contract."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

import pytest

from ibest.simulate.model import (
    FALLBACK_MODULES,
    Plan,
    SimulationOptions,
    plan_rollout,
)
from ibest.simulate.runner import course_modules
from ibest.simulate.trusts import load_trusts
from shared.envelope import ContractError, parse_event
from tests.harness import fresh_settings

DERIVED = {
    "clinician.training_started",
    "clinician.training_completed",
    "outcome.recorded",
    "notification.sent",
    "notification.failed",
}
OPTIONS = SimulationOptions(seed=7, clinicians=400, patients=300)


@pytest.fixture(scope="module")
def plan() -> Plan:
    return plan_rollout(OPTIONS, load_trusts(), list(FALLBACK_MODULES))


@pytest.mark.slow
def test_same_seed_gives_the_same_events(plan: Plan) -> None:
    again = plan_rollout(OPTIONS, load_trusts(), list(FALLBACK_MODULES))
    assert [(p.subject, p.body, p.msg_id) for p in again.events] == [
        (p.subject, p.body, p.msg_id) for p in plan.events
    ]
    other = plan_rollout(
        SimulationOptions(seed=8, clinicians=400, patients=300),
        load_trusts(),
        list(FALLBACK_MODULES),
    )
    assert {p.msg_id for p in other.events}.isdisjoint({p.msg_id for p in plan.events})


def test_every_deliberately_valid_event_validates(plan: Plan) -> None:
    for planned in plan.events:
        if planned.valid:
            event = parse_event(planned.subject, planned.body)
            assert str(event.id) == planned.msg_id
            assert event.event_type.name not in DERIVED
        else:
            with pytest.raises(ContractError):
                parse_event(planned.subject, planned.body)


def test_funnel_proportions_are_like_the_published_figures(plan: Plan) -> None:
    assert plan.clinicians == 400
    assert 0.52 <= plan.begun / plan.clinicians <= 0.68
    assert 0.32 <= plan.completed / plan.clinicians <= 0.48
    professions = Counter(
        json.loads(p.body)["data"]["profession"]
        for p in plan.events
        if p.name == "clinician.enrolled" and not p.duplicate and p.valid
    )
    assert professions.most_common(1)[0][0] == "physiotherapist"
    assert len(professions) >= 5


def _assessments(plan: Plan) -> dict[tuple[str, str], dict[str, float]]:
    out: dict[tuple[str, str], dict[str, float]] = {}
    for p in plan.events:
        if p.name == "patient.assessed" and p.valid and not p.duplicate:
            data = json.loads(p.body)["data"]
            out[(data["patient_ref"], data["timepoint"])] = data["measures"]
    return out


def test_patients_improve_about_as_the_trial_found_with_missing_follow_ups(plan: Plan) -> None:
    scores = _assessments(plan)
    baselines = {ref for ref, tp in scores if tp == "baseline"}
    assert len(baselines) == plan.patients == 300
    month_3 = {ref for ref, tp in scores if tp == "month_3"}
    assert 0.5 <= len(month_3) / len(baselines) <= 0.85, "some follow-ups are missing"
    changes = [
        scores[(ref, "month_3")]["rmdq"] - scores[(ref, "baseline")]["rmdq"]
        for ref in month_3
        if "rmdq" in scores[(ref, "baseline")]
    ]
    mean = sum(changes) / len(changes)
    assert -4.5 <= mean <= -1.5, f"RMDQ mean change {mean:.2f}"


def test_the_rollout_uses_real_trusts_with_several_sites(plan: Plan) -> None:
    trusts = {t.code for t in load_trusts()}
    places = Counter(
        (json.loads(p.body)["trustcode"], json.loads(p.body)["sitecode"])
        for p in plan.events
        if p.valid
    )
    assert {t for t, _ in places} == trusts
    per_trust = Counter(t for t, _ in places)
    assert min(per_trust.values()) >= 2


def test_a_few_duplicates_out_of_order_and_invalid_events(plan: Plan) -> None:
    duplicates = [p for p in plan.events if p.duplicate]
    invalid = [p for p in plan.events if not p.valid]
    assert 0 < len(duplicates) < 0.03 * len(plan.events)
    assert 0 < len(invalid) < 0.02 * len(plan.events)
    originals = {p.msg_id: p.body for p in plan.events if not p.duplicate}
    assert all(originals[d.msg_id] == d.body for d in duplicates), "a duplicate is a re-send"
    first_module: dict[str, int] = {}
    enrolled_at: dict[str, int] = {}
    for i, p in enumerate(plan.events):
        if p.valid and not p.duplicate and p.name in {"module.started", "clinician.enrolled"}:
            ref = json.loads(p.body)["data"]["clinician_ref"]
            target = enrolled_at if p.name == "clinician.enrolled" else first_module
            target.setdefault(ref, i)
    late = [ref for ref, i in enrolled_at.items() if ref in first_module and first_module[ref] < i]
    assert late, "some module events arrive before their enrolment"


def test_modules_come_from_the_enrolment_catalogue() -> None:
    modules, source = course_modules(
        fresh_settings("nats://127.0.0.1:1", "mongodb://127.0.0.1:1"), "1"
    )
    assert source.endswith("catalogue.json")
    assert modules == list(FALLBACK_MODULES)


def test_events_after_the_simulated_end_are_not_planned() -> None:
    short = SimulationOptions(
        seed=3, clinicians=50, patients=20, months=2, start=datetime(2024, 3, 1, tzinfo=UTC)
    )
    plan = plan_rollout(short, load_trusts(), list(FALLBACK_MODULES))
    times = [datetime.fromisoformat(json.loads(p.body)["time"]) for p in plan.events if p.valid]
    assert max(times) <= short.end
