"""Change from baseline per measure, and the patient state that decides what to publish.

`PatientState.apply` is the whole rule: it takes one assessment and returns the new state
plus the outcomes whose content changed (each with its new revision). Applying the same
assessments in any order ends in the same winners and the same outcome content; only
the number of intermediate revisions depends on the order.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from services.outcomes.domain.assessments import Assessment, utc_text
from shared.events import MeasureOutcome, OutcomeRecorded
from shared.followup import Timepoint
from shared.measures import MEASURES, Measure, change, is_meaningful_improvement

FOLLOW_UP_TIMEPOINTS = (Timepoint.GROUP_END, Timepoint.MONTH_3, Timepoint.MONTH_12)


def compare(baseline: Assessment, follow_up: Assessment) -> dict[Measure, MeasureOutcome]:
    """Per measure present in both: baseline value, value, change and the verdict."""
    return {
        m: MeasureOutcome(
            baseline=baseline.measures[m],
            value=follow_up.measures[m],
            change=change(baseline.measures[m], follow_up.measures[m]),
            improved=is_meaningful_improvement(m, baseline.measures[m], follow_up.measures[m]),
        )
        for m in MEASURES
        if m in baseline.measures and m in follow_up.measures
    }


@dataclass(frozen=True)
class Outcome:
    """One follow-up compared with the baseline, as of a given pair of winners."""

    timepoint: Timepoint
    revision: int
    baseline: Assessment
    follow_up: Assessment
    measures: dict[Measure, MeasureOutcome] = field(hash=False)

    @property
    def time(self) -> datetime:
        """The later of the two assessments: when this outcome became true."""
        return max(self.baseline.time, self.follow_up.time)

    def payload(self) -> OutcomeRecorded:
        return OutcomeRecorded(
            patient_ref=self.follow_up.patient_ref,
            timepoint=self.timepoint,  # type: ignore[arg-type]  # a follow-up timepoint
            baseline_time=self.baseline.time,
            assessment_time=self.follow_up.time,
            revision=self.revision,
            measures=self.measures,
        )

    def to_doc(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "baseline_event_id": self.baseline.event_id,
            "follow_up_event_id": self.follow_up.event_id,
            "baseline_time": utc_text(self.baseline.time),
            "assessment_time": utc_text(self.follow_up.time),
            "measures": {m.value: o.model_dump(mode="json") for m, o in self.measures.items()},
        }


@dataclass(frozen=True)
class PatientState:
    """The winning assessment per timepoint and the last revision per follow-up."""

    winners: dict[Timepoint, Assessment] = field(default_factory=dict)
    revisions: dict[Timepoint, int] = field(default_factory=dict)

    def outcome(self, timepoint: Timepoint) -> Outcome | None:
        baseline = self.winners.get(Timepoint.BASELINE)
        follow_up = self.winners.get(timepoint)
        if baseline is None or follow_up is None or timepoint == Timepoint.BASELINE:
            return None
        return Outcome(
            timepoint,
            self.revisions.get(timepoint, 0),
            baseline,
            follow_up,
            compare(baseline, follow_up),
        )

    def outcomes(self) -> dict[Timepoint, Outcome]:
        found = {tp: self.outcome(tp) for tp in FOLLOW_UP_TIMEPOINTS}
        return {tp: o for tp, o in found.items() if o is not None}

    def apply(self, assessment: Assessment) -> tuple[PatientState, list[Outcome]]:
        """The state after `assessment`, and the outcomes to publish because of it.

        Nothing is published when the assessment does not win (a redelivery, or a
        correction older than the one already kept).
        """
        tp = assessment.timepoint
        if not assessment.supersedes(self.winners.get(tp)):
            return self, []
        affected = FOLLOW_UP_TIMEPOINTS if tp == Timepoint.BASELINE else (tp,)
        winners = {**self.winners, tp: assessment}
        revisions = dict(self.revisions)
        for follow_up in affected:
            if Timepoint.BASELINE in winners and follow_up in winners:
                revisions[follow_up] = revisions.get(follow_up, 0) + 1
        state = replace(self, winners=winners, revisions=revisions)
        changed = [o for f in affected if (o := state.outcome(f)) is not None]
        return state, changed

    def to_doc(self) -> dict[str, Any]:
        return {
            "winners": {tp.value: a.to_doc() for tp, a in self.winners.items()},
            "revisions": {tp.value: n for tp, n in self.revisions.items()},
            "outcomes": {tp.value: o.to_doc() for tp, o in self.outcomes().items()},
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any] | None) -> PatientState:
        if not doc:
            return cls()
        return cls(
            winners={
                Timepoint(tp): Assessment.from_doc(a) for tp, a in doc.get("winners", {}).items()
            },
            revisions={Timepoint(tp): int(n) for tp, n in doc.get("revisions", {}).items()},
        )
