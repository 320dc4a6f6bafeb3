"""The course catalogue: which course versions exist and which modules each requires.

It is reviewed reference data of the contract (shared/catalogue.json, reviewed like code),
not a service's configuration: `shared.envelope.parse_event` refuses an enrolment on a
version not listed and a module event whose module is in no version, so every consumer (and
the gateway) reaches the same verdict from the same data. A new course version is a reviewed
data change. Completion is always judged against the version a clinician enrolled on.
"""

from __future__ import annotations

from functools import cache, cached_property
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from shared.events import CourseVersion
from shared.identifiers import Ref

Step = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{0,1}\.[1-9][0-9]{0,2}$")]
"""A course-platform step as its exports name it: `week.step`, e.g. `1.2` or `3.10`."""
ActivityIri = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9+.-]*:\S+$", max_length=500)]


class Module(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    module_id: Ref
    title: str = Field(min_length=1, max_length=200)
    required: bool = True
    steps: tuple[Step, ...] = Field(
        default=(),
        description="The course platform's steps (`week.step`) that make up this module: it "
        "is started at the first visit of any of them, completed when all are completed.",
    )
    activity_iris: tuple[ActivityIri, ...] = Field(
        default=(), description="xAPI activity IRIs (statement `object.id`) of this module."
    )


class Course(BaseModel):
    """One course version, its modules in course order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    course_version: CourseVersion
    title: str = Field(min_length=1, max_length=200)
    modules: tuple[Module, ...] = Field(min_length=1)
    activity_iris: tuple[ActivityIri, ...] = Field(
        default=(),
        description="xAPI activity IRIs of the course itself (`registered` on one "
        "of them is an enrolment on this version).",
    )

    @model_validator(mode="after")
    def _unique_and_required(self) -> Course:
        ids = [m.module_id for m in self.modules]
        if len(set(ids)) != len(ids):
            raise ValueError(f"course version {self.course_version} repeats a module id")
        if not self.required_modules:
            raise ValueError(f"course version {self.course_version} requires no module")
        steps = [s for m in self.modules for s in m.steps]
        if len(set(steps)) != len(steps):
            raise ValueError(f"course version {self.course_version} gives a step to two modules")
        return self

    @cached_property
    def module_of_step(self) -> dict[str, str]:
        """Each listed step (`week.step`) and the module it belongs to (computed once: an
        import asks for every row)."""
        return {step: m.module_id for m in self.modules for step in m.steps}

    @cached_property
    def steps_of_module(self) -> dict[str, tuple[str, ...]]:
        """Each module that lists steps, and its steps."""
        return {m.module_id: m.steps for m in self.modules if m.steps}

    @property
    def required_modules(self) -> tuple[str, ...]:
        return tuple(m.module_id for m in self.modules if m.required)

    @property
    def module_ids(self) -> frozenset[str]:
        return frozenset(m.module_id for m in self.modules)


class Catalogue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    comment: str = Field(default="", alias="_comment")
    courses: tuple[Course, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_versions(self) -> Catalogue:
        versions = [c.course_version for c in self.courses]
        if len(set(versions)) != len(versions):
            raise ValueError("a course version appears twice in the catalogue")
        iris = [i for c in self.courses for i in (*c.activity_iris, *_module_iris(c))]
        if len(set(iris)) != len(iris):
            raise ValueError("an activity IRI names two things in the catalogue")
        return self

    @cached_property
    def _activities(self) -> dict[str, tuple[str, str | None]]:
        found: dict[str, tuple[str, str | None]] = {}
        for c in self.courses:
            found.update({iri: (c.course_version, None) for iri in c.activity_iris})
            for m in c.modules:
                found.update({iri: (c.course_version, m.module_id) for iri in m.activity_iris})
        return found

    def activity(self, iri: str) -> tuple[str, str | None] | None:
        """What an xAPI activity IRI names: (course version, None) for a course, (course
        version, module id) for a module; None when the catalogue lists it nowhere."""
        return self._activities.get(iri)

    def course(self, version: str) -> Course | None:
        return next((c for c in self.courses if c.course_version == version), None)

    @property
    def versions(self) -> tuple[str, ...]:
        return tuple(c.course_version for c in self.courses)

    @cached_property
    def _all_module_ids(self) -> frozenset[str]:
        """Every module of every version (computed once: every module event asks)."""
        return frozenset().union(*(c.module_ids for c in self.courses))

    def knows_module(self, module_id: str) -> bool:
        return module_id in self._all_module_ids

    def course_version_error(self, version: str) -> str | None:
        """Why `version` is refused as an enrolment's course version, or None."""
        if self.course(version) is not None:
            return None
        return (
            f"{version!r} is not a course version in the catalogue "
            f"(known: {', '.join(self.versions)}; see GET /v1/courses)"
        )

    def module_error(self, module_id: str) -> str | None:
        """Why `module_id` is refused in a module event, or None."""
        if self.knows_module(module_id):
            return None
        return (
            f"{module_id!r} is not a module of any course version "
            f"(known versions: {', '.join(self.versions)}; see GET /v1/courses)"
        )

    def as_json(self) -> dict[str, object]:
        """What `GET /v1/courses` serves to integrators."""
        return {
            "courses": [
                {
                    "course_version": c.course_version,
                    "title": c.title,
                    "required_modules": list(c.required_modules),
                    "modules": [{"module_id": m.module_id, "title": m.title} for m in c.modules],
                }
                for c in self.courses
            ]
        }


def _module_iris(course: Course) -> list[str]:
    return [i for m in course.modules for i in m.activity_iris]


CATALOGUE_FILE = Path(__file__).with_name("catalogue.json")


@cache
def catalogue() -> Catalogue:
    """The shipped catalogue, read once; a broken file fails loudly rather than miscount."""
    return Catalogue.model_validate_json(CATALOGUE_FILE.read_bytes())
