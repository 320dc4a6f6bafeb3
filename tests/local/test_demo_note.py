"""`ibest up --demo` says when its reminders will go out (working hours only), so a first
look on a Saturday morning does not show reminders_sent: 0 with no word why."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ibest.local.stack import reminder_hours_note


def test_on_a_saturday_morning_the_demo_says_reminders_wait_for_monday(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in (
        "IBEST_NOTIFY_WORKING_DAYS",
        "IBEST_NOTIFY_WORKING_START",
        "IBEST_NOTIFY_WORKING_END",
        "IBEST_NOTIFY_TIMEZONE",
    ):
        monkeypatch.delenv(name, raising=False)
    saturday = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
    assert reminder_hours_note(saturday) == [
        "reminders: it is Saturday 09:30 in Europe/London, outside working hours (mon-fri "
        "08:00-18:00 Europe/London): reminders wait until Monday 30 November 08:00, so "
        "reminders_sent stays 0 until then",
        "reminders: to see them now, restart with IBEST_NOTIFY_WORKING_DAYS=mon-sun "
        "IBEST_NOTIFY_WORKING_START=00:00 IBEST_NOTIFY_WORKING_END=23:59",
    ]
    # In summer London is an hour ahead of UTC: 07:00 UTC on a Tuesday is 08:00 BST.
    tuesday = datetime(2026, 6, 2, 7, 0, tzinfo=UTC)
    assert reminder_hours_note(tuesday) == [
        "reminders: it is Tuesday 08:00, inside working hours (mon-fri 08:00-18:00 "
        "Europe/London): reminders go now"
    ]
    # The override it suggests does open the weekend.
    monkeypatch.setenv("IBEST_NOTIFY_WORKING_DAYS", "mon-sun")
    monkeypatch.setenv("IBEST_NOTIFY_WORKING_START", "00:00")
    monkeypatch.setenv("IBEST_NOTIFY_WORKING_END", "23:59")
    assert reminder_hours_note(saturday)[0].endswith("reminders go now")
