"""Training nudges: start, continue, thanks. Pure: state in, the next reminder out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.events import ReminderKind


@dataclass(frozen=True)
class TrainingRules:
    """Thresholds from configuration; the defaults are the programme's."""

    start_after: timedelta = timedelta(days=7)
    continue_after: timedelta = timedelta(days=14)
    max_reminders: int = 3
    spacing: timedelta = timedelta(days=7)


@dataclass(frozen=True)
class TrainingState:
    """What we know of one clinician, from their events and the reminders already made.

    `made` counts every training reminder created so far (it numbers the next one);
    `finished` counts those that were sent or failed (the cap); `unresolved` is True while
    one is still waiting or being sent, so a second is never planned beside it.
    """

    enrolled_at: datetime | None
    started_at: datetime | None = None
    last_progress_at: datetime | None = None
    completed: bool = False
    opted_out: bool = False
    made: int = 0
    finished: int = 0
    last_finished_at: datetime | None = None
    unresolved: bool = False


@dataclass(frozen=True)
class PlannedReminder:
    kind: ReminderKind
    number: int
    due_at: datetime


def next_training_reminder(state: TrainingState, rules: TrainingRules) -> PlannedReminder | None:
    """The next start or continue reminder for a clinician, or None.

    Enrolled, not started: due `start_after` after enrolment. Started, not completed: due
    `continue_after` after the latest progress. Never once completed or opted out, never more
    than `max_reminders`, never sooner than `spacing` after the previous one.
    """
    if state.enrolled_at is None or state.completed or state.opted_out or state.unresolved:
        return None
    if state.finished >= rules.max_reminders:
        return None
    if state.started_at is None:
        kind, due = ReminderKind.TRAINING_START, state.enrolled_at + rules.start_after
    else:
        progress = max(state.last_progress_at or state.started_at, state.enrolled_at)
        kind, due = ReminderKind.TRAINING_CONTINUE, progress + rules.continue_after
    if state.last_finished_at is not None:
        due = max(due, state.last_finished_at + rules.spacing)
    return PlannedReminder(kind, state.made + 1, due)
