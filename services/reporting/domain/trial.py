"""The BeST trial's published result: what the rollout's outcomes are judged against.

Reviewed reference data, kept here and nowhere else (domain.md, "The trial the rollout is
judged against": Lamb et al., Lancet 2010). Figures, the funnel comparison and the Grafana
dashboards all read these values; a change here is a change of the evidence, reviewed like
one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Interval:
    """A mean with its 95% confidence interval."""

    mean: float
    low: float
    high: float


@dataclass(frozen=True)
class Trial:
    """The trial's 12-month result for RMDQ (improvement = baseline - follow-up)."""

    reference: str
    patients: int
    practices: int
    timepoint: str
    followup_completeness: float
    """Share of each arm that gave 12-month data."""
    rmdq_improvement: Interval
    """The group programme's arm."""
    rmdq_improvement_control: Interval
    rmdq_difference: Interval
    """Programme minus control."""


BEST_TRIAL = Trial(
    reference="Lamb et al., Lancet 2010 (BeST trial)",
    patients=701,
    practices=56,
    timepoint="month_12",
    followup_completeness=0.85,
    rmdq_improvement=Interval(2.4, 1.89, 2.84),
    rmdq_improvement_control=Interval(1.1, 0.39, 1.72),
    rmdq_difference=Interval(1.3, 0.56, 2.06),
)
