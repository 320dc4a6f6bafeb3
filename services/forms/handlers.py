"""Maps each consumed event to its use case, nothing more."""

from __future__ import annotations

from ibest.backbone.consumer import Handler
from services.forms.application import Facts


def handlers(facts: Facts) -> dict[str, Handler]:
    return {
        "clinician.training_completed": facts.training_completed,
        "patient.assessed": facts.patient_assessed,
    }
