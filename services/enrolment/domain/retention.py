"""How long a clinician's contact email is kept (retention, docs/information-governance.md).

The email is only for that clinician's reminders: training nudges, the thank-you at
completion and the delivery surveys 4 and 12 months after it, whose last window closes 365
+ 56 = 421 days after completion. So it is kept for `retention` after the clinician's
latest accepted event (an enrolment, a module event or a report): a clinician still
training or surveyed keeps theirs; one silent for longer has it erased.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

DEFAULT_CONTACT_RETENTION_DAYS = 450
"""Longer than the 421 days from completion to the close of the month 12 survey window."""


def last_activity(times: Iterable[datetime]) -> datetime | None:
    """The time of the clinician's latest accepted event (None with no event)."""
    return max(times, default=None)


def contact_expired(times: Iterable[datetime], now: datetime, retention: timedelta) -> bool:
    """Whether an email kept since those events is past its retention at `now`."""
    latest = last_activity(times)
    return latest is not None and latest + retention <= now
