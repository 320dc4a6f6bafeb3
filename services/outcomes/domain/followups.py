"""A patient's follow-up schedule, from the one shared definition (shared.followup)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.outcomes.domain.outcomes import PatientState
from shared.followup import (
    FOLLOW_UPS,
    Timepoint,
    assessment_date,
    follow_up_window,
    is_due,
)


def schedule(state: PatientState, now: datetime) -> dict[str, Any]:
    """Baseline date and, per follow-up, due/opens/closes, whether due now and recorded."""
    baseline = state.winners.get(Timepoint.BASELINE)
    if baseline is None:
        return {
            "baseline_date": None,
            "followups": {
                tp.value: {
                    "recorded": tp in state.winners,
                    "due": None,
                    "opens": None,
                    "closes": None,
                    "due_now": False,
                }
                for tp in FOLLOW_UPS
            },
        }
    day = assessment_date(baseline.time)
    out: dict[str, Any] = {"baseline_date": day.isoformat(), "followups": {}}
    for tp in FOLLOW_UPS:
        window = follow_up_window(day, tp)
        out["followups"][tp.value] = {
            "due": window.due.isoformat(),
            "opens": window.opens.isoformat(),
            "closes": window.closes.isoformat(),
            "due_now": is_due(baseline.time, tp, now),
            "recorded": tp in state.winners,
        }
    return out
