"""Is an event's time believable? One rule, judged against when the platform received it.

Why against the receipt and not the clock: the gateway judges against its clock as it stores
the event, a consumer and a rebuild against the time the event stream stored the message
(its JetStream metadata timestamp), so an event gets the same verdict live, on redelivery
and on a replay years later (domain.md, "One verdict per event": "Time is believable").
Refusing impossible times first also keeps them from everything downstream: a time such as
0001-01-01 or 9999-12-31 would overflow month and due-date arithmetic, a time in 2999 would
win "latest" for ever, one in 1900 would start every monthly series in 1900.

Pure: the bounds and the receipt are arguments (the backbone's settings give the bounds).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

FUTURE_TIME = "future-time"
BEFORE_PROGRAMME = "before-programme"


@dataclass(frozen=True)
class TimeBounds:
    """How far ahead of its receipt an event may be dated (clocks drift), and the earliest
    date any event of the programme can carry."""

    future_tolerance: timedelta = timedelta(minutes=5)
    programme_start: datetime = datetime(2015, 1, 1, tzinfo=UTC)


DEFAULT_TIME_BOUNDS = TimeBounds()


def time_problem(
    time: datetime, received: datetime | None, bounds: TimeBounds = DEFAULT_TIME_BOUNDS
) -> tuple[str, str] | None:
    """(rule, code) the event's `time` breaks, or None. Without `received` (an event the
    platform builds itself from events already judged) only the programme's start is checked.

    Compared as aware datetimes (never converted), so even year 1 or 9999 at any offset
    cannot overflow here."""
    if time < bounds.programme_start:
        return (
            f"{time.isoformat()} is before the programme "
            f"(events are dated from {bounds.programme_start.date().isoformat()})",
            BEFORE_PROGRAMME,
        )
    if received is not None and time - bounds.future_tolerance > received:
        return (
            f"{time.isoformat()} is in the future: more than "
            f"{_span(bounds.future_tolerance)} after it was received "
            f"({received.astimezone(UTC).isoformat()})",
            FUTURE_TIME,
        )
    return None


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 60 == 0:
        minutes = seconds // 60
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds} seconds"
