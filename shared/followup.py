"""When a patient's follow-ups fall due and when their collection windows open and close.

One function, used by the outcomes service (to tell when a follow-up is due) and by the
notifications service (to remind site teams), so the two can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

NHS_TIMEZONE = ZoneInfo("Europe/London")


class Timepoint(StrEnum):
    BASELINE = "baseline"
    GROUP_END = "group_end"
    MONTH_3 = "month_3"
    MONTH_12 = "month_12"


FOLLOW_UPS = (Timepoint.MONTH_3, Timepoint.MONTH_12)


@dataclass(frozen=True)
class FollowUpWindow:
    """One follow-up's due date and the inclusive dates it can be collected between."""

    timepoint: Timepoint
    due: date
    opens: date
    closes: date


# (days after baseline, days before due it opens, days after due it closes), domain.md.
_RULES: dict[Timepoint, tuple[int, int, int]] = {
    Timepoint.MONTH_3: (91, 14, 42),
    Timepoint.MONTH_12: (364, 28, 56),
}


def follow_up_window(baseline: date, timepoint: Timepoint) -> FollowUpWindow:
    """The window of one follow-up timepoint for a baseline assessed on `baseline`."""
    if timepoint not in _RULES:
        raise ValueError(f"{timepoint.value} is not a follow-up timepoint")
    after, before_due, after_due = _RULES[timepoint]
    due = baseline + timedelta(days=after)
    return FollowUpWindow(
        timepoint=timepoint,
        due=due,
        opens=due - timedelta(days=before_due),
        closes=due + timedelta(days=after_due),
    )


def follow_up_windows(baseline: date) -> dict[Timepoint, FollowUpWindow]:
    """The month 3 and month 12 windows for one baseline date."""
    return {tp: follow_up_window(baseline, tp) for tp in FOLLOW_UPS}


def assessment_date(time: datetime) -> date:
    """The calendar date of an assessment, as the trust saw it (Europe/London)."""
    return time.astimezone(NHS_TIMEZONE).date()


def is_due(baseline_time: datetime, timepoint: Timepoint, now: datetime) -> bool:
    """Whether a follow-up's due date has arrived: due on or before today in Europe/London."""
    return follow_up_window(assessment_date(baseline_time), timepoint).due <= assessment_date(now)
