"""Reading a submitted form: each field checked, each problem in plain English as the NHS
design system's error messages word them, and the contract payload when there is none.

The payload is then built through the contract (`shared.envelope.new_event`), so input the
contract would refuse is refused here, on the page, and never reaches the stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter, ValidationError

from shared.events import DeliveryReported, IntentionReported
from shared.identifiers import PatientRef, is_nhs_number
from shared.instruments import check_total
from shared.measures import Measure

LONDON = ZoneInfo("Europe/London")
_PATIENT_REF: TypeAdapter[str] = TypeAdapter(PatientRef)
"""The contract's own rule for the field (shared.identifiers)."""
MAX_GROUPS = 10_000
Fields = Mapping[str, str]


@dataclass
class Problems:
    """Field -> message, in the order the fields appear on the page."""

    by_field: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, message: str) -> None:
        self.by_field.setdefault(name, message)

    def __bool__(self) -> bool:
        return bool(self.by_field)


def yes_no(fields: Fields, name: str, problems: Problems, message: str) -> bool | None:
    value = fields.get(name, "")
    if value not in ("yes", "no"):
        problems.add(name, message)
        return None
    return value == "yes"


def whole_number(
    fields: Fields, name: str, low: int, high: int, problems: Problems, what: str
) -> int | None:
    raw = fields.get(name, "").strip()
    if not raw:
        problems.add(name, f"Enter {what}")
        return None
    if not raw.isdigit() and not (raw.startswith("-") and raw[1:].isdigit()):
        problems.add(name, f"{what[0].upper()}{what[1:]} must be a whole number")
        return None
    # Compare the length first: Python refuses to read an integer of over 4,300 digits.
    value = int(raw) if len(raw) <= len(str(high)) + 1 else high + 1
    if not low <= value <= high:
        problems.add(name, f"{what[0].upper()}{what[1:]} must be a number from {low} to {high}")
        return None
    return value


def intention(ref: str, fields: Fields) -> IntentionReported | Problems:
    problems = Problems()
    intends = yes_no(
        fields, "intends", problems, "Select yes if you intend to deliver BeST classes"
    )
    confidence = whole_number(fields, "confidence", 0, 10, problems, "how confident you are")
    if problems or intends is None or confidence is None:
        return problems
    return IntentionReported(clinician_ref=ref, intends_to_deliver=intends, confidence=confidence)


def delivery(ref: str, fields: Fields) -> DeliveryReported | Problems:
    problems = Problems()
    delivering = yes_no(
        fields, "delivering", problems, "Select yes if you are delivering BeST classes"
    )
    groups = 0
    if delivering:
        got = whole_number(
            fields, "groups", 0, MAX_GROUPS, problems, "how many BeST groups you have run"
        )
        groups = got if got is not None else 0
    if problems or delivering is None:
        return problems
    return DeliveryReported(clinician_ref=ref, delivering=delivering, groups_delivered=groups)


def completion_date(fields: Fields, problems: Problems, name: str = "completed") -> date | None:
    """The day-month-year date input (`<name>-day`, `-month`, `-year`)."""
    parts = [fields.get(f"{name}-{p}", "").strip() for p in ("day", "month", "year")]
    if not all(parts):
        problems.add(name, "Enter the date the patient filled in the form")
        return None
    if not all(p.isdigit() for p in parts) or len(parts[2]) != 4:
        problems.add(name, "The date must be a real date, for example 27 3 2026")
        return None
    try:
        return date(int(parts[2]), int(parts[1]), int(parts[0]))
    except (ValueError, OverflowError):  # e.g. day 31 of February, or a 30-digit day
        problems.add(name, "The date must be a real date, for example 27 3 2026")
        return None


def event_time_of(day: date) -> datetime:
    """A paper form's event time: the day it was filled in, at midday Europe/London."""
    return datetime.combine(day, time(12, 0), LONDON)


def totals(fields: Fields, measures: list[Measure], problems: Problems) -> dict[str, float]:
    """The totals typed from a paper form: empty means not collected; at least one needed."""
    out: dict[str, float] = {}
    for measure in measures:
        raw = fields.get(measure.value, "").strip()
        if not raw:
            continue
        try:
            value: float = int(raw) if raw.lstrip("-").isdigit() else float(raw)
        except ValueError:
            problems.add(measure.value, "Enter the total as a number")
            continue
        problem = check_total(measure, value)
        if problem:
            problems.add(measure.value, f"The total {problem.split(' ', 1)[1]}")
            continue
        out[measure.value] = value
    if not out and not problems:
        problems.add(measures[0].value, "Enter the total of at least one measure")
    return out


def patient_ref_problem(ref: str) -> str | None:
    """Why a reference a site team typed cannot be used (the contract's rules), or None."""
    if is_nhs_number(ref):
        return (
            "This is an NHS number, which identifies the patient. Enter your trust's "
            "pseudonymous reference instead"
        )
    try:
        _PATIENT_REF.validate_python(ref)
    except ValidationError:
        return (
            "Enter a reference of 1 to 64 letters, digits, dots, colons, hyphens or "
            "underscores, starting with a letter or digit"
        )
    return None
