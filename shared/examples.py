"""One valid example of every event type, for integrators (written to docs/contract/examples)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from shared import events as ev
from shared.envelope import AnyEvent, EventType, new_event
from shared.followup import Timepoint
from shared.measures import Measure

_T0 = datetime(2026, 3, 2, 9, 30, tzinfo=timezone(timedelta(hours=0)))
_NS = uuid.UUID("6f1d7f4e-3f7b-4c53-9a55-6b1b3e0c9a10")

_PAYLOADS: dict[str, ev.Payload] = {
    "clinician.enrolled": ev.ClinicianEnrolled(
        clinician_ref="clin-7f3a9c",
        profession=ev.Profession.PHYSIOTHERAPIST,
        course_version="1",
        contact_email="a.physio@example.nhs.uk",
    ),
    "module.started": ev.ModuleStarted(
        clinician_ref="clin-7f3a9c", module_id="m01-understanding-back-pain"
    ),
    "module.completed": ev.ModuleCompleted(
        clinician_ref="clin-7f3a9c", module_id="m01-understanding-back-pain", quiz_score=85
    ),
    "clinician.training_started": ev.TrainingStarted(
        clinician_ref="clin-7f3a9c", course_version="1"
    ),
    "clinician.training_completed": ev.TrainingCompleted(
        clinician_ref="clin-7f3a9c",
        course_version="1",
        completed_at=_T0,
    ),
    "clinician.intention_reported": ev.IntentionReported(
        clinician_ref="clin-7f3a9c", intends_to_deliver=True, confidence=8
    ),
    "clinician.delivery_reported": ev.DeliveryReported(
        clinician_ref="clin-7f3a9c", delivering=True, groups_delivered=2
    ),
    "class.started": ev.ClassStarted(
        class_id="class-2026-03-a",
        facilitator_refs=["clin-7f3a9c", "clin-11b2e0"],
        planned_sessions=6,
    ),
    "patient.assessed": ev.PatientAssessed(
        patient_ref="pt-5c1e8a2b9d",
        class_id="class-2026-03-a",
        timepoint=Timepoint.BASELINE,
        measures=ev.Measures(rmdq=14, pain_nrs=7, psfs=3.4),
    ),
    "outcome.recorded": ev.OutcomeRecorded(
        patient_ref="pt-5c1e8a2b9d",
        timepoint=Timepoint.MONTH_3,
        baseline_time=_T0,
        assessment_time=_T0 + timedelta(days=93),
        revision=1,
        measures={
            Measure.RMDQ: ev.MeasureOutcome(baseline=14, value=8, change=-6, improved=True),
            Measure.PAIN_NRS: ev.MeasureOutcome(baseline=7, value=6, change=-1, improved=False),
        },
    ),
    "notification.sent": ev.NotificationSent(
        notification_id="training_start-clin-7f3a9c-1",
        kind=ev.ReminderKind.TRAINING_START,
        recipient_kind=ev.RecipientKind.CLINICIAN,
        recipient_ref="clin-7f3a9c",
        template_id="training-start",
        channel="notify",
        sent_at=_T0,
    ),
    "notification.failed": ev.NotificationFailed(
        notification_id="site-RTH08-2026-06-01",
        kind=ev.ReminderKind.FOLLOW_UP_DUE,
        recipient_kind=ev.RecipientKind.SITE_TEAM,
        recipient_ref="RTH08",
        template_id="follow-up-due",
        channel="notify",
        reason="permanent-failure: the email address does not exist",
    ),
}


def example(etype: EventType) -> AnyEvent:
    """The example event of one type; deterministic, so the committed docs stay current."""
    return new_event(
        _PAYLOADS[etype.name],
        trustcode="RTH",
        sitecode="RTH08",
        source="/trusts/RTH/ibest-lms",
        time=_T0,
        event_id=uuid.uuid5(_NS, etype.name),
    )
