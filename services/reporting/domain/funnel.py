"""Funnel-plot comparison of trusts against the national proportion (domain.md).

Binomial control limits p ± z·sqrt(p(1-p)/n) for each trust's denominator n, at about 95%
(z = 1.96) and 99.8% (z = 3.09), clipped to [0, 1]. A trust outside 99.8% is flagged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from services.reporting.domain.disclosure import SUPPRESSED, control_count, control_rate
from services.reporting.domain.figures import (
    FOLLOW_UP_NAMES,
    MEASURE_NAMES,
    OUTCOME_TIMEPOINTS,
    SURVEY_NAMES,
    Totals,
)
from services.reporting.domain.trial import BEST_TRIAL, Interval
from services.reporting.domain.working import VERDICT_TIMEPOINT, against_trial, verdict

Z = {"95": 1.96, "99.8": 3.09}
FUNNEL_FIGURES = (
    "followup_rate_month_3",
    "followup_rate_month_12",
    "clinicians_completed",
    "improved_share",
    *(f"delivery_response_rate_{s}" for s in SURVEY_NAMES),
)


@dataclass(frozen=True)
class Proportion:
    """What a funnel compares: a numerator over a denominator."""

    numerator: int
    denominator: int


def proportion_of(
    t: Totals, figure: str, today: Any, measure: str | None, timepoint: str | None
) -> Proportion:
    """The numerator and denominator behind a funnel figure for one level."""
    for tp in FOLLOW_UP_NAMES:
        if figure == f"followup_rate_{tp}":
            return Proportion(t.recorded[tp], t.due(tp, today))
    for s in SURVEY_NAMES:
        if figure == f"delivery_response_rate_{s}":
            return Proportion(t.survey_answered(s), t.survey_due(s, today))
    if figure == "clinicians_completed":
        return Proportion(
            sum(t.clinicians["completed"].values()), sum(t.clinicians["enrolled"].values())
        )
    if figure == "improved_share" and measure in MEASURE_NAMES and timepoint in OUTCOME_TIMEPOINTS:
        o = t.outcome(measure, timepoint)
        return Proportion(o.improved, o.n)
    raise ValueError(f"no funnel for {figure} (measure={measure}, timepoint={timepoint})")


def limits(p: float, n: int) -> dict[str, tuple[float, float]]:
    """The (exact) control limits for a denominator n around the national proportion p."""
    out = {}
    for level, z in Z.items():
        half = z * math.sqrt(p * (1 - p) / n)
        out[level] = (max(0.0, p - half), min(1.0, p + half))
    return out


def funnel_point(
    trust: str, prop: Proportion, national_p: float | None, *, raw: bool
) -> dict[str, Any]:
    """One trust on the funnel.

    The flags `outside_95` and `outside_99_8` are judged on the exact value against the
    limits for the exact denominator (a complex calculation, which the HES rules leave
    uncontrolled), so rounding never moves a trust across a limit. Published (unless `raw`)
    are only the flags and the controlled value and denominator (the value from the rounded
    counts, to the precision its rounded denominator supports): not the trust's own limits,
    which would reveal its exact denominator. The plot's limits are the `limit_curve`. When
    the published value is "*" the flags are "*" too (they would hint at the hidden count).
    """
    exact = None if prop.denominator == 0 else prop.numerator / prop.denominator
    lim = None if national_p is None or exact is None else limits(national_p, prop.denominator)
    flags: dict[str, Any] = {
        f"outside_{level.replace('.', '_')}": lim is not None
        and exact is not None
        and not lim[level][0] <= exact <= lim[level][1]
        for level in Z
    }
    if raw:
        return {
            "trustcode": trust,
            "value": None if exact is None else round(exact, 3),
            "denominator": prop.denominator,
            "control_limits": None
            if lim is None
            else {
                level: {"lower": round(lo, 3), "upper": round(hi, 3)}
                for level, (lo, hi) in lim.items()
            },
            **flags,
        }
    value = control_rate(prop.numerator, prop.denominator)
    if value == SUPPRESSED:
        flags = dict.fromkeys(flags, SUPPRESSED)
    return {
        "trustcode": trust,
        "value": value,
        "denominator": control_count(prop.denominator),
        **flags,
    }


CURVE_STEPS = (
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    10,
    12,
    15,
    20,
    25,
    30,
    40,
    50,
    60,
    75,
    100,
    125,
    150,
    200,
    250,
    300,
    400,
    500,
    600,
    750,
)
"""Denominators the plotted limits are drawn through (then x10, x100, ... of 100 to 750)."""


def limit_curve(national_p: float | None, largest: int) -> list[dict[str, Any]]:
    """The funnel plot's lines: at each denominator up to a step past `largest`, the national
    proportion and its 95% and 99.8% limits (3 places). A function of the national figure
    only, so published as it is."""
    if national_p is None:
        return []
    steps: list[int] = []
    scale = 1
    while not steps or steps[-1] < max(largest, 1):
        steps += [s * scale for s in CURVE_STEPS if s * scale >= 100 or scale == 1]
        scale *= 10
    steps = sorted(set(steps))
    cut = next(i for i, n in enumerate(steps) if n >= max(largest, 1))
    rows = []
    for n in steps[: cut + 1]:
        lim = limits(national_p, n)
        rows.append(
            {
                "denominator": n,
                "national": round(national_p, 3),
                **{
                    f"{side}_{level.replace('.', '_')}": round(lim[level][i], 3)
                    for level in Z
                    for i, side in enumerate(("lower", "upper"))
                },
            }
        )
    return rows


COMPARISON_FIGURES = ("rmdq_improvement_month_12", "rmdq_improvement_month_3")
"""Trusts' mean RMDQ improvement and 95% interval against the trial's and the nation's."""


def improvement_of(t: Totals, timepoint: str) -> dict[str, Any]:
    """Exact n, improvement, interval (2 places) and, at month 12, the verdict of a level."""
    o = t.outcome("rmdq", timepoint)
    mean, low, high, *rest = against_trial(timepoint, o.n, o.sum_change, o.sum_sq_change).values()
    found: dict[str, Any] = {"n": o.n, "improvement": mean, "ci_low": low, "ci_high": high}
    if timepoint == VERDICT_TIMEPOINT:
        found["vs_trial"] = rest[0]
    return found


def comparison_point(
    trust: str, t: Totals, timepoint: str, national: dict[str, Any], *, raw: bool
) -> dict[str, Any]:
    """One trust against the trial and the nation: published (n rounded; the mean, interval
    and verdicts "*" over 1 to 7 patients) unless `raw`. `vs_national` compares the trust's
    interval with the national one as `vs_trial` compares it with the trial's."""
    point = {"trustcode": trust, **improvement_of(t, timepoint), "vs_national": None}
    low, high = point["ci_low"], point["ci_high"]
    if low is not None and high is not None and national["ci_low"] is not None:
        point["vs_national"] = verdict(
            low, high, Interval(national["improvement"], national["ci_low"], national["ci_high"])
        )
    if not raw:
        n = point["n"]
        point["n"] = control_count(n)
        if 1 <= n <= 7:
            point.update({k: SUPPRESSED for k in point if k not in ("trustcode", "n")})
    return point


def trial_band() -> dict[str, Any]:
    """The trial's 12-month result as the comparison shows it (domain.trial)."""
    trial = BEST_TRIAL
    return {
        "reference": trial.reference,
        "timepoint": trial.timepoint,
        "improvement": trial.rmdq_improvement.mean,
        "ci_low": trial.rmdq_improvement.low,
        "ci_high": trial.rmdq_improvement.high,
        "followup_completeness": trial.followup_completeness,
    }
