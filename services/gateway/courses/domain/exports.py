"""The course platform's CSV exports: which columns each file must have, how its times read,
and what a refused row says.

FutureLearn's exports (`<run>_enrolments.csv`, `<run>_step-activity.csv`,
`<run>_question-response.csv`) may gain columns over time, so only the columns the import
uses are required and the rest are ignored; a file without one of them is refused whole,
before anything is published, because every row of it would be misread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class ExportKind:
    """One kind of export file: how its name ends and the columns the import reads."""

    name: str
    suffix: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()


ENROLMENTS = ExportKind("enrolments", "_enrolments.csv", ("learner_id", "enrolled_at", "role"))
STEP_ACTIVITY = ExportKind(
    "step-activity",
    "_step-activity.csv",
    ("learner_id", "step", "first_visited_at", "last_completed_at"),
)
QUESTION_RESPONSE = ExportKind(
    "question-response",
    "_question-response.csv",
    ("learner_id", "week_number", "step_number", "question_number", "response", "submitted_at"),
)
MAPPING = ExportKind(
    "mapping",
    ".csv",
    ("learner_id", "sitecode", "profession"),
    ("registration_number", "contact_email"),
)
OVERFLOW = "\x00cells"
"""Set (to the row's number of cells) on a row with more cells than its header's columns."""
LEARNER_ROLE = "learner"
"""Only learners are clinicians in training; organisation admins, educators, mentors are not."""


class ExportError(ValueError):
    """A whole file (or the run's configuration) is refused: nothing is published."""


@dataclass(frozen=True)
class RefusedRow:
    """One row skipped, with where it is and why (the rest of the file is imported)."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file} line {self.line}: {self.reason}"


def header_problem(file: str, header: Sequence[str] | None, kind: ExportKind) -> str | None:
    """Why `header` cannot be read as `kind`, naming the file and the missing columns."""
    if not header:
        return f"{file}: empty, no header row (expected columns {', '.join(kind.required)})"
    names = [h.strip() for h in header]
    repeated = sorted({n for n in names if names.count(n) > 1 and n})
    if repeated:
        return f"{file}: the header repeats column(s) {', '.join(repeated)}"
    missing = [c for c in kind.required if c not in names]
    if missing:
        return (
            f"{file}: missing column(s) {', '.join(missing)} (a {kind.name} export needs "
            f"{', '.join(kind.required)}; is this the right file?)"
        )
    return None


_PLATFORM_SUFFIX = " UTC"


def platform_time(text: str) -> datetime | None:
    """A time as the exports write it (`2025-10-08 12:00:00 UTC`, or ISO 8601 with an
    offset); None for an empty cell (never). ValueError for anything else."""
    value = text.strip()
    if not value:
        return None
    if value.endswith(_PLATFORM_SUFFIX):  # read as UTC in one call: 480,000 rows ask
        return datetime.fromisoformat(value[: -len(_PLATFORM_SUFFIX)] + "+00:00")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone")
    return parsed.astimezone(UTC)


def time_cell(row: dict[str, str], column: str) -> datetime | None:
    """The time in `column` of `row`; ValueError naming the column when malformed."""
    value = row.get(column) or ""
    if len(value) == 23 and value.endswith(_PLATFORM_SUFFIX):  # the exports' own form, fast
        try:
            return datetime.fromisoformat(value[:19] + "+00:00")
        except ValueError:
            pass  # named below
    try:
        return platform_time(value)
    except ValueError:
        raise ValueError(f"{column} {value!r} is not a time like 2025-10-08 12:00:00 UTC") from None
