"""One clinician's path through the training, derived from the facts (events) received.

Why a fold over facts: events come from several producers in any order (a module completed
before its enrolment, an intention report before completion). Keeping every accepted event
by id and deriving the state with a pure fold over them, sorted by (event time, trust, id), makes
the state a function of the *set* of events: every arrival order gives the same state, and
nothing is dropped for arriving early.

Rules (also in the README):
- The latest enrolment (by event time, then trust code, then id) decides trust, site,
  profession and course version. Modules count against that version only: every module
  event whose module id that version contains counts, whenever it happened. Other module
  ids are kept for audit and listed as not counted.
- `started`: at least one counted module started or completed; `completed`: every required
  module of the version completed. A clinician without an enrolment is `awaiting_enrolment`
  and counts nowhere.
- The latest intention and delivery reports (by event time, trust code, id) are the
  clinician's.
- Each course version enrolled on has its own start (earliest module event of that
  version) and completion (latest of its required modules' first completions), whatever
  the order the events arrived in (`version_times`); derived events follow them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from shared.catalogue import Catalogue
from shared.envelope import AnyEvent

ENROLLED = "clinician.enrolled"
MODULE_STARTED = "module.started"
MODULE_COMPLETED = "module.completed"
INTENTION = "clinician.intention_reported"
DELIVERY = "clinician.delivery_reported"
CONSUMED = (ENROLLED, MODULE_STARTED, MODULE_COMPLETED, INTENTION, DELIVERY)


class Status(StrEnum):
    AWAITING_ENROLMENT = "awaiting_enrolment"
    ENROLLED = "enrolled"
    STARTED = "started"
    COMPLETED = "completed"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Fact(_Frozen):
    """One accepted event, as much of it as the fold needs. Never holds a contact email."""

    id: str
    name: str
    time: datetime
    trustcode: str
    sitecode: str
    data: dict[str, Any]

    @property
    def order(self) -> tuple[datetime, str, str]:
        """ "Latest" is by event time, then trust code, then event id: the one tie-break of
        the platform (domain.md, "One verdict per event"); ids belong to their trust, so two
        trusts' facts may share an id, and the order must not depend on which arrived first."""
        return (self.time, self.trustcode, self.id)


def fact_of(event: AnyEvent) -> Fact:
    data = event.data.model_dump(mode="json", exclude_none=True)
    data.pop("contact_email", None)
    return Fact(
        id=str(event.id),
        name=event.event_type.name,
        time=event.time.astimezone(UTC),
        trustcode=event.trustcode,
        sitecode=event.sitecode,
        data=data,
    )


class Enrolment(_Frozen):
    trustcode: str
    sitecode: str
    profession: str
    course_version: str
    enrolled_at: datetime


class ModuleProgress(_Frozen):
    module_id: str
    started_at: datetime | None = None
    completed_at: datetime | None = None
    best_quiz_score: float | None = None


class Intention(_Frozen):
    intends_to_deliver: bool
    confidence: int
    reported_at: datetime


class Delivery(_Frozen):
    delivering: bool
    groups_delivered: int
    reported_at: datetime


class ClinicianState(_Frozen):
    """What the service reports about one clinician; contains no contact email."""

    clinician_ref: str
    status: Status
    enrolment: Enrolment | None = None
    enrolments: int = 0
    modules: tuple[ModuleProgress, ...] = ()
    not_counted_modules: tuple[str, ...] = ()
    started_at: datetime | None = None
    completed_at: datetime | None = None
    intention: Intention | None = None
    delivery: Delivery | None = None


def fold(
    clinician_ref: str, facts: list[Fact] | tuple[Fact, ...], catalogue: Catalogue
) -> ClinicianState:
    """The clinician's state from their facts, independent of the order they arrived in."""
    ordered = sorted(facts, key=lambda f: f.order)
    enrolments = [f for f in ordered if f.name == ENROLLED]
    intentions = [f for f in ordered if f.name == INTENTION]
    deliveries = [f for f in ordered if f.name == DELIVERY]
    intention = None
    if intentions:
        last = intentions[-1]
        intention = Intention(
            intends_to_deliver=last.data["intends_to_deliver"],
            confidence=last.data["confidence"],
            reported_at=last.time,
        )
    delivery = None
    if deliveries:
        last = deliveries[-1]
        delivery = Delivery(
            delivering=last.data["delivering"],
            groups_delivered=last.data["groups_delivered"],
            reported_at=last.time,
        )
    module_facts = [f for f in ordered if f.name in (MODULE_STARTED, MODULE_COMPLETED)]
    seen_modules = sorted({f.data["module_id"] for f in module_facts})
    if not enrolments:
        return ClinicianState(
            clinician_ref=clinician_ref,
            status=Status.AWAITING_ENROLMENT,
            not_counted_modules=tuple(seen_modules),
            intention=intention,
            delivery=delivery,
        )
    latest = enrolments[-1]
    enrolment = Enrolment(
        trustcode=latest.trustcode,
        sitecode=latest.sitecode,
        profession=latest.data["profession"],
        course_version=latest.data["course_version"],
        enrolled_at=latest.time,
    )
    progress = _version_progress(module_facts, catalogue, enrolment.course_version)
    counted = tuple(p for p in progress.values() if p.started_at is not None)
    started_at, completed_at = _times(progress, catalogue, enrolment.course_version)
    starts = [started_at] if started_at else []
    status = Status.COMPLETED if completed_at else Status.STARTED if starts else Status.ENROLLED
    return ClinicianState(
        clinician_ref=clinician_ref,
        status=status,
        enrolment=enrolment,
        enrolments=len(enrolments),
        modules=counted,
        not_counted_modules=tuple(m for m in seen_modules if m not in progress),
        started_at=started_at,
        completed_at=completed_at,
        intention=intention,
        delivery=delivery,
    )


def version_times(
    facts: list[Fact] | tuple[Fact, ...], catalogue: Catalogue, course_version: str
) -> tuple[datetime | None, datetime | None]:
    """When the clinician started and completed `course_version`, from every module event
    of theirs whatever its arrival: started at the earliest module event of the version,
    completed at the latest of its required modules' first completions. Both only move
    earlier as events arrive, never later."""
    modules = [f for f in facts if f.name in (MODULE_STARTED, MODULE_COMPLETED)]
    return _times(_version_progress(modules, catalogue, course_version), catalogue, course_version)


def _version_progress(
    module_facts: list[Fact], catalogue: Catalogue, course_version: str
) -> dict[str, ModuleProgress]:
    course = catalogue.course(course_version)
    course_modules = [m.module_id for m in course.modules] if course else []
    return {
        m: _progress(m, [f for f in module_facts if f.data["module_id"] == m])
        for m in course_modules
    }


def _times(
    progress: dict[str, ModuleProgress], catalogue: Catalogue, course_version: str
) -> tuple[datetime | None, datetime | None]:
    course = catalogue.course(course_version)
    required = course.required_modules if course else ()
    starts = [p.started_at for p in progress.values() if p.started_at is not None]
    completions = [progress[m].completed_at for m in required]
    completed_at = (
        max(c for c in completions if c is not None)
        if required and all(c is not None for c in completions)
        else None
    )
    return (min(starts) if starts else None), completed_at


def _progress(module_id: str, facts: list[Fact]) -> ModuleProgress:
    """Earliest start (a completion implies a start), earliest completion, best quiz score."""
    completed = [f for f in facts if f.name == MODULE_COMPLETED]
    scores = [float(f.data["quiz_score"]) for f in completed if "quiz_score" in f.data]
    return ModuleProgress(
        module_id=module_id,
        started_at=min((f.time for f in facts), default=None),
        completed_at=min((f.time for f in completed), default=None),
        best_quiz_score=max(scores, default=None),
    )
