"""The delivery survey windows (shared.surveys) at their edges: Europe/London dates,
daylight-saving changes, leap years; and which survey a delivery report answers."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from shared.envelope import ContractError, new_event, parse_event
from shared.events import TrainingCompleted
from shared.surveys import (
    Survey,
    completed_at,
    completion_date,
    survey_answered,
    survey_answers,
    survey_window,
)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("completed", "survey", "due", "opens", "closes"),
    [
        # 2025 is not a leap year: 1 Jan + 122 days is 3 May.
        (date(2025, 1, 1), Survey.MONTH_4, date(2025, 5, 3), date(2025, 4, 19), date(2025, 6, 14)),
        # 2024 is: 29 February is one of the 122 days, so the due date is a day earlier.
        (date(2024, 1, 1), Survey.MONTH_4, date(2024, 5, 2), date(2024, 4, 18), date(2024, 6, 13)),
        # 365 days spanning 29 February 2024 end a calendar day short of the anniversary ...
        (date(2023, 6, 1), Survey.MONTH_12, date(2024, 5, 31), date(2024, 5, 3), date(2024, 7, 26)),
        # ... and without one they land on it.
        (date(2024, 6, 1), Survey.MONTH_12, date(2025, 6, 1), date(2025, 5, 4), date(2025, 7, 27)),
        # Completed on 29 February itself.
        (
            date(2024, 2, 29),
            Survey.MONTH_12,
            date(2025, 2, 28),
            date(2025, 1, 31),
            date(2025, 4, 25),
        ),
        # Month 12 of a New Year's Day completion in a non-leap year: due the next New Year's Day.
        (date(2025, 1, 1), Survey.MONTH_12, date(2026, 1, 1), date(2025, 12, 4), date(2026, 2, 26)),
    ],
)
def test_windows_by_calendar_date(
    completed: date, survey: Survey, due: date, opens: date, closes: date
) -> None:
    window = survey_window(completed, survey)
    assert (window.due, window.opens, window.closes) == (due, opens, closes)
    assert window.contains(opens) and window.contains(closes)
    assert not window.contains(date.fromordinal(opens.toordinal() - 1))
    assert not window.contains(date.fromordinal(closes.toordinal() + 1))


def test_completion_date_is_the_london_date() -> None:
    # 23:30 UTC on 30 June is 00:30 BST on 1 July: completed on 1 July.
    assert completion_date(utc(2025, 6, 30, 23, 30)) == date(2025, 7, 1)
    # In winter London is on UTC: 23:30 UTC on 31 December is still 31 December.
    assert completion_date(utc(2025, 12, 31, 23, 30)) == date(2025, 12, 31)
    # The night the clocks go forward (30 March 2025, 01:00 UTC).
    assert completion_date(utc(2025, 3, 29, 23, 59)) == date(2025, 3, 29)
    assert completion_date(utc(2025, 3, 30, 0, 30)) == date(2025, 3, 30)
    # The night they go back (26 October 2025, 01:00 UTC): 23:30 UTC on the 25th is BST.
    assert completion_date(utc(2025, 10, 25, 23, 30)) == date(2025, 10, 26)


def test_a_report_answers_the_survey_whose_window_holds_its_london_date() -> None:
    completed = date(2025, 7, 1)  # month 4: 17 Oct - 12 Dec 2025; month 12: 3 Jun - 26 Aug 2026
    # Opening edge, in BST: 23:30 UTC on 16 October is 00:30 on the 17th in London.
    assert survey_answered(completed, utc(2025, 10, 16, 22, 59)) is None
    assert survey_answered(completed, utc(2025, 10, 16, 23, 0)) == Survey.MONTH_4
    # Closing edge, in GMT (the clocks went back on 26 October): UTC is London time.
    assert survey_answered(completed, utc(2025, 12, 12, 23, 59)) == Survey.MONTH_4
    assert survey_answered(completed, utc(2025, 12, 13, 0, 0)) is None
    # Between the windows and after the last: no survey (still the latest report overall).
    assert survey_answered(completed, utc(2026, 3, 1, 12)) is None
    assert survey_answered(completed, utc(2026, 6, 2, 22, 59)) is None
    assert survey_answered(completed, utc(2026, 6, 2, 23, 0)) == Survey.MONTH_12
    assert survey_answered(completed, utc(2026, 8, 26, 22, 59)) == Survey.MONTH_12
    assert survey_answered(completed, utc(2026, 8, 26, 23, 0)) is None


def test_the_latest_report_inside_a_window_is_the_answer() -> None:
    completed = date(2025, 7, 1)
    reports = [
        (utc(2025, 11, 1, 9), "b", "month 4, first"),
        (utc(2025, 12, 1, 9), "a", "month 4, latest"),
        (utc(2025, 12, 20, 9), "c", "after month 4 closed: answers nothing"),
        (utc(2026, 7, 1, 9), "e", "month 12, tie loses to the greater id"),
        (utc(2026, 7, 1, 9), "f", "month 12, tie wins"),
    ]
    assert survey_answers(completed, reports) == {
        Survey.MONTH_4: "month 4, latest",
        Survey.MONTH_12: "month 12, tie wins",
    }
    assert survey_answers(completed, list(reversed(reports))) == survey_answers(completed, reports)
    assert survey_answers(completed, [(utc(2025, 8, 1), "x", "too early")]) == {}


def test_completion_time_is_carried_by_the_contract() -> None:
    at = utc(2026, 3, 2, 9, 30)
    event = new_event(
        TrainingCompleted(clinician_ref="c-1", course_version="1", completed_at=at),
        trustcode="RTH",
        sitecode="RTH08",
        source="/services/enrolment",
        time=at,
    )
    again = parse_event(None, event.to_json())
    assert again.data.completed_at == at
    assert completed_at(again.data.completed_at, again.time) == at
    # An older publisher's event without the field is still valid: its time is used.
    old = new_event(
        TrainingCompleted(clinician_ref="c-1", course_version="1"),
        trustcode="RTH",
        sitecode="RTH08",
        source="/services/enrolment",
        time=at,
    )
    assert old.data.completed_at is None and completed_at(None, old.time) == at
    naive = json.loads(event.to_json())
    naive["data"]["completed_at"] = "2026-03-02T09:30:00"
    with pytest.raises(ContractError, match=r"data\.completed_at"):
        parse_event(None, json.dumps(naive).encode())
