"""A patient's questionnaire: its pages (one question per page, the NHS pattern for
questions a patient answers alone), reading each page's answer, and scoring the whole.

Only measures whose wording ships (`shared.instruments`, `self_completable`) can be put on
a patient link: pain NRS, Modified Von Korff pain intensity, PSFS. A PSFS baseline asks for
3 to 5 activities first and then one rating page each; a PSFS follow-up re-rates the
activities kept from the baseline (the only reason the forms keep their names).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.forms.domain.answers import Problems, whole_number
from shared.instruments import (
    INSTRUMENTS,
    PSFS_MAX_ACTIVITIES,
    PSFS_MIN_ACTIVITIES,
    PSFS_NAME_MAX_CHARS,
    ScoringError,
    score_pain_nrs,
    score_psfs,
    score_von_korff_pain,
)
from shared.measures import Measure

SELF_COMPLETABLE = tuple(m for m, i in INSTRUMENTS.items() if i.self_completable)


@dataclass(frozen=True)
class Step:
    step_id: str
    measure: Measure
    kind: str  # "rating" or "activities"
    question: str
    hint: str
    minimum: int = 0
    maximum: int = 10


def choose_measures(chosen: list[str]) -> list[Measure]:
    out = [Measure(m) for m in chosen]
    if not out or any(m not in SELF_COMPLETABLE for m in out):
        raise ValueError("choose at least one measure a patient can answer")
    return sorted(set(out), key=list(Measure).index)


def steps(
    measures: list[Measure], baseline: bool, kept: tuple[str, ...], saved: Mapping[str, Any]
) -> list[Step]:
    out: list[Step] = []
    for measure in measures:
        instrument = INSTRUMENTS[measure]
        if measure != Measure.PSFS:
            out += [
                Step(
                    f"{measure.value}.{i.item_id}",
                    measure,
                    "rating",
                    i.text,
                    i.hint,
                    i.minimum,
                    i.maximum,
                )
                for i in instrument.items
            ]
            continue
        item = instrument.items[0]
        names = list(kept)
        if baseline or not names:
            out.append(
                Step(
                    "psfs.activities",
                    measure,
                    "activities",
                    "Which everyday activities are hard for you because of your back?",
                    f"Name {PSFS_MIN_ACTIVITIES} to {PSFS_MAX_ACTIVITIES} activities, for "
                    "example putting on socks or walking to the shops.",
                )
            )
            names = list(saved.get("psfs.activities") or [])
        for n, name in enumerate(names, start=1):
            out.append(Step(f"psfs.rate-{n}", measure, "rating", f"{item.text} {name}", item.hint))
    return out


def read_step(step: Step, fields: Mapping[str, str]) -> Any | Problems:
    problems = Problems()
    if step.kind == "activities":
        names = [fields.get(f"activity-{n}", "").strip() for n in range(1, PSFS_MAX_ACTIVITIES + 1)]
        names = [n for n in names if n]
        if len(names) < PSFS_MIN_ACTIVITIES:
            problems.add("activity-1", f"Enter at least {PSFS_MIN_ACTIVITIES} activities")
        for n, name in enumerate(names, start=1):
            if len(name) > PSFS_NAME_MAX_CHARS:
                problems.add(
                    f"activity-{n}",
                    f"Each activity must be {PSFS_NAME_MAX_CHARS} characters or fewer",
                )
        return problems or names
    value = whole_number(fields, "answer", step.minimum, step.maximum, problems, "your answer")
    return problems or value


@dataclass(frozen=True)
class Scored:
    scores: dict[str, float]
    activities: list[str]


def score(all_steps: list[Step], saved: Mapping[str, Any]) -> Scored | str:
    """The scores of a finished questionnaire, or which answer is missing."""
    missing = [s for s in all_steps if s.step_id not in saved]
    if missing or not all_steps:
        return "Answer every question before sending."
    ratings: dict[Measure, list[int]] = {}
    for s in all_steps:
        if s.kind == "rating":
            ratings.setdefault(s.measure, []).append(int(saved[s.step_id]))
    out: dict[str, float] = {}
    try:
        for measure, values in ratings.items():
            if measure == Measure.PAIN_NRS:
                out[measure.value] = score_pain_nrs(values[0])
            elif measure == Measure.VON_KORFF_PAIN:
                out[measure.value] = score_von_korff_pain(values)
            elif measure == Measure.PSFS:
                out[measure.value] = score_psfs(values)
    except ScoringError as exc:
        return str(exc)
    return Scored(out, list(saved.get("psfs.activities") or []))
