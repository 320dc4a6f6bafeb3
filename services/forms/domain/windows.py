"""Whether a clinician's answer is still wanted, judged at submission (domain.md, "Where the
data is born"): the intention question is open for 90 days after completion; each delivery
survey inside its window (`shared.surveys`, the one definition notifications and reporting
use). Every date is a Europe/London date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from shared.followup import assessment_date
from shared.links import ClinicianForm
from shared.surveys import Survey, survey_window

INTENTION_OPEN_DAYS = 90
SURVEY_OF: dict[ClinicianForm, Survey] = {
    ClinicianForm.DELIVERY_MONTH_4: Survey.MONTH_4,
    ClinicianForm.DELIVERY_MONTH_12: Survey.MONTH_12,
}


class Verdict(StrEnum):
    OPEN = "open"
    NOT_YET = "not_yet"
    CLOSED = "closed"
    UNKNOWN = "unknown"
    """The platform has no completion for this clinician (nothing to judge against)."""


@dataclass(frozen=True)
class FormWindow:
    opens: date
    closes: date


def form_window(form: ClinicianForm, completed: date) -> FormWindow:
    """The inclusive dates `form` can be answered between, for a completion on `completed`."""
    if form == ClinicianForm.INTENTION:
        return FormWindow(completed, completed + timedelta(days=INTENTION_OPEN_DAYS))
    window = survey_window(completed, SURVEY_OF[form])
    return FormWindow(window.opens, window.closes)


def judge(form: ClinicianForm, completed_at: datetime | None, now: datetime) -> Verdict:
    """Whether an answer to `form` submitted at `now` is wanted."""
    if completed_at is None:
        return Verdict.UNKNOWN
    window = form_window(form, assessment_date(completed_at))
    today = assessment_date(now)
    if today < window.opens:
        return Verdict.NOT_YET
    if today > window.closes:
        return Verdict.CLOSED
    return Verdict.OPEN
