"""Working hours: reminders go out only inside them; anything due outside waits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class WorkingHours:
    """Days of the week (0 = Monday) and the local times a reminder may be sent between."""

    days: frozenset[int] = frozenset(range(5))
    start: time = time(8, 0)
    end: time = time(18, 0)
    timezone: str = "Europe/London"

    def __post_init__(self) -> None:
        if not self.days or self.start >= self.end:
            raise ValueError("working hours need at least one day and start before end")

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_open(self, moment: datetime) -> bool:
        local = moment.astimezone(self.tz)
        return local.weekday() in self.days and self.start <= local.time() < self.end

    def next_open(self, moment: datetime) -> datetime:
        """`moment` itself when inside working hours, else the start of the next window (UTC)."""
        if self.is_open(moment):
            return moment
        local = moment.astimezone(self.tz)
        day = local.date()
        if local.weekday() in self.days and local.time() < self.start:
            candidate = day
        else:
            candidate = day + timedelta(days=1)
            while candidate.weekday() not in self.days:
                candidate += timedelta(days=1)
        return datetime.combine(candidate, self.start, tzinfo=self.tz).astimezone(UTC)

    def explain(self, moment: datetime, days_text: str = "") -> str:
        """One line for a person wondering why no reminder has gone out yet (`ibest up
        --demo` on a weekend): whether `moment` is inside working hours, and if not, when the
        next window opens."""
        local = moment.astimezone(self.tz)
        window = (
            f"{days_text or self._days_text()} {self.start:%H:%M}-{self.end:%H:%M} {self.timezone}"
        )
        if self.is_open(moment):
            return f"it is {local:%A %H:%M}, inside working hours ({window}): reminders go now"
        opens = self.next_open(moment).astimezone(self.tz)
        return (
            f"it is {local:%A %H:%M} in {self.timezone}, outside working hours ({window}):"
            f" reminders wait until {opens:%A %d %B %H:%M}, so reminders_sent stays 0 "
            "until then"
        )

    def _days_text(self) -> str:
        return ",".join(DAY_NAMES[d] for d in sorted(self.days))

    def local_date(self, moment: datetime) -> str:
        """The local calendar date (ISO) of `moment`, the day a site digest belongs to."""
        return moment.astimezone(self.tz).date().isoformat()


def parse_days(text: str) -> frozenset[int]:
    """'mon,tue,wed,thu,fri' or 'mon-fri' into weekday numbers (0 = Monday)."""
    days: set[int] = set()
    for part in (p.strip().lower() for p in text.split(",") if p.strip()):
        if "-" in part:
            first, last = (DAY_NAMES.index(p.strip()[:3]) for p in part.split("-", 1))
            days.update(range(first, last + 1))
        else:
            days.add(DAY_NAMES.index(part[:3]))
    return frozenset(days)
