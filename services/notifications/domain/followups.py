"""Follow-up nudges for site teams: when each falls due and before its window closes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from shared.events import ReminderKind
from shared.followup import FOLLOW_UPS, Timepoint, assessment_date, follow_up_window


@dataclass(frozen=True)
class FollowUpItem:
    """One line a site team will be told about: a patient's follow-up due or closing."""

    kind: ReminderKind
    timepoint: Timepoint
    remind_on: date
    due: date
    closes: date


def follow_up_items(
    baseline_time: datetime, closing_before: timedelta = timedelta(days=14)
) -> list[FollowUpItem]:
    """Reminders for a baseline: on each follow-up's due date, and `closing_before` the
    window closes (the last collectable day)."""
    items = []
    baseline = assessment_date(baseline_time)
    for tp in FOLLOW_UPS:
        window = follow_up_window(baseline, tp)
        closing_on = max(window.closes - closing_before, window.due)
        items.append(
            FollowUpItem(ReminderKind.FOLLOW_UP_DUE, tp, window.due, window.due, window.closes)
        )
        items.append(
            FollowUpItem(ReminderKind.FOLLOW_UP_CLOSING, tp, closing_on, window.due, window.closes)
        )
    return items


@dataclass(frozen=True)
class DigestLine:
    """A follow-up as listed in a site digest: pseudonymous reference only."""

    patient_ref: str
    timepoint: Timepoint
    kind: ReminderKind
    due: date
    closes: date


def digest_lines(lines: list[DigestLine], today: date) -> list[DigestLine]:
    """One line per patient and timepoint (the closing reminder wins over the due one),
    windows already closed left out, ordered by closing date then reference."""
    best: dict[tuple[str, Timepoint], DigestLine] = {}
    for line in lines:
        if line.closes < today:
            continue
        key = (line.patient_ref, line.timepoint)
        held = best.get(key)
        if held is None or (
            line.kind == ReminderKind.FOLLOW_UP_CLOSING
            and held.kind != ReminderKind.FOLLOW_UP_CLOSING
        ):
            best[key] = line
    return sorted(best.values(), key=lambda x: (x.closes, x.patient_ref, x.timepoint.value))


def digest_kind(lines: list[DigestLine]) -> ReminderKind:
    """A digest with any window about to close is a closing reminder, else a due one."""
    if any(x.kind == ReminderKind.FOLLOW_UP_CLOSING for x in lines):
        return ReminderKind.FOLLOW_UP_CLOSING
    return ReminderKind.FOLLOW_UP_DUE
