"""Realistic FutureLearn exports of an iBeST course run, and what they imply.

A seeded model of a run: learners enrol over months, answer the registration questions
(site, profession, registration number, work email) or not, visit steps out of order, stop
part-way, complete modules, sometimes re-do a step later (so a later export moves that
step's last completion). `CourseRunModel.write(directory, as_of)` writes the exports a
technologist would download at `as_of` (cumulative, like the platform's), plus one malformed
row and one row of a step the catalogue does not list; `expected(as_of)` is what
domain.md implies from those files, computed here independently of the importer: each mapped
learner's enrolment, module starts and completions, and the funnel per trust and site.
Used by the tests (tests/gateway/courses) and bench/course_import.py.
"""

from __future__ import annotations

import csv
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ibest.simulate.trusts import load_trusts
from shared.catalogue import catalogue

RUN = "ibest-3"
HOME_PAGE = "https://www.futurelearn.com"
QUESTIONS = {
    "site": (1, 2, 1),
    "profession": (1, 2, 2),
    "registration_number": (1, 2, 3),
    "contact_email": (1, 2, 4),
}
ENROLMENT_COLUMNS = [
    "learner_id",
    "enrolled_at",
    "unenrolled_at",
    "role",
    "fully_participated_at",
    "purchased_statement_at",
    "gender",
    "country",
    "age_range",
    "highest_education_level",
    "employment_status",
    "employment_area",
    "detected_country",
    "unlimited",
]
STEP_COLUMNS = [
    "learner_id",
    "step",
    "week_number",
    "step_number",
    "first_visited_at",
    "last_completed_at",
]
QUESTION_COLUMNS = [
    "learner_id",
    "quiz_question",
    "question_type",
    "week_number",
    "step_number",
    "question_number",
    "response",
    "cloze_response",
    "submitted_at",
    "correct",
]
PROFESSIONS = [
    ("Physiotherapist", "PH"),
    ("Nurse", "NMC"),
    ("Occupational therapist", "OT"),
    ("Psychologist", "PYL"),
    ("Other", ""),
]
MALFORMED_TIME = "08/10/2025 12:00"


def fl_time(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass
class Step:
    step: str
    visited: datetime
    completions: list[datetime] = field(default_factory=list)


@dataclass
class Learner:
    learner_id: str
    enrolled_at: datetime
    role: str = "learner"
    site: str | None = None
    profession: str = "Physiotherapist"
    registration_number: str = ""
    email: str = ""
    answered_at: datetime | None = None
    first_site_answer: str | None = None
    """An earlier, superseded answer to the site question (the latest answer wins)."""
    steps: list[Step] = field(default_factory=list)

    def mapped(self, as_of: datetime) -> bool:
        return (
            self.role == "learner"
            and self.site is not None
            and self.answered_at is not None
            and self.answered_at <= as_of
            and len(self.site) == 5
        )


@dataclass
class Expected:
    """What the files at one `as_of` imply (domain.md): facts by (learner, kind, module)."""

    facts: set[tuple[str, str, str]]
    enrolled: Counter[tuple[str, str]]
    started: Counter[tuple[str, str]]
    completed: Counter[tuple[str, str]]
    unmapped: int
    refused_rows: int
    """Refused step-activity rows (the malformed one and the unknown step)."""
    unusable_answers: int
    """Learners whose registration answers cannot be used (their site answer's row is
    refused too)."""

    def funnel(self, trust: str, site: str | None = None) -> tuple[int, int, int]:
        def count(c: Counter[tuple[str, str]]) -> int:
            return sum(n for (t, s), n in c.items() if t == trust and (site is None or s == site))

        return count(self.enrolled), count(self.started), count(self.completed)


class CourseRunModel:
    def __init__(
        self,
        learners: int,
        seed: int = 29,
        start: datetime = datetime(2026, 1, 5, 9, tzinfo=UTC),
        days: int = 240,
        unmapped_share: float = 0.04,
        trusts: int = 14,
        staff: int = 6,
        every_step: bool = False,
    ) -> None:
        """`every_step`: every learner visits every step (the bench's 40 rows per learner);
        completion stays partial."""
        rng = random.Random(seed)
        self.every_step = every_step
        course = catalogue().course("1")
        assert course is not None
        self.modules = [(m.module_id, list(m.steps)) for m in course.modules]
        sites = [s for t in load_trusts()[:trusts] for s in t.sites]
        self.learners: list[Learner] = []
        for n in range(learners):
            enrolled = start + timedelta(minutes=rng.randrange(days * 24 * 60))
            learner = Learner(str(uuid.UUID(int=rng.getrandbits(128), version=4)), enrolled)
            profession, prefix = rng.choice(PROFESSIONS)
            learner.profession = profession
            learner.registration_number = f"{prefix}{100000 + n}" if prefix else ""
            learner.email = f"clinician{n}@nhs.net" if rng.random() < 0.7 else ""
            if rng.random() >= unmapped_share:
                learner.site = rng.choice(sites)
                # Most answer on enrolment; some only weeks later (mapped on a later import).
                delay = timedelta(hours=1) if rng.random() < 0.9 else timedelta(days=60)
                learner.answered_at = enrolled + delay
                if rng.random() < 0.03:
                    learner.first_site_answer = rng.choice(sites)
            elif rng.random() < 0.5:
                learner.site, learner.answered_at = "Oxford", enrolled + timedelta(hours=1)
            self._progress(rng, learner)
            self.learners.append(learner)
        for n in range(staff):
            role = ("educator", "organisation_admin", "mentor")[n % 3]
            self.learners.append(
                Learner(str(uuid.UUID(int=rng.getrandbits(128), version=4)), start, role)
            )
            self._progress(rng, self.learners[-1])

    def _progress(self, rng: random.Random, learner: Learner) -> None:
        """How far the learner gets: some never start, some stop part-way, many finish;
        steps visited in course order with detours, some re-done later."""
        if rng.random() < 0.3 and not self.every_step:
            return
        t = learner.enrolled_at + timedelta(hours=rng.randrange(1, 24 * 20))
        last_module = rng.randrange(len(self.modules)) if rng.random() < 0.45 else len(self.modules)
        visited = self.modules if self.every_step else self.modules[: last_module + 1]
        for index, (_, steps) in enumerate(visited):
            order = list(steps)
            if rng.random() < 0.2:
                rng.shuffle(order)  # out of order within a module
            stop_inside = index == last_module or (
                index == len(self.modules) - 1 and rng.random() < 0.1
            )
            for position, name in enumerate(order):
                t += timedelta(minutes=rng.randrange(3, 90))
                step = Step(name, t)
                stopped = index > last_module or (
                    stop_inside and position >= len(order) - rng.randrange(1, 3)
                )
                if not stopped:
                    step.completions.append(t + timedelta(minutes=rng.randrange(1, 30)))
                    if rng.random() < 0.02:  # re-done weeks later
                        step.completions.append(t + timedelta(days=rng.randrange(20, 90)))
                learner.steps.append(step)
            t += timedelta(days=rng.randrange(0, 10))

    def write(self, directory: Path, as_of: datetime, run: str = RUN) -> None:
        """The exports downloaded at `as_of`, and the run's configuration."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "course-run.toml").write_text(
            f'course_run = "{run}"\ncourse_version = "1"\n'
            f'account_home_page = "{HOME_PAGE}"\n'
            + "".join(
                f'{what}_question = "{".".join(map(str, q))}"\n' for what, q in QUESTIONS.items()
            )
        )
        rng = random.Random(7)
        present = [x for x in self.learners if x.enrolled_at <= as_of]
        with (directory / f"{run}_enrolments.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(ENROLMENT_COLUMNS)
            for x in present:
                w.writerow(
                    [
                        x.learner_id,
                        fl_time(x.enrolled_at),
                        "",
                        x.role,
                        "",
                        "",
                        rng.choice(["female", "male", "Unknown"]),
                        "GB",
                        "26-35",
                        "university_degree",
                        "working_full_time",
                        "health_and_social_care",
                        "GB",
                        "t",
                    ]
                )
        with (directory / f"{run}_question-response.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(QUESTION_COLUMNS)
            for x in present:
                if x.answered_at is None or x.answered_at > as_of:
                    continue
                answers = {
                    "site": x.site or "",
                    "profession": x.profession,
                    "registration_number": x.registration_number,
                    "contact_email": x.email,
                }
                if x.first_site_answer:
                    wk, st, q = QUESTIONS["site"]
                    w.writerow(
                        [
                            x.learner_id,
                            f"{wk}.{st}.{q}",
                            "MultipleChoiceQuestion",
                            wk,
                            st,
                            q,
                            x.first_site_answer,
                            "",
                            fl_time(x.answered_at - timedelta(minutes=5)),
                            "true",
                        ]
                    )
                for what, (wk, st, q) in QUESTIONS.items():
                    w.writerow(
                        [
                            x.learner_id,
                            f"{wk}.{st}.{q}",
                            "FreeText",
                            wk,
                            st,
                            q,
                            answers[what],
                            "",
                            fl_time(x.answered_at),
                            "true",
                        ]
                    )
                # A quiz answer elsewhere in the course: not a registration question.
                w.writerow(
                    [
                        x.learner_id,
                        "2.4.1",
                        "MultipleChoiceQuestion",
                        2,
                        4,
                        1,
                        "3",
                        "",
                        fl_time(x.answered_at + timedelta(days=3)),
                        "false",
                    ]
                )
        rows = []
        for x in present:
            for s in x.steps:
                if s.visited > as_of:
                    continue
                done = [c for c in s.completions if c <= as_of]
                week, number = s.step.split(".")
                rows.append(
                    [
                        x.learner_id,
                        s.step,
                        week,
                        number,
                        fl_time(s.visited),
                        fl_time(max(done)) if done else "",
                    ]
                )
        rng.shuffle(rows)  # the platform's row order means nothing
        malformed = self.malformed_row(as_of)
        with (directory / f"{run}_step-activity.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(STEP_COLUMNS)
            w.writerows(rows)
            if malformed is not None:
                w.writerow(malformed)
            if present:
                w.writerow(
                    [present[0].learner_id, "9.1", 9, 1, fl_time(present[0].enrolled_at), ""]
                )

    def malformed_row(self, as_of: datetime) -> list[object] | None:
        """An extra row of a mapped learner's step, with a time in the wrong format: refused,
        so it adds nothing (its step has a proper row of its own)."""
        for x in self.learners:
            if (
                x.mapped(as_of)
                and x.enrolled_at <= as_of
                and x.steps
                and x.steps[0].visited <= as_of
            ):
                s = x.steps[0]
                week, number = s.step.split(".")
                return [x.learner_id, s.step, week, number, MALFORMED_TIME, ""]
        return None

    def expected(self, as_of: datetime) -> Expected:
        """What domain.md implies from the exports at `as_of`."""
        facts: set[tuple[str, str, str]] = set()
        enrolled: Counter[tuple[str, str]] = Counter()
        started: Counter[tuple[str, str]] = Counter()
        completed: Counter[tuple[str, str]] = Counter()
        unmapped = unusable = 0
        for x in self.learners:
            if x.role != "learner" or x.enrolled_at > as_of:
                continue
            if not x.mapped(as_of):
                unmapped += 1
                unusable += x.answered_at is not None and x.answered_at <= as_of
                continue
            assert x.site is not None
            place = (x.site[:3], x.site)
            enrolled[place] += 1
            facts.add((x.learner_id, "clinician.enrolled", ""))
            seen = {s.step: s for s in x.steps if s.visited <= as_of}
            done_modules, began = 0, False
            for module_id, steps in self.modules:
                if any(step in seen for step in steps):
                    facts.add((x.learner_id, "module.started", module_id))
                    began = True
                if all(
                    step in seen and any(c <= as_of for c in seen[step].completions)
                    for step in steps
                ):
                    facts.add((x.learner_id, "module.completed", module_id))
                    done_modules += 1
            if began:
                started[place] += 1
            if done_modules == len(self.modules):
                completed[place] += 1
        refused = 1 + (self.malformed_row(as_of) is not None)
        return Expected(facts, enrolled, started, completed, unmapped, refused, unusable)
