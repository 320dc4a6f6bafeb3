"""Change and meaningful improvement, against domain.md's table, measure by measure."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.measures import MEASURES, Measure, change, is_meaningful_improvement

LOWER = [m for m, s in MEASURES.items() if s.lower_is_better]
HIGHER = [m for m, s in MEASURES.items() if not s.lower_is_better]


def scores(measure: Measure) -> st.SearchStrategy[float]:
    spec = MEASURES[measure]
    if spec.integer:
        return st.integers(int(spec.minimum), int(spec.maximum)).map(float)
    return st.floats(spec.minimum, spec.maximum, allow_nan=False)


def test_directions_and_thresholds_are_domain_md_table() -> None:
    assert LOWER == [
        Measure.RMDQ,
        Measure.PAIN_NRS,
        Measure.VON_KORFF_PAIN,
        Measure.VON_KORFF_DISABILITY,
    ]
    assert HIGHER == [Measure.PSFS, Measure.PSEQ]
    table = {m: (s.points_threshold, s.percent_of_baseline) for m, s in MEASURES.items()}
    assert table == {
        Measure.RMDQ: (5, 0.30),
        Measure.PAIN_NRS: (2, 0.30),
        Measure.VON_KORFF_PAIN: (None, 0.30),
        Measure.VON_KORFF_DISABILITY: (None, 0.30),
        Measure.PSFS: (2, None),
        Measure.PSEQ: (7, None),
    }


def test_change_is_follow_up_minus_baseline() -> None:
    assert change(12, 6) == -6  # RMDQ falling: negative change, an improvement
    assert change(3, 8) == 5
    assert change(3.1, 5.1) == 2.0  # exact, not 1.9999999999999996
    assert change(7, 7) == 0


@pytest.mark.parametrize(
    ("measure", "baseline", "value", "improved"),
    [
        # RMDQ: 5 points, or 30% of baseline
        (Measure.RMDQ, 20, 15, True),  # 5 points (30% would be 6)
        (Measure.RMDQ, 20, 16, False),  # 4 points, under both rules
        (Measure.RMDQ, 10, 7, True),  # 3 points = 30% of 10 exactly
        (Measure.RMDQ, 10, 8, False),  # 2 points < 3
        (Measure.RMDQ, 3, 2, True),  # 1 point >= 30% of 3 (0.9)
        (Measure.RMDQ, 24, 19, True),
        (Measure.RMDQ, 10, 15, False),  # worse, by more than any threshold
        # Pain NRS: 2 points, or 30% of baseline
        (Measure.PAIN_NRS, 8, 6, True),
        (Measure.PAIN_NRS, 5, 4, False),  # 1 point < 1.5
        (Measure.PAIN_NRS, 3, 2, True),  # 1 point >= 0.9
        (Measure.PAIN_NRS, 10, 7, True),
        (Measure.PAIN_NRS, 4, 7, False),
        # Von Korff: 30% of baseline only
        (Measure.VON_KORFF_PAIN, 50, 35, True),
        (Measure.VON_KORFF_PAIN, 50, 35.5, False),
        (Measure.VON_KORFF_PAIN, 10, 7, True),
        (Measure.VON_KORFF_PAIN, 70, 49, True),
        (Measure.VON_KORFF_PAIN, 23, 16.1, True),  # 6.9 = 30% of 23, exactly
        (Measure.VON_KORFF_DISABILITY, 100, 71, False),
        (Measure.VON_KORFF_DISABILITY, 100, 70, True),
        (Measure.VON_KORFF_DISABILITY, 5, 4, False),  # no points rule: 1 < 1.5
        # PSFS: higher is better, 2 points, no percentage
        (Measure.PSFS, 3, 5, True),
        (Measure.PSFS, 3.1, 5.1, True),
        (Measure.PSFS, 3, 4.9, False),
        (Measure.PSFS, 0, 2, True),  # a 0 baseline can improve when higher is better
        (Measure.PSFS, 6, 4, False),  # 2 points the wrong way
        (Measure.PSFS, 0.5, 0.7, False),  # 40% up, but PSFS has no percentage rule
        # PSEQ: higher is better, 7 points
        (Measure.PSEQ, 20, 27, True),
        (Measure.PSEQ, 20, 26, False),
        (Measure.PSEQ, 2, 5, False),  # 150% up, but PSEQ has no percentage rule
        (Measure.PSEQ, 40, 33, False),
    ],
)
def test_meaningful_improvement_examples(
    measure: Measure, baseline: float, value: float, improved: bool
) -> None:
    assert is_meaningful_improvement(measure, baseline, value) is improved


@pytest.mark.parametrize("measure", LOWER)
def test_zero_baseline_lower_is_better_cannot_improve(measure: Measure) -> None:
    spec = MEASURES[measure]
    for value in range(int(spec.minimum), int(spec.maximum) + 1):
        assert is_meaningful_improvement(measure, 0, value) is False


@given(st.data())
def test_zero_change_is_never_an_improvement(data: st.DataObject) -> None:
    measure = data.draw(st.sampled_from(list(Measure)))
    score = data.draw(scores(measure))
    assert change(score, score) == 0
    assert is_meaningful_improvement(measure, score, score) is False


@given(st.data())
def test_a_change_in_the_worse_direction_never_improves(data: st.DataObject) -> None:
    measure = data.draw(st.sampled_from(list(Measure)))
    a, b = sorted((data.draw(scores(measure)), data.draw(scores(measure))))
    worse = (a, b) if MEASURES[measure].lower_is_better else (b, a)
    assert is_meaningful_improvement(measure, *worse) is False


@given(st.data())
def test_verdict_matches_the_rule_written_in_exact_arithmetic(data: st.DataObject) -> None:
    """Integer measures: the verdict equals domain.md's sentence computed in integers."""
    measure = data.draw(st.sampled_from([m for m in Measure if MEASURES[m].integer]))
    spec = MEASURES[measure]
    baseline, value = data.draw(scores(measure)), data.draw(scores(measure))
    gain = int(baseline - value if spec.lower_is_better else value - baseline)
    by_points = spec.points_threshold is not None and gain >= spec.points_threshold
    by_share = spec.percent_of_baseline is not None and 10 * gain >= 3 * int(baseline)
    assert is_meaningful_improvement(measure, baseline, value) is (
        gain > 0 and (by_points or by_share)
    )


@given(st.data())
def test_a_bigger_gain_from_the_same_baseline_stays_an_improvement(data: st.DataObject) -> None:
    measure = data.draw(st.sampled_from(list(Measure)))
    baseline, v1, v2 = (data.draw(scores(measure)) for _ in range(3))
    if MEASURES[measure].lower_is_better:
        worse_value, better_value = max(v1, v2), min(v1, v2)
    else:
        worse_value, better_value = min(v1, v2), max(v1, v2)
    if is_meaningful_improvement(measure, baseline, worse_value):
        assert is_meaningful_improvement(measure, baseline, better_value)
