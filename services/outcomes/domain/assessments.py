"""A patient's assessments and which one counts for a timepoint.

A second assessment for the same patient and timepoint is a correction. The winner is the
one with the latest `time`; two with the same time are ordered by event id, so every
replica, replay and arrival order picks the same winner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.events import PatientAssessed
from shared.followup import Timepoint
from shared.measures import Measure

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f+00:00"


def utc_text(time: datetime) -> str:
    """A time as fixed-width UTC text: sorts like the instant, keeps the microseconds
    (a BSON date would drop them and could turn two corrections into a tie)."""
    return time.astimezone(UTC).strftime(TIME_FORMAT)


def parse_utc_text(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


@dataclass(frozen=True)
class Assessment:
    """One patient.assessed event, as the outcomes service keeps it."""

    event_id: str
    trustcode: str
    sitecode: str
    patient_ref: str
    timepoint: Timepoint
    time: datetime
    measures: dict[Measure, float] = field(hash=False)
    class_id: str | None = None

    @classmethod
    def from_event(
        cls, event_id: str, trustcode: str, sitecode: str, time: datetime, data: PatientAssessed
    ) -> Assessment:
        return cls(
            event_id=event_id,
            trustcode=trustcode,
            sitecode=sitecode,
            patient_ref=data.patient_ref,
            timepoint=Timepoint(data.timepoint),
            time=time.astimezone(UTC),
            measures={m: float(v) for m, v in data.measures.present().items()},
            class_id=data.class_id,
        )

    @property
    def rank(self) -> tuple[str, str]:
        """Order of corrections: latest time wins, ties broken by event id."""
        return (utc_text(self.time), self.event_id)

    def supersedes(self, other: Assessment | None) -> bool:
        return other is None or self.rank > other.rank

    def to_doc(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "trustcode": self.trustcode,
            "sitecode": self.sitecode,
            "patient_ref": self.patient_ref,
            "timepoint": self.timepoint.value,
            "time": utc_text(self.time),
            "measures": {m.value: v for m, v in self.measures.items()},
            "class_id": self.class_id,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Assessment:
        return cls(
            event_id=doc["event_id"],
            trustcode=doc["trustcode"],
            sitecode=doc["sitecode"],
            patient_ref=doc["patient_ref"],
            timepoint=Timepoint(doc["timepoint"]),
            time=parse_utc_text(doc["time"]),
            measures={Measure(m): float(v) for m, v in doc["measures"].items()},
            class_id=doc.get("class_id"),
        )
