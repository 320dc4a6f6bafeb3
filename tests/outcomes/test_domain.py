"""Winners, corrections and outcomes as pure functions (no servers)."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.outcomes.application import outcome_event, outcome_event_id
from services.outcomes.domain.assessments import Assessment
from services.outcomes.domain.outcomes import Outcome, PatientState
from shared.envelope import parse_event
from shared.followup import Timepoint
from shared.measures import MEASURES, Measure
from tests.harness import ID_KEY

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def assessment(
    timepoint: Timepoint,
    measures: dict[Measure, float],
    *,
    days: float = 0,
    event_id: str | None = None,
    site: str = "RTH08",
) -> Assessment:
    return Assessment(
        event_id or str(uuid.uuid4()),
        "RTH",
        site,
        "p-1",
        timepoint,
        T0 + timedelta(days=days),
        measures,
    )


def apply_all(assessments: list[Assessment]) -> tuple[PatientState, list[Outcome]]:
    state, published = PatientState(), []
    for a in assessments:
        state, changed = state.apply(a)
        published.extend(changed)
    return state, published


def test_follow_up_against_baseline_per_measure_present_in_both() -> None:
    base = assessment(Timepoint.BASELINE, {Measure.RMDQ: 12, Measure.PSFS: 3.1})
    m3 = assessment(
        Timepoint.MONTH_3,
        {Measure.RMDQ: 6, Measure.PSFS: 5.1, Measure.PSEQ: 40},
        days=91,
        site="RTH02",
    )
    _, [outcome] = apply_all([base, m3])
    payload = outcome.payload()
    assert payload.revision == 1 and payload.timepoint == Timepoint.MONTH_3
    assert {
        m: (o.baseline, o.value, o.change, o.improved) for m, o in payload.measures.items()
    } == {Measure.RMDQ: (12, 6, -6, True), Measure.PSFS: (3.1, 5.1, 2.0, True)}
    event = outcome_event(outcome, ID_KEY)
    assert (event.trustcode, event.sitecode, event.source) == ("RTH", "RTH08", "/services/outcomes")
    assert event.time == m3.time  # the later of the two
    assert event.id == outcome_event_id(ID_KEY, "RTH", "p-1", Timepoint.MONTH_3, 1)
    assert parse_event(event.subject, event.to_json()) == event


def test_baseline_alone_publishes_nothing_and_early_follow_up_waits_for_it() -> None:
    m12 = assessment(Timepoint.MONTH_12, {Measure.PAIN_NRS: 3}, days=364)
    state, published = apply_all([m12])
    assert published == [] and state.outcomes() == {}
    state, [outcome] = state.apply(assessment(Timepoint.BASELINE, {Measure.PAIN_NRS: 8}))
    assert outcome.timepoint == Timepoint.MONTH_12 and outcome.revision == 1
    assert outcome.measures[Measure.PAIN_NRS].improved


def test_correction_of_baseline_supersedes_every_follow_up_with_a_higher_revision() -> None:
    base = assessment(Timepoint.BASELINE, {Measure.RMDQ: 12})
    ge = assessment(Timepoint.GROUP_END, {Measure.RMDQ: 10}, days=42)
    m3 = assessment(Timepoint.MONTH_3, {Measure.RMDQ: 6}, days=91)
    state, published = apply_all([base, ge, m3])
    assert [(o.timepoint, o.revision) for o in published] == [
        (Timepoint.GROUP_END, 1),
        (Timepoint.MONTH_3, 1),
    ]
    fixed = assessment(Timepoint.BASELINE, {Measure.RMDQ: 9}, days=1)
    state, changed = state.apply(fixed)
    assert [(o.timepoint, o.revision) for o in changed] == [
        (Timepoint.GROUP_END, 2),
        (Timepoint.MONTH_3, 2),
    ]
    assert changed[1].measures[Measure.RMDQ].baseline == 9
    assert changed[1].measures[Measure.RMDQ].change == -3


def test_redelivery_and_an_older_correction_change_nothing() -> None:
    base = assessment(Timepoint.BASELINE, {Measure.RMDQ: 12}, days=1)
    m3 = assessment(Timepoint.MONTH_3, {Measure.RMDQ: 6}, days=91)
    state, _ = apply_all([base, m3])
    for again in (base, m3, assessment(Timepoint.BASELINE, {Measure.RMDQ: 20}, days=0)):
        after, changed = state.apply(again)
        assert after is state and changed == []


def test_same_time_ties_are_broken_by_event_id() -> None:
    a = assessment(Timepoint.BASELINE, {Measure.RMDQ: 12}, event_id="a")
    b = assessment(Timepoint.BASELINE, {Measure.RMDQ: 14}, event_id="b")
    for order in ([a, b], [b, a]):
        state, _ = apply_all(order)
        assert state.winners[Timepoint.BASELINE].event_id == "b"


def test_state_survives_its_document_form() -> None:
    base = assessment(Timepoint.BASELINE, {Measure.RMDQ: 12, Measure.VON_KORFF_PAIN: 33.3})
    m3 = assessment(Timepoint.MONTH_3, {Measure.RMDQ: 6}, days=91.000001)
    state, _ = apply_all([base, m3])
    assert PatientState.from_doc(state.to_doc()) == state


# Property: arrival order does not matter.


def measure_sets() -> st.SearchStrategy[dict[Measure, float]]:
    def score(m: Measure) -> st.SearchStrategy[float]:
        spec = MEASURES[m]
        if spec.integer:
            return st.integers(int(spec.minimum), int(spec.maximum)).map(float)
        return st.floats(spec.minimum, spec.maximum, allow_nan=False)

    return st.dictionaries(st.sampled_from(list(Measure)), st.just(0.0), min_size=1).flatmap(
        lambda d: st.fixed_dictionaries({m: score(m) for m in d})
    )


@st.composite
def histories(draw: st.DrawFn) -> list[Assessment]:
    """A patient's assessments and corrections; few distinct times, so ties happen."""
    n = draw(st.integers(1, 8))
    return [
        Assessment(
            f"e{i:02d}",
            "RTH",
            draw(st.sampled_from(["RTH08", "RTH02"])),
            "p-1",
            draw(st.sampled_from(list(Timepoint))),
            T0 + timedelta(days=draw(st.integers(0, 3))),
            draw(measure_sets()),
        )
        for i in range(n)
    ]


def content(state: PatientState) -> dict[Timepoint, tuple[object, ...]]:
    return {
        tp: (
            o.baseline.event_id,
            o.follow_up.event_id,
            o.time,
            o.measures,
            outcome_event(o, ID_KEY).sitecode,
        )
        for tp, o in state.outcomes().items()
    }


@pytest.mark.slow
@settings(max_examples=200)
@given(histories(), st.randoms(use_true_random=False))
def test_any_arrival_order_gives_the_same_winners_and_outcomes(
    history: list[Assessment], rnd: random.Random
) -> None:
    reference, _ = apply_all(sorted(history, key=lambda a: a.rank))
    shuffled = list(history)
    rnd.shuffle(shuffled)
    with_redeliveries = shuffled + rnd.sample(shuffled, k=len(shuffled) // 2)
    state, published = apply_all(with_redeliveries)
    assert {tp: a.event_id for tp, a in state.winners.items()} == {
        tp: max((a for a in history if a.timepoint == tp), key=lambda a: a.rank).event_id
        for tp in {a.timepoint for a in history}
    }
    assert content(state) == content(reference)
    # What consumers keep (the highest revision per timepoint) is the final outcome.
    last: dict[Timepoint, Outcome] = {}
    for o in published:
        assert o.revision > (last[o.timepoint].revision if o.timepoint in last else 0)
        last[o.timepoint] = o
    assert {
        tp: (o.baseline.event_id, o.follow_up.event_id, o.measures) for tp, o in last.items()
    } == {
        tp: (o.baseline.event_id, o.follow_up.event_id, o.measures)
        for tp, o in state.outcomes().items()
    }
