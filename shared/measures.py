"""The patient measures, their hard ranges, and what counts as a meaningful improvement.

Figures come from ../shared/domain.md (the product owner's specification).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class Measure(StrEnum):
    RMDQ = "rmdq"
    PAIN_NRS = "pain_nrs"
    VON_KORFF_PAIN = "von_korff_pain"
    VON_KORFF_DISABILITY = "von_korff_disability"
    PSFS = "psfs"
    PSEQ = "pseq"


@dataclass(frozen=True)
class MeasureSpec:
    """Range, kind and improvement rule of one measure."""

    name: Measure
    title: str
    minimum: float
    maximum: float
    integer: bool
    lower_is_better: bool
    points_threshold: float | None
    percent_of_baseline: float | None  # 0.30 where the 30% rule applies


MEASURES: dict[Measure, MeasureSpec] = {
    spec.name: spec
    for spec in (
        MeasureSpec(
            Measure.RMDQ,
            "Roland-Morris Disability Questionnaire (RMDQ-24)",
            0,
            24,
            True,
            True,
            5,
            0.30,
        ),
        MeasureSpec(
            Measure.PAIN_NRS, "Pain intensity, numeric rating scale", 0, 10, True, True, 2, 0.30
        ),
        MeasureSpec(
            Measure.VON_KORFF_PAIN,
            "Modified Von Korff pain intensity",
            0,
            100,
            False,
            True,
            None,
            0.30,
        ),
        MeasureSpec(
            Measure.VON_KORFF_DISABILITY,
            "Modified Von Korff disability",
            0,
            100,
            False,
            True,
            None,
            0.30,
        ),
        MeasureSpec(
            Measure.PSFS,
            "Patient-Specific Functional Scale (mean of 3 to 5 activities)",
            0,
            10,
            False,
            False,
            2,
            None,
        ),
        MeasureSpec(Measure.PSEQ, "Pain Self-Efficacy Questionnaire", 0, 60, True, False, 7, None),
    )
}


def range_error(measure: Measure, value: float) -> str | None:
    """Why `value` is not a valid score for `measure`, or None when it is."""
    spec = MEASURES[measure]
    if isinstance(value, bool):
        return f"{measure.value} must be a number, not a boolean"
    if not math.isfinite(value):
        return f"{measure.value} must be a finite number from {spec.minimum:g} to {spec.maximum:g}"
    if spec.integer and float(value) != int(value):
        return f"{measure.value} must be a whole number from {spec.minimum:g} to {spec.maximum:g}"
    if not spec.minimum <= value <= spec.maximum:
        return f"{measure.value} must be from {spec.minimum:g} to {spec.maximum:g}, got {value:g}"
    return None


def _exact(x: float) -> Decimal:
    """A score as the decimal it was written as, so 5.1 - 3.1 is 2 and not 1.9999999999999996."""
    return Decimal(repr(float(x)))


def change(baseline: float, value: float) -> float:
    """Follow-up minus baseline, as domain.md defines change (negative RMDQ change = better)."""
    return float(_exact(value) - _exact(baseline))


def is_meaningful_improvement(measure: Measure, baseline: float, value: float) -> bool:
    """Whether moving from `baseline` to `value` is a meaningful improvement.

    It must go in the better direction (zero change never counts) and reach the points
    threshold, or, where the measure has one, 30% of the baseline. A lower-is-better
    measure with a baseline of 0 cannot improve; nothing is divided.
    """
    spec = MEASURES[measure]
    b, v = _exact(baseline), _exact(value)
    gain = b - v if spec.lower_is_better else v - b
    if gain <= 0:
        return False
    if spec.points_threshold is not None and gain >= _exact(spec.points_threshold):
        return True
    if spec.percent_of_baseline is not None and b > 0:
        return gain >= _exact(spec.percent_of_baseline) * b
    return False
