"""Event handlers: thin, idempotent and order-independent (event -> rules -> repository)."""

from __future__ import annotations

from datetime import timedelta

from ibest.backbone.consumer import Handler
from ibest.backbone.runtime import Clock
from services.notifications.adapters.repository import Repository
from services.notifications.domain.followups import follow_up_items
from services.notifications.domain.hours import WorkingHours
from services.notifications.domain.ids import follow_up_item_id, thanks_reminder_id
from services.notifications.settings import NotificationSettings
from shared.envelope import AnyEvent
from shared.events import RecipientKind, ReminderKind
from shared.followup import FOLLOW_UPS, Timepoint, assessment_date

TRAINING_FAMILIES = ["training"]


class Handlers:
    def __init__(self, repo: Repository, settings: NotificationSettings, clock: Clock) -> None:
        self.repo = repo
        self.settings = settings
        self.hours: WorkingHours = settings.working_hours()
        self.clock = clock

    def by_event(self) -> dict[str, Handler]:
        return {
            "clinician.enrolled": self.enrolled,
            "clinician.training_started": self.progressed,
            "module.started": self.progressed,
            "module.completed": self.progressed,
            "clinician.training_completed": self.completed,
            "patient.assessed": self.assessed,
        }

    async def enrolled(self, event: AnyEvent) -> None:
        # The contact email is deliberately not read: enrolment alone keeps it.
        await self.repo.record_enrolment(event.data.clinician_ref, event.trustcode,
                                         event.sitecode, event.time)

    async def progressed(self, event: AnyEvent) -> None:
        await self.repo.record_progress(event.data.clinician_ref, event.time)

    async def completed(self, event: AnyEvent) -> None:
        ref = event.data.clinician_ref
        await self.repo.record_completion(ref, event.time, event.trustcode, event.sitecode)
        await self.repo.cancel_clinician_reminders(ref, TRAINING_FAMILIES, "training completed")
        max_age = timedelta(days=self.settings.thanks_max_age_days)
        if self.clock() - event.time > max_age:
            return  # a replayed old completion: too late to thank
        version = event.data.course_version
        await self.repo.create_reminder(thanks_reminder_id(ref, version), {
            "family": "thanks", "kind": ReminderKind.TRAINING_THANKS.value,
            "recipient_kind": RecipientKind.CLINICIAN.value, "recipient_ref": ref,
            "course_version": version, "trustcode": event.trustcode,
            "sitecode": event.sitecode, "due_at": event.time,
            "send_after": self.hours.next_open(event.time), "created_at": self.clock(),
        })

    async def assessed(self, event: AnyEvent) -> None:
        trust, patient = event.trustcode, event.data.patient_ref
        timepoint = Timepoint(event.data.timepoint)
        if timepoint in FOLLOW_UPS:
            # Mark collected first, then cancel: a baseline handled concurrently either
            # sees the mark or has its items cancelled here.
            await self.repo.record_collected(trust, patient, timepoint.value)
            await self.repo.cancel_items(trust, patient, timepoint.value)
            return
        if timepoint != Timepoint.BASELINE:
            return
        doc = await self.repo.record_baseline(trust, patient, event.sitecode, event.time)
        today = assessment_date(self.clock())
        closing_before = timedelta(days=self.settings.closing_before_days)
        for item in follow_up_items(doc["baseline_time"], closing_before):
            if item.closes < today:
                continue  # window already closed: nothing a reminder could still save
            await self.repo.upsert_item(
                follow_up_item_id(item.kind.value, trust, patient, item.timepoint.value), {
                    "trustcode": trust, "patient_ref": patient, "sitecode": doc["sitecode"],
                    "timepoint": item.timepoint.value, "kind": item.kind.value,
                    "remind_on": item.remind_on.isoformat(), "due": item.due.isoformat(),
                    "closes": item.closes.isoformat(),
                })
        for tp in await self.repo.collected(trust, patient):
            await self.repo.cancel_items(trust, patient, tp)
