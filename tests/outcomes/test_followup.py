"""The one definition of follow-up windows (shared.followup), as domain.md states it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.followup import (
    FollowUpWindow,
    Timepoint,
    assessment_date,
    follow_up_window,
    follow_up_windows,
    is_due,
)


def test_month_3_and_month_12_windows_of_a_known_baseline() -> None:
    # 2024 is a leap year: 1 Jan + 91 days is 1 Apr; + 364 days is 30 Dec.
    assert follow_up_windows(date(2024, 1, 1)) == {
        Timepoint.MONTH_3: FollowUpWindow(
            Timepoint.MONTH_3,
            due=date(2024, 4, 1),
            opens=date(2024, 3, 18),
            closes=date(2024, 5, 13),
        ),
        Timepoint.MONTH_12: FollowUpWindow(
            Timepoint.MONTH_12,
            due=date(2024, 12, 30),
            opens=date(2024, 12, 2),
            closes=date(2025, 2, 24),
        ),
    }


@given(st.dates(date(2000, 1, 1), date(2100, 1, 1)))
def test_windows_are_due_minus_and_plus_the_domain_days(baseline: date) -> None:
    m3 = follow_up_window(baseline, Timepoint.MONTH_3)
    m12 = follow_up_window(baseline, Timepoint.MONTH_12)
    assert (m3.due - baseline).days == 91
    assert (m3.due - m3.opens).days == 14 and (m3.closes - m3.due).days == 42
    assert (m12.due - baseline).days == 364
    assert (m12.due - m12.opens).days == 28 and (m12.closes - m12.due).days == 56
    assert m3.closes < m12.opens  # the two windows never overlap


@pytest.mark.parametrize("timepoint", [Timepoint.BASELINE, Timepoint.GROUP_END])
def test_only_month_3_and_month_12_have_windows(timepoint: Timepoint) -> None:
    with pytest.raises(ValueError, match="not a follow-up timepoint"):
        follow_up_window(date(2024, 1, 1), timepoint)


def test_assessment_date_is_the_calendar_date_in_london() -> None:
    # Summer (BST, UTC+1): 23:30 UTC is already the next day in London.
    assert assessment_date(datetime(2024, 6, 30, 23, 30, tzinfo=UTC)) == date(2024, 7, 1)
    # Winter (GMT): the same clock time stays on the same day.
    assert assessment_date(datetime(2024, 1, 1, 23, 30, tzinfo=UTC)) == date(2024, 1, 1)
    # An offset elsewhere is converted, not read off the wall clock.
    tokyo = timezone(timedelta(hours=9))
    assert assessment_date(datetime(2024, 1, 2, 8, 0, tzinfo=tokyo)) == date(2024, 1, 1)


def test_is_due_from_the_due_date_in_london_not_before() -> None:
    # Baseline 31 Mar 23:30 UTC = 1 Apr 00:30 BST, so month 3 is due 1 Jul (London).
    baseline = datetime(2024, 3, 31, 23, 30, tzinfo=UTC)
    assert not is_due(baseline, Timepoint.MONTH_3, datetime(2024, 6, 30, 22, 59, tzinfo=UTC))
    assert is_due(baseline, Timepoint.MONTH_3, datetime(2024, 6, 30, 23, 0, tzinfo=UTC))
    assert is_due(baseline, Timepoint.MONTH_3, datetime(2025, 1, 1, tzinfo=UTC))
    # 1 Apr 2024 + 364 days = 31 Mar 2025 (a GMT day: the clocks change on 30 Mar 2025).
    assert not is_due(baseline, Timepoint.MONTH_12, datetime(2025, 3, 30, 22, 59, tzinfo=UTC))
    assert is_due(baseline, Timepoint.MONTH_12, datetime(2025, 3, 31, 0, 0, tzinfo=UTC))


@given(
    st.datetimes(datetime(2001, 1, 1), datetime(2099, 1, 1), timezones=st.just(UTC)),
    st.integers(0, 500),
)
def test_is_due_exactly_when_the_london_date_reaches_due(baseline: datetime, days: int) -> None:
    now = baseline + timedelta(days=days)
    for tp, offset in ((Timepoint.MONTH_3, 91), (Timepoint.MONTH_12, 364)):
        due = assessment_date(baseline) + timedelta(days=offset)
        assert is_due(baseline, tp, now) is (assessment_date(now) >= due)
