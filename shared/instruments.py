"""The patient questionnaires' instrument definitions and scoring (domain.md, "Where the data
is born"): reviewed data files beside the catalogue (`shared/instruments/<measure>.json`:
items, answer ranges, scoring rule, source and licence note), and the one scoring of each.

Only scores leave a form: the scoring functions take item answers and return the score a
`patient.assessed` carries; nothing else from the items is published. Where an instrument's
wording may not be distributed (`wording_distributed: false`: RMDQ, PSEQ, Von Korff
disability) no wording ships, only its scoring, and site teams enter the total from their
licensed paper copy. Pure: the files are read once, at import.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

from shared.measures import MEASURES, Measure, range_error

_DIR = Path(__file__).with_name("instruments")
PSFS_MIN_ACTIVITIES = 3
PSFS_MAX_ACTIVITIES = 5
PSFS_NAME_MAX_CHARS = 60


@dataclass(frozen=True)
class Item:
    """One rating question: an integer answer from `minimum` to `maximum`."""

    item_id: str
    text: str
    hint: str
    minimum: int
    maximum: int


@dataclass(frozen=True)
class Instrument:
    measure: Measure
    name: str
    source: str
    licence: str
    wording_distributed: bool
    scoring: str
    items: tuple[Item, ...]

    @property
    def self_completable(self) -> bool:
        """A patient can answer it on a patient link (its wording ships)."""
        return self.wording_distributed and bool(self.items)


def _load(path: Path) -> Instrument:
    raw: dict[str, Any] = json.loads(path.read_text())
    return Instrument(
        measure=Measure(raw["measure"]),
        name=raw["name"],
        source=raw["source"],
        licence=raw["licence"],
        wording_distributed=bool(raw["wording_distributed"]),
        scoring=raw["scoring"],
        items=tuple(
            Item(i["id"], i["text"], i.get("hint", ""), int(i["min"]), int(i["max"]))
            for i in raw["items"]
        ),
    )


INSTRUMENTS: dict[Measure, Instrument] = {
    i.measure: i for i in sorted((_load(p) for p in _DIR.glob("*.json")), key=lambda i: i.measure)
}
"""Every measure's definition, by measure (one file each)."""


class ScoringError(ValueError):
    """Item answers that cannot be scored (a count or a value out of range)."""


def _ratings(values: list[int], low: int, high: int, count: tuple[int, int]) -> list[int]:
    if not count[0] <= len(values) <= count[1]:
        wanted = str(count[0]) if count[0] == count[1] else f"{count[0]} to {count[1]}"
        raise ScoringError(f"{wanted} answers are needed, got {len(values)}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
            raise ScoringError(f"each answer must be a whole number from {low} to {high}")
    return values


def _mean(values: list[int], times: int = 1) -> float:
    """The mean to 2 decimal places, half to even (a decimal, so 20/3 gives 6.67)."""
    total = Decimal(sum(values)) * times / Decimal(len(values))
    return float(total.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN))


def score_rmdq(answers: list[bool]) -> int:
    """RMDQ-24: the number of statements answered yes (0 to 24)."""
    if len(answers) != 24 or not all(isinstance(a, bool) for a in answers):
        raise ScoringError("the RMDQ has 24 yes/no statements")
    return sum(answers)


def score_pseq(answers: list[int]) -> int:
    """PSEQ: the sum of 10 items each 0 to 6 (0 to 60)."""
    return sum(_ratings(answers, 0, 6, (10, 10)))


def score_pain_nrs(answer: int) -> int:
    """Pain NRS: the 0 to 10 answer itself."""
    return _ratings([answer], 0, 10, (1, 1))[0]


def score_psfs(ratings: list[int]) -> float:
    """PSFS: the mean of the 3 to 5 activities' 0 to 10 ratings."""
    return _mean(_ratings(ratings, 0, 10, (PSFS_MIN_ACTIVITIES, PSFS_MAX_ACTIVITIES)))


def score_von_korff_pain(ratings: list[int]) -> float:
    """Modified Von Korff pain intensity: 10 x the mean of three 0 to 10 ratings (pain now,
    worst and average over the last 4 weeks), 0 to 100."""
    return _mean(_ratings(ratings, 0, 10, (3, 3)), times=10)


def check_total(measure: Measure, value: float) -> str | None:
    """Why a total typed from a paper form is not a valid score, or None (the contract's
    range rule, `shared.measures.range_error`)."""
    return range_error(measure, value)


def measure_title(measure: Measure) -> str:
    return MEASURES[measure].title
