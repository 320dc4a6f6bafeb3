"""Folding a delivered batch of events into one change per clinician and per patient.

Pure: events in, changes out. Every stored field is either a minimum, a maximum, a
"latest" value or a set of flags, so a batch folds into one write per document that leaves
the same document as applying its events one by one, in any order. "Latest" is ordered by
`latest_key`: event time, then the trust code, then the event id (the platform's one
order), so equal times resolve the same way whatever arrives first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from shared.envelope import AnyEvent
from shared.followup import FOLLOW_UPS, Timepoint, assessment_date
from shared.surveys import completed_at, completion_date

PROGRESS = {"clinician.training_started", "module.started", "module.completed"}


_TIME = "%Y-%m-%dT%H:%M:%S.%f"
_TIME_WIDTH = len("2026-01-01T00:00:00.000000")


def ordering_key(at: datetime) -> str:
    """The key of a time alone (fixed-width UTC text to the microsecond): every
    `latest_key` of the same or a later time orders after it. What a document stored
    before the keys existed is given, so an equal-time event still wins against it."""
    return at.astimezone(UTC).strftime(_TIME)


def latest_key(at: datetime, trustcode: str, event_id: str) -> str:
    """A sortable key ordering values by event time, then trust code, then event id (a total
    order, the platform's one, so which of two equal-time events wins never depends on
    arrival order)."""
    return "|".join((ordering_key(at), trustcode, event_id))


def latest_time(key: str) -> datetime:
    """The event time a `latest_key` (or an `ordering_key`) holds."""
    return datetime.strptime(key[:_TIME_WIDTH], _TIME).replace(tzinfo=UTC)


def patient_of(key: str) -> tuple[str, str]:
    """(trustcode, patient_ref) of a patient's key `<trust>:<patient_ref>` (a trust code
    has no ':'): the document does not repeat them."""
    trustcode, _, patient_ref = key.partition(":")
    return trustcode, patient_ref


def baseline_time(patient: Mapping[str, Any]) -> datetime:
    """A stored patient's latest baseline time: its `latest_baseline` key says it (a
    document written before issue 26 also holds `baseline_time`, the same time to the
    millisecond)."""
    key = patient.get("latest_baseline")
    if key is None:
        held: datetime = patient["baseline_time"]
        return held
    return latest_time(key)


@dataclass(frozen=True)
class Completion:
    """A `clinician.training_completed`: its thank-you is created in batch order."""

    at: datetime
    course_version: str
    trustcode: str
    sitecode: str
    completed_on: date | None = None
    """The date of completion the delivery surveys are timed from (shared.surveys)."""


def completion_of(event: AnyEvent) -> Completion:
    """A `clinician.training_completed` as the handlers use it."""
    return Completion(
        event.time,
        event.data.course_version,
        event.trustcode,
        event.sitecode,
        completion_date(completed_at(event.data.completed_at, event.time)),
    )


def report_date(event: AnyEvent) -> date:
    """The Europe/London date of a `clinician.delivery_reported`: which survey window
    contains it decides which survey it answers (shared.surveys)."""
    return assessment_date(event.time)


@dataclass
class ClinicianChange:
    """What a batch says of one clinician."""

    ref: str
    mins: dict[str, datetime] = field(default_factory=dict)
    maxs: dict[str, datetime] = field(default_factory=dict)
    latest_enrolment: tuple[datetime, str, str, str] | None = None  # time, trust, site, id
    completions: list[Completion] = field(default_factory=list)
    report_dates: set[date] = field(default_factory=set)

    def at_least(self, name: str, at: datetime) -> None:
        self.maxs[name] = max(self.maxs.get(name, at), at)

    def at_most(self, name: str, at: datetime) -> None:
        self.mins[name] = min(self.mins.get(name, at), at)


@dataclass
class PatientChange:
    """What a batch says of one patient: follow-ups collected and the latest baseline."""

    trustcode: str
    patient_ref: str
    collected: list[str] = field(default_factory=list)
    baseline: tuple[datetime, str, str] | None = None  # time, site, event id

    @property
    def key(self) -> str:
        """Its document's `_id` (`patient_of` reads it back)."""
        return f"{self.trustcode}:{self.patient_ref}"


@dataclass
class BatchChanges:
    clinicians: dict[str, ClinicianChange] = field(default_factory=dict)
    patients: dict[str, PatientChange] = field(default_factory=dict)


def fold(events: list[AnyEvent]) -> BatchChanges:
    """One change per clinician and patient; raises ValueError for an event it does not
    handle (the batch then falls back to the one-by-one handlers)."""
    changes = BatchChanges()
    for event in events:
        name = event.event_type.name
        if name == "patient.assessed":
            _fold_assessment(changes, event)
            continue
        ref = event.data.clinician_ref
        change = changes.clinicians.setdefault(ref, ClinicianChange(ref))
        if name == "clinician.enrolled":
            change.at_most("enrolled_at", event.time)
            held = change.latest_enrolment
            if held is None or latest_key(held[0], held[1], held[3]) < latest_key(
                event.time, event.trustcode, str(event.id)
            ):
                change.latest_enrolment = (
                    event.time,
                    event.trustcode,
                    event.sitecode,
                    str(event.id),
                )
        elif name in PROGRESS:
            change.at_most("started_at", event.time)
            change.at_least("last_progress_at", event.time)
        elif name == "clinician.training_completed":
            change.at_most("completed_at", event.time)
            change.at_most("started_at", event.time)
            change.at_least("last_progress_at", event.time)
            change.completions.append(completion_of(event))
        elif name == "clinician.delivery_reported":
            change.report_dates.add(report_date(event))
        else:
            raise ValueError(f"{name} is not handled by notifications")
    return changes


def _fold_assessment(changes: BatchChanges, event: AnyEvent) -> None:
    timepoint = Timepoint(event.data.timepoint)
    if timepoint not in FOLLOW_UPS and timepoint != Timepoint.BASELINE:
        return  # group_end: nothing to remind about, nothing stored
    trust, patient = event.trustcode, event.data.patient_ref
    change = changes.patients.setdefault(f"{trust}:{patient}", PatientChange(trust, patient))
    if timepoint in FOLLOW_UPS:
        if timepoint.value not in change.collected:
            change.collected.append(timepoint.value)
    elif change.baseline is None or latest_key(
        change.baseline[0], trust, change.baseline[2]
    ) < latest_key(event.time, trust, str(event.id)):
        change.baseline = (event.time, event.sitecode, str(event.id))


def collected_timepoints(doc: Mapping[str, Any] | None) -> set[str]:
    """The follow-ups a stored patient has had collected."""
    return {tp for tp, done in ((doc or {}).get("collected") or {}).items() if done}
