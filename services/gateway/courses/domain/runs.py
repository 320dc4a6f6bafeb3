"""A course run's configuration (`course-run.toml` beside its exports): which catalogue
version it teaches, where its learner ids come from, and which registration questions (or
which mapping file) say who each learner is."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from shared.catalogue import Course, catalogue

RUN_FILE = "course-run.toml"
DEFAULT_HOME_PAGE = "https://www.futurelearn.com"
Question = Annotated[
    str, StringConstraints(pattern=r"^[1-9][0-9]?\.[1-9][0-9]{0,2}\.[1-9][0-9]{0,2}$")
]
"""A registration question as `week.step.question`, e.g. `1.2.1`."""
_RUN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class CourseRun(BaseModel):
    """What the learning technologist writes once per course run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    course_run: str = Field(description="The run's name, e.g. `ibest-3` (reports use it).")
    course_version: str = Field(description="The catalogue's course version the run teaches.")
    account_home_page: str = Field(
        default=DEFAULT_HOME_PAGE,
        description="The platform's home page: xAPI statements name a learner as "
        "actor.account {homePage, name = learner_id}, so the import and xAPI agree on who is who.",
    )
    site_question: Question | None = None
    profession_question: Question | None = None
    registration_number_question: Question | None = None
    contact_email_question: Question | None = None
    mapping_file: str | None = Field(
        default=None,
        description="A CSV (learner_id, sitecode, profession[, registration_number]"
        "[, contact_email]) beside the exports, for runs without registration questions; "
        "where a learner is in both, the file wins (it is the deliberate correction).",
    )

    @model_validator(mode="after")
    def _usable(self) -> CourseRun:
        if not _RUN.match(self.course_run):
            raise ValueError(f"course_run {self.course_run!r}: letters, digits, . _ - only")
        if catalogue().course(self.course_version) is None:
            raise ValueError(catalogue().course_version_error(self.course_version) or "")
        if not self.course.module_of_step:
            raise ValueError(
                f"course version {self.course_version} lists no steps in the catalogue"
            )
        asked = self.site_question is not None, self.profession_question is not None
        if any(asked) and not all(asked):
            raise ValueError("site_question and profession_question go together")
        if not all(asked) and self.mapping_file is None:
            raise ValueError(
                "say who each learner is: site_question and profession_question, "
                "or mapping_file (or both)"
            )
        return self

    @property
    def course(self) -> Course:
        found = catalogue().course(self.course_version)
        assert found is not None  # checked by the validator
        return found

    @property
    def questions(self) -> dict[str, str]:
        """Each configured registration question (`week.step.question`) and what it asks."""
        asked = {
            "site": self.site_question,
            "profession": self.profession_question,
            "registration_number": self.registration_number_question,
            "contact_email": self.contact_email_question,
        }
        return {q: what for what, q in asked.items() if q is not None}
