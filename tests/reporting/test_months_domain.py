"""Monthly series without servers: month boundaries in Europe/London, timelines, folding."""

from __future__ import annotations

from datetime import UTC, date, datetime

from services.reporting.domain.facts import CLINICIANS, PATIENTS
from services.reporting.domain.months import (
    fold_months,
    last_day,
    month_end,
    month_of,
    months_between,
    steps,
    timeline,
)


def test_months_are_calendar_months_in_europe_london() -> None:
    # 23:30 UTC on 31 March 2025 is 00:30 BST on 1 April: April's, not March's.
    assert month_of(datetime(2025, 3, 31, 23, 30, tzinfo=UTC)) == "2025-04"
    assert month_of(datetime(2025, 1, 31, 23, 30, tzinfo=UTC)) == "2025-01"  # GMT
    assert month_end("2025-03") == datetime(2025, 3, 31, 23, 0, tzinfo=UTC)
    assert month_end("2024-12") == datetime(2025, 1, 1, 0, 0, tzinfo=UTC)
    assert last_day("2024-02") == date(2024, 2, 29)
    assert months_between("2024-11", "2025-02") == ["2024-11", "2024-12", "2025-01", "2025-02"]


def t(month: int, day: int, year: int = 2025) -> datetime:
    return datetime(year, month, day, 9, tzinfo=UTC)


def test_a_clinicians_timeline_waits_for_the_enrolment_and_follows_the_latest_report() -> None:
    base = {"trust": "RTH", "site": "RTH08"}
    facts = {
        "s": {**base, "t": t(1, 20), "k": "started", "cv": "1"},  # before its enrolment
        "e": {**base, "t": t(2, 3), "k": "enrolled", "profession": "nurse", "cv": "1"},
        "c": {**base, "t": t(4, 1), "k": "completed", "cv": "1"},
        "i": {**base, "t": t(4, 2), "k": "intention", "value": True},
        "j": {**base, "t": t(6, 2), "k": "intention", "value": False},
    }
    line = timeline(CLINICIANS, facts)
    assert line is not None
    # January's start waits for the enrolment: nothing counts until February.
    assert [m for m, _ in line] == ["2025-02", "2025-04", "2025-06"]
    assert line[0][1]["clinicians_started"] == 1 and line[0][1]["clinicians_completed"] == 0
    assert line[1][1]["clinicians_intending"] == 1
    assert line[2][1]["clinicians_intending"] == 0
    folded = fold_months([steps(line) or []])
    assert folded is not None and folded["first"] == "2025-02" and folded["last"] == "2025-06"
    assert [folded["series"][m]["clinicians_completed"] for m in folded["series"]] == [
        0,
        0,
        1,
        1,
        1,
    ]


def test_a_follow_up_falls_due_in_the_month_of_its_due_date() -> None:
    base = {"trust": "RTH", "site": "RTH08"}
    facts = {
        "b": {**base, "t": t(1, 10), "k": "assessed", "tp": "baseline"},
        "f": {**base, "t": t(6, 1), "k": "assessed", "tp": "month_3"},
    }
    line = timeline(PATIENTS, facts)
    folded = fold_months([steps(line) or []])
    assert folded is not None
    due = {
        m: (c["followup_due_month_3"], c["patients_month_3"]) for m, c in folded["series"].items()
    }
    # Due 91 days after 10 January: 11 April.
    assert due == {
        "2025-01": (0, 0),
        "2025-02": (0, 0),
        "2025-03": (0, 0),
        "2025-04": (1, 0),
        "2025-05": (1, 0),
        "2025-06": (1, 1),
    }
