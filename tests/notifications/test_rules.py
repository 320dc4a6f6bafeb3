"""The rules, without servers: a moved clock decides what is due."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.notifications.domain.followups import (
    DigestLine,
    digest_kind,
    digest_lines,
    follow_up_items,
)
from services.notifications.domain.hours import WorkingHours, parse_days
from services.notifications.domain.ids import notification_event_id, training_reminder_id
from services.notifications.domain.messages import digest_content
from services.notifications.domain.training import (
    TrainingRules,
    TrainingState,
    next_training_reminder,
)
from shared.events import ReminderKind as K
from shared.followup import Timepoint
from shared.identifiers import REF_MAX_LENGTH
from tests.harness import ID_KEY

HOURS = WorkingHours()
RULES = TrainingRules()
MON = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)  # a Monday, GMT


def test_working_hours_defer_to_next_window() -> None:
    assert HOURS.next_open(MON) == MON
    assert HOURS.next_open(MON.replace(hour=7, minute=59)) == MON.replace(hour=8, minute=0)
    assert HOURS.next_open(MON.replace(hour=18)) == datetime(2025, 3, 4, 8, tzinfo=UTC)
    saturday = datetime(2025, 3, 8, 12, tzinfo=UTC)
    assert HOURS.next_open(saturday) == datetime(2025, 3, 10, 8, tzinfo=UTC)
    friday_night = datetime(2025, 3, 7, 17, 59, 59, tzinfo=UTC)
    assert HOURS.is_open(friday_night)
    assert HOURS.next_open(friday_night + timedelta(seconds=1)) == datetime(
        2025, 3, 10, 8, tzinfo=UTC
    )


def test_working_hours_are_london_time_in_summer() -> None:
    # 07:30 UTC in July is 08:30 BST: open. 17:30 UTC is 18:30 BST: closed.
    assert HOURS.is_open(datetime(2025, 7, 1, 7, 30, tzinfo=UTC))
    assert not HOURS.is_open(datetime(2025, 7, 1, 17, 30, tzinfo=UTC))
    assert HOURS.next_open(datetime(2025, 7, 1, 5, tzinfo=UTC)) == datetime(
        2025, 7, 1, 7, tzinfo=UTC
    )


def test_configured_days_and_hours() -> None:
    assert parse_days("mon-fri") == frozenset(range(5))
    assert parse_days("mon, wed,sat") == frozenset({0, 2, 5})
    weekend_too = WorkingHours(parse_days("mon-sun"), time(9), time(17))
    assert weekend_too.next_open(datetime(2025, 3, 8, 8, tzinfo=UTC)) == datetime(
        2025, 3, 8, 9, tzinfo=UTC
    )


@given(
    st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
    )
)
def test_next_open_is_open_and_never_earlier(moment: datetime) -> None:
    sent = HOURS.next_open(moment)
    assert sent >= moment and HOURS.is_open(sent)
    assert sent - moment < timedelta(days=4)  # a weekend at most


def state(**kw: object) -> TrainingState:
    return TrainingState(**{"enrolled_at": MON, **kw})  # type: ignore[arg-type]


def test_start_reminder_due_seven_days_after_enrolment() -> None:
    planned = next_training_reminder(state(), RULES)
    assert planned is not None
    assert (planned.kind, planned.number, planned.due_at) == (
        K.TRAINING_START,
        1,
        MON + timedelta(days=7),
    )


def test_continue_reminder_due_fourteen_days_after_last_progress() -> None:
    progress = MON + timedelta(days=3)
    planned = next_training_reminder(
        state(started_at=MON + timedelta(days=1), last_progress_at=progress), RULES
    )
    assert planned is not None
    assert planned.kind == K.TRAINING_CONTINUE
    assert planned.due_at == progress + timedelta(days=14)


def test_spacing_cap_completion_opt_out_and_pending() -> None:
    last = MON + timedelta(days=20)
    spaced = next_training_reminder(state(made=1, finished=1, last_finished_at=last), RULES)
    assert spaced is not None and spaced.number == 2
    assert spaced.due_at == last + timedelta(days=7)
    assert next_training_reminder(state(made=3, finished=3, last_finished_at=last), RULES) is None
    # cancelled ones (made > finished) do not count towards the cap but number the next
    after_cancel = next_training_reminder(state(made=2, finished=1, last_finished_at=last), RULES)
    assert after_cancel is not None and after_cancel.number == 3
    assert next_training_reminder(state(completed=True), RULES) is None
    assert next_training_reminder(state(opted_out=True), RULES) is None
    assert next_training_reminder(state(unresolved=True), RULES) is None
    assert next_training_reminder(TrainingState(enrolled_at=None), RULES) is None


def test_configured_thresholds_apply() -> None:
    rules = TrainingRules(start_after=timedelta(days=2), max_reminders=1)
    planned = next_training_reminder(state(), rules)
    assert planned is not None and planned.due_at == MON + timedelta(days=2)
    assert next_training_reminder(state(made=1, finished=1, last_finished_at=MON), rules) is None


@given(st.integers(0, 5), st.integers(0, 60), st.integers(0, 60))
def test_reminders_never_exceed_cap_or_spacing(
    finished: int, since_enrol: int, since_last: int
) -> None:
    last = MON + timedelta(days=since_enrol)
    planned = next_training_reminder(
        state(made=finished, finished=finished, last_finished_at=last if finished else None), RULES
    )
    if finished >= RULES.max_reminders:
        assert planned is None
    else:
        assert planned is not None and planned.number == finished + 1
        if finished:
            assert planned.due_at >= last + RULES.spacing


def test_follow_up_items_due_and_fourteen_days_before_close() -> None:
    baseline = datetime(2025, 1, 6, 23, 30, tzinfo=UTC)  # 6 January in London
    items = {(i.timepoint, i.kind): i for i in follow_up_items(baseline)}
    m3_due = items[(Timepoint.MONTH_3, K.FOLLOW_UP_DUE)]
    assert m3_due.remind_on == date(2025, 1, 6) + timedelta(days=91)
    m3_closing = items[(Timepoint.MONTH_3, K.FOLLOW_UP_CLOSING)]
    assert m3_closing.closes == m3_due.due + timedelta(days=42)
    assert m3_closing.remind_on == m3_closing.closes - timedelta(days=14)
    m12_closing = items[(Timepoint.MONTH_12, K.FOLLOW_UP_CLOSING)]
    assert m12_closing.remind_on == date(2025, 1, 6) + timedelta(days=364 + 56 - 14)
    assert len(items) == 4


def test_digest_groups_per_patient_and_drops_closed_windows() -> None:
    today = date(2025, 4, 7)
    d1 = DigestLine("p-1", Timepoint.MONTH_3, K.FOLLOW_UP_DUE, date(2025, 3, 1), date(2025, 4, 12))
    c1 = DigestLine(
        "p-1", Timepoint.MONTH_3, K.FOLLOW_UP_CLOSING, date(2025, 3, 1), date(2025, 4, 12)
    )
    d2 = DigestLine("p-2", Timepoint.MONTH_3, K.FOLLOW_UP_DUE, date(2025, 4, 7), date(2025, 5, 19))
    gone = DigestLine(
        "p-3", Timepoint.MONTH_3, K.FOLLOW_UP_DUE, date(2025, 2, 1), date(2025, 3, 15)
    )
    lines = digest_lines([d1, d2, c1, gone], today)
    assert lines == [c1, d2]
    assert digest_kind(lines) == K.FOLLOW_UP_CLOSING
    assert digest_kind([d2]) == K.FOLLOW_UP_DUE
    content = digest_content("RTH08", "2025-04-07", lines)
    assert "p-1" in content.body and "p-2" in content.body and "p-3" not in content.body
    assert content.personalisation["count"] == "2"


def test_ids_are_deterministic_and_fit_a_reference() -> None:
    assert training_reminder_id("c-1", 2) == "training:c-1:2"
    long_ref = "c" * 64
    assert len(training_reminder_id(long_ref, 1)) <= REF_MAX_LENGTH
    assert training_reminder_id(long_ref, 1) != training_reminder_id(long_ref, 2)
    sent = notification_event_id(ID_KEY, "training:c-1:1", "sent")
    assert sent == notification_event_id(ID_KEY, "training:c-1:1", "sent")
    assert sent != notification_event_id(ID_KEY, "training:c-1:1", "failed")
    assert sent != notification_event_id(b"another-platform-key-0123", "training:c-1:1", "sent")
