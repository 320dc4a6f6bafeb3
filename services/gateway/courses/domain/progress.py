"""From step activity to module facts (domain.md, "Where the data is born").

A module is started at the earliest `first_visited_at` of its steps, and completed when
every one of its steps has a `last_completed_at`, at the latest of those times. The export
keeps only a step's *last* completion, so that time can move when a learner re-does a step;
the fact is imported as first seen and never moved (the import ledger holds it, and the
event id does not depend on the time: see `fact_event_id`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from services.gateway.courses.domain.learners import Clinician
from shared.catalogue import Course
from shared.envelope import AnyEvent, new_event
from shared.events import ClinicianEnrolled, ModuleCompleted, ModuleStarted, Payload
from shared.keyed import keyed_event_id

ENROLLED, STARTED, COMPLETED = "clinician.enrolled", "module.started", "module.completed"


@dataclass
class ModuleProgress:
    """One learner's progress through one module, folded row by row."""

    first_visit: datetime | None = None
    completed_steps: int = 0  # bit i set: the module's step i has a completion
    last_completion: datetime | None = None


@dataclass
class LearnerProgress:
    modules: dict[str, ModuleProgress] = field(default_factory=dict)


class StepMap:
    """A course version's steps, each with its module and its bit within the module."""

    def __init__(self, course: Course) -> None:
        self.course = course
        self._of_step: dict[str, tuple[str, int]] = {}
        self._all_done: dict[str, int] = {}
        for module_id, steps in course.steps_of_module.items():
            for bit, step in enumerate(steps):
                self._of_step[step] = (module_id, 1 << bit)
            self._all_done[module_id] = (1 << len(steps)) - 1

    def module_bit(self, step: str) -> tuple[str, int] | None:
        return self._of_step.get(step.strip())

    def add(
        self,
        progress: LearnerProgress,
        step: str,
        first_visit: datetime | None,
        completion: datetime | None,
    ) -> bool:
        """Fold one step row into the learner's progress; False for a step not in the map."""
        found = self._of_step.get(step.strip())
        if found is None:
            return False
        module_id, bit = found
        module = progress.modules.get(module_id)
        if module is None:
            module = progress.modules[module_id] = ModuleProgress()
        if first_visit is not None and (
            module.first_visit is None or first_visit < module.first_visit
        ):
            module.first_visit = first_visit
        if completion is not None:
            module.completed_steps |= bit
            if module.last_completion is None or completion > module.last_completion:
                module.last_completion = completion
        return True

    def facts(self, progress: LearnerProgress) -> list[Fact]:
        """The module facts the progress shows, in course order."""
        found: list[Fact] = []
        for module_id in self.course.steps_of_module:
            module = progress.modules.get(module_id)
            if module is None:
                continue
            done = module.completed_steps == self._all_done[module_id]
            completed = module.last_completion if done else None
            started = module.first_visit or completed  # completed without a recorded visit
            if started is not None:
                found.append(Fact(STARTED, started, module_id))
            if completed is not None:
                found.append(Fact(COMPLETED, completed, module_id))
        return found


@dataclass(frozen=True)
class Fact:
    """One thing that happened to a learner: enrolled, or a module started or completed."""

    kind: str
    time: datetime
    module_id: str | None = None


def fact_event_id(key: bytes, learner: str, course_version: str, fact: Fact) -> uuid.UUID:
    """The fact's event id: keyed (no sender can compute and pre-empt it) and made from the
    learner and the fact, not its time, so re-importing it is a duplicate and a later export
    that moves a completion does not make a second completion."""
    return keyed_event_id(
        key, "course-platform", learner, course_version, fact.kind, fact.module_id or ""
    )


SOURCE = "/course-platform/"


def fact_event(
    fact: Fact, clinician: Clinician, course_version: str, event_id: uuid.UUID, source: str
) -> AnyEvent:
    """The contract event of a fact (validated like anything read from the wire)."""
    payload: Payload
    if fact.kind == ENROLLED:
        payload = ClinicianEnrolled(
            clinician_ref=clinician.clinician_ref,
            profession=clinician.profession,
            course_version=course_version,
            contact_email=clinician.contact_email,
        )
    elif fact.kind == STARTED:
        payload = ModuleStarted(
            clinician_ref=clinician.clinician_ref, module_id=fact.module_id or ""
        )
    else:
        payload = ModuleCompleted(
            clinician_ref=clinician.clinician_ref, module_id=fact.module_id or ""
        )
    return new_event(
        payload,
        trustcode=clinician.trustcode,
        sitecode=clinician.sitecode,
        source=source,
        time=fact.time,
        event_id=event_id,
    )
