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

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.events import CourseVersion
from shared.identifiers import Ref


class Module(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    module_id: Ref
    title: str = Field(min_length=1, max_length=200)
    required: bool = True


class Course(BaseModel):
    """One course version, its modules in course order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    course_version: CourseVersion
    title: str = Field(min_length=1, max_length=200)
    modules: tuple[Module, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_and_required(self) -> Course:
        ids = [m.module_id for m in self.modules]
        if len(set(ids)) != len(ids):
            raise ValueError(f"course version {self.course_version} repeats a module id")
        if not self.required_modules:
            raise ValueError(f"course version {self.course_version} requires no module")
        return self

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
        return self

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


CATALOGUE_FILE = Path(__file__).with_name("catalogue.json")


@cache
def catalogue() -> Catalogue:
    """The shipped catalogue, read once; a broken file fails loudly rather than miscount."""
    return Catalogue.model_validate_json(CATALOGUE_FILE.read_bytes())
