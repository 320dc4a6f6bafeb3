"""Is it working? Patients' RMDQ improvement against the BeST trial, sites that keep
running classes, and clinicians observed facilitating (domain.md, "Is it working?").

Pure arithmetic on totals: the figures modules call it for every level, so site, trust and
national figures share one definition.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from services.reporting.domain.trial import BEST_TRIAL, Interval

Z_95 = 1.96
"""mean ± 1.96 · sample standard deviation / √n (domain.md)."""
CONSISTENT, BELOW, ABOVE = "consistent", "below", "above"
VERDICTS = (CONSISTENT, BELOW, ABOVE)
VERDICT_TIMEPOINT = "month_12"
"""The trial reported 12 months; month 3 is an early signal without a verdict."""
SUSTAINED_PERIODS = {"6_months": 182, "12_months": 364}
"""Days after a site's first class: eligible once they have passed, sustained when a class
started that many days or more after the first."""


@dataclass(frozen=True)
class Improvement:
    """Mean RMDQ improvement (baseline - follow-up) of n patients, with its exact 95%
    confidence interval; the interval is None for one patient (no sample deviation)."""

    n: int
    mean: float
    low: float | None
    high: float | None


def improvement(n: int, sum_change: float, sum_sq_change: float) -> Improvement | None:
    """From the sum and sum of squares of the changes (follow-up - baseline); improvement is
    their negation, so its deviation is theirs. None when nobody has both scores."""
    if n == 0:
        return None
    mean = -sum_change / n
    if n == 1:
        return Improvement(1, mean, None, None)
    # Sample variance from sums; fsum keeps integer scores exact (identical scores give 0).
    variance = max(0.0, math.fsum((sum_sq_change, -sum_change * sum_change / n)) / (n - 1))
    half = Z_95 * math.sqrt(variance) / math.sqrt(n)
    return Improvement(n, mean, mean - half, mean + half)


def shown(value: float) -> float:
    """A mean or limit as presented: 2 places (and never -0.0)."""
    return round(value, 2) + 0.0


def verdict(low: float, high: float, band: Interval = BEST_TRIAL.rmdq_improvement) -> str:
    """`below` when the upper limit is under the band, `above` when the lower limit is over
    it, otherwise the intervals overlap (touching counts): `consistent`.

    Judged on the limits as presented (2 places, like the trial's), so a reader can check
    the verdict against the numbers beside it.
    """
    if shown(high) < band.low:
        return BELOW
    if shown(low) > band.high:
        return ABOVE
    return CONSISTENT


def rmdq_names(timepoint: str) -> tuple[str, str, str, str]:
    return (
        f"rmdq_improvement_{timepoint}",
        f"rmdq_improvement_ci_low_{timepoint}",
        f"rmdq_improvement_ci_high_{timepoint}",
        f"rmdq_followup_completeness_{timepoint}",
    )


VERDICT_FIGURE = f"rmdq_vs_trial_{VERDICT_TIMEPOINT}"


def against_trial(
    timepoint: str, n: int, sum_change: float, sum_sq_change: float
) -> dict[str, Any]:
    """Exact improvement, interval (2 places) and, at month 12, the verdict; None where
    undefined (nobody; or the interval and verdict of a single patient)."""
    mean_name, low_name, high_name, _ = rmdq_names(timepoint)
    found = improvement(n, sum_change, sum_sq_change)
    out: dict[str, Any] = {
        mean_name: None if found is None else shown(found.mean),
        low_name: None if found is None or found.low is None else shown(found.low),
        high_name: None if found is None or found.high is None else shown(found.high),
    }
    if timepoint == VERDICT_TIMEPOINT:
        out[VERDICT_FIGURE] = (
            None
            if found is None or found.low is None or found.high is None
            else verdict(found.low, found.high)
        )
    return out


@dataclass(frozen=True)
class ClassSpan:
    """A site's first and latest class start dates (Europe/London)."""

    first: date
    last: date


def sites_sustained(spans: Iterable[ClassSpan], today: date) -> dict[str, tuple[int, int]]:
    """Per period ("6_months", "12_months"): (sustained, eligible) sites as of `today`.

    Eligible once the period's days have passed since the first class (judged at reading
    time, like follow-up due dates); sustained when eligible and a class started that many
    days or more after the first.
    """
    spans = list(spans)
    out = {}
    for period, days in SUSTAINED_PERIODS.items():
        eligible = [s for s in spans if s.first + timedelta(days=days) <= today]
        sustained = [s for s in eligible if s.last >= s.first + timedelta(days=days)]
        out[period] = (len(sustained), len(eligible))
    return out
