"""The clinicians' delivery surveys at 4 and 12 months: when each falls due, when it can be
answered, and which survey a delivery report answers (domain.md, "Clinicians' delivery
surveys").

One definition, used by the notifications service (to invite and remind) and by the
reporting service (to count who was due and who answered), so the two can never disagree.
Every date is a Europe/London calendar date.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import TypeVar

from shared.followup import assessment_date


class Survey(StrEnum):
    MONTH_4 = "month_4"
    MONTH_12 = "month_12"


SURVEYS = (Survey.MONTH_4, Survey.MONTH_12)


@dataclass(frozen=True)
class SurveyWindow:
    """One survey's due date and the inclusive dates it can be answered between."""

    survey: Survey
    due: date
    opens: date
    closes: date

    def contains(self, day: date) -> bool:
        return self.opens <= day <= self.closes


# (days after completion, days before due it opens, days after due it closes), domain.md.
_RULES: dict[Survey, tuple[int, int, int]] = {
    Survey.MONTH_4: (122, 14, 42),
    Survey.MONTH_12: (365, 28, 56),
}


def completion_date(completed_at: datetime) -> date:
    """The date of completion: the completing module event's time as a Europe/London date."""
    return assessment_date(completed_at)


def survey_window(completed: date, survey: Survey) -> SurveyWindow:
    """The window of one survey for a clinician who completed the course on `completed`."""
    after, before_due, after_due = _RULES[Survey(survey)]
    due = completed + timedelta(days=after)
    return SurveyWindow(
        survey=Survey(survey),
        due=due,
        opens=due - timedelta(days=before_due),
        closes=due + timedelta(days=after_due),
    )


def survey_windows(completed: date) -> dict[Survey, SurveyWindow]:
    """The month 4 and month 12 windows for one completion date."""
    return {s: survey_window(completed, s) for s in SURVEYS}


def survey_answered(completed: date, reported_at: datetime) -> Survey | None:
    """The survey a delivery report made at `reported_at` answers: the one whose window
    contains its Europe/London date, or None (it still counts as the latest report)."""
    day = assessment_date(reported_at)
    for survey, window in survey_windows(completed).items():
        if window.contains(day):
            return survey
    return None


Report = TypeVar("Report")


def survey_answers(
    completed: date, reports: Iterable[tuple[datetime, str, Report]]
) -> dict[Survey, Report]:
    """Each survey's answer: the latest report (event time, then trust code, then id)
    inside its window.

    `reports` are (event time, tie-break key, report), the key "<trust code> <event id>"
    (the platform's one order on equal times); surveys nobody answered are absent.
    """
    best: dict[Survey, tuple[datetime, str, Report]] = {}
    for at, report_id, report in reports:
        survey = survey_answered(completed, at)
        if survey is not None and (survey not in best or (at, report_id) > best[survey][:2]):
            best[survey] = (at, report_id, report)
    return {s: best[s][2] for s in SURVEYS if s in best}


def completed_at(data_completed_at: datetime | None, event_time: datetime) -> datetime:
    """When a `clinician.training_completed` says the course was completed: its
    `completed_at`, or (an event from before the field existed) its event time, which
    enrolment sets to the same moment."""
    return data_completed_at or event_time
