"""Delivery survey nudges: the invitation on the due date and one reminder 14 days before
the window closes, each cancelled by an answer (domain.md, "Clinicians' delivery surveys").

Pure: dates in, nudges and verdicts out. The windows themselves come from shared.surveys,
the one definition reporting counts with too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from shared.events import ReminderKind
from shared.followup import NHS_TIMEZONE
from shared.surveys import SURVEYS, Survey, survey_window

SURVEY_TIMING = ("remind_on", "due", "opens", "closes", "closing_on", "due_at", "send_after")
"""What a stored survey nudge takes from its completion date: a corrected, earlier
completion (a higher revision of `clinician.training_completed`) moves these on the nudges
still pending, so the nudges follow the completion as it stands, in any order."""

SurveyWindows = dict[str, list[tuple[str, str]]]
"""Per clinician, the windows (opens, closes: ISO dates) of the survey nudges just written."""


def answering(reports: Iterable[str], windows: Iterable[tuple[str, str]]) -> list[str]:
    """The report dates (ISO) inside one of `windows`: only those can answer a nudge timed
    by them (ISO dates order as text)."""
    spans = list(windows)
    return [day for day in reports if any(opens <= day <= closes for opens, closes in spans)]


INVITE = ReminderKind.DELIVERY_SURVEY_DUE
CLOSING = ReminderKind.DELIVERY_SURVEY_CLOSING


@dataclass(frozen=True)
class SurveyNudge:
    """One message of one survey: on `remind_on` (a Europe/London date), if still unanswered."""

    survey: Survey
    kind: ReminderKind
    remind_on: date
    due: date
    opens: date
    closes: date
    closing_on: date
    """When the survey's closing reminder goes: an invitation still unsent by then is
    superseded by it, so nobody gets both at once."""

    @property
    def due_at(self) -> datetime:
        """The start of `remind_on` in Europe/London, as UTC (working hours then apply)."""
        return datetime.combine(self.remind_on, time(0), tzinfo=NHS_TIMEZONE).astimezone(UTC)


def survey_nudges(completed: date, closing_before: timedelta) -> list[SurveyNudge]:
    """The invitation and closing reminder of both surveys for a completion date."""
    nudges = []
    for survey in SURVEYS:
        w = survey_window(completed, survey)
        closing_on = w.closes - closing_before
        for kind, on in ((INVITE, w.due), (CLOSING, closing_on)):
            nudges.append(SurveyNudge(survey, kind, on, w.due, w.opens, w.closes, closing_on))
    return nudges


def reason_not_to_send(
    kind: ReminderKind,
    opens: date,
    closes: date,
    closing_on: date,
    today: date,
    report_dates: Iterable[date],
) -> str | None:
    """Why a survey nudge due now must not go (it is then cancelled), or None to send it.

    A nudge is never due before its window opens (both fall on or after the due date)."""
    if any(opens <= d <= closes for d in report_dates):
        return "survey answered"
    if today > closes:
        return "survey window closed"
    if kind == INVITE and today >= closing_on:
        return "superseded by the closing reminder"
    return None
