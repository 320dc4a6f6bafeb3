"""The notifications use cases on consumed events (idempotent and order-independent:
event -> rules -> repository) and the opt-out; sending is scheduler.py's.

`apply_many` applies delivered events with a few bulk writes (see domain/batch.py); one
event is a batch of one, a batch leaves the same documents as its events applied one by
one, and if it raises the backbone applies each event again alone.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from ibest.backbone.audit import Actor
from ibest.backbone.clock import Clock
from ibest.backbone.document import Document
from services.notifications.domain.batch import (
    Completion,
    baseline_time,
    collected_timepoints,
    fold,
    patient_of,
)
from services.notifications.domain.followups import follow_up_items
from services.notifications.domain.hours import WorkingHours
from services.notifications.domain.ids import (
    follow_up_item_id,
    survey_reminder_id,
    thanks_reminder_id,
)
from services.notifications.domain.surveys import SurveyWindows, survey_nudges
from services.notifications.ports import (
    AuditTrail,
    NotificationsRepository,
    RecordRetention,
)
from services.notifications.settings import NotificationSettings
from shared.envelope import AnyEvent
from shared.events import RecipientKind, ReminderKind
from shared.followup import assessment_date

TRAINING_FAMILIES = ["training"]
OPT_OUT_FAMILIES = ["training", "thanks"]


class NotificationsService:
    def __init__(
        self,
        repo: NotificationsRepository,
        settings: NotificationSettings,
        clock: Clock,
        audit: AuditTrail,
    ) -> None:
        self.repo = repo
        self.audit = audit
        self.settings = settings
        self.hours: WorkingHours = settings.working_hours()
        self.clock = clock

    async def set_opt_out(self, clinician_ref: str, opted_out: bool, actor: Actor) -> None:
        """Opt a clinician out of (or back into) their reminders; pending ones are cancelled
        at once and the sender checks again just before sending. The change is audited
        first, so none happens unrecorded (a failure to record raises before any change)."""
        await self.audit.record(
            "opt_out" if opted_out else "opt_in", actor, clinician_ref=clinician_ref
        )
        await self.repo.set_opt_out(clinician_ref, opted_out, self.clock())
        if opted_out:
            await self.repo.cancel_clinician_reminders(clinician_ref, OPT_OUT_FAMILIES, "opted out")

    async def apply_many(self, events: list[AnyEvent]) -> None:
        """Delivered events (one event is a batch of one) in at most nine round trips:
        clinicians, answered surveys, their reminders, surveys answered before (read,
        write), patients (write, read), follow-up items, and a last read of what was
        collected meanwhile."""
        changes = fold(events)
        now = self.clock()
        clinicians = list(changes.clinicians.values())
        await self.repo.apply_clinicians(clinicians)
        await self.repo.cancel_answered_surveys(
            [(c.ref, day) for c in clinicians for day in sorted(c.report_dates)]
        )
        completed = [c for c in clinicians if c.completions]
        if completed:
            thanks = [
                t
                for c in completed
                for done in c.completions
                if (t := self._thanks(c.ref, done, now)) is not None
            ]
            thanks += [
                s
                for c in completed
                for done in c.completions
                for s in self._surveys(c.ref, done, now)
            ]
            created = await self.repo.complete_training(
                [c.ref for c in completed], TRAINING_FAMILIES, "training completed", thanks
            )
            every = [
                s
                for c in completed
                for done in c.completions
                for s in self._surveys(c.ref, done, now, every=True)
            ]
            await self.repo.retime_surveys(_may_move(every, created, thanks))
            windows: SurveyWindows = {c.ref: [] for c in completed}
            for _, nudge in every:
                windows[nudge["recipient_ref"]].append((nudge["opens"], nudge["closes"]))
            await self.repo.cancel_surveys_answered_before(windows)
        if not changes.patients:
            return
        docs = await self.repo.apply_patients(list(changes.patients.values()))
        today = assessment_date(now)
        items = [item for key, doc in docs.items() for item in self._items(key, doc, today)]
        cancels = [
            (c.trustcode, c.patient_ref, tp)
            for c in changes.patients.values()
            for tp in sorted(set(c.collected) | collected_timepoints(docs.get(c.key)))
        ]
        await self.repo.write_items(items, cancels)
        if docs:
            # As one by one: collected is read again after the items exist, so a follow-up
            # handled concurrently either is seen here or cancels these items itself.
            again = await self.repo.collected_of(list(docs))
            later = [(*patient_of(key), tp) for key, tps in again.items() for tp in tps]
            if missed := sorted(set(later) - set(cancels)):
                await self.repo.write_items([], missed)

    def _thanks(self, ref: str, done: Completion, now: datetime) -> tuple[str, Document] | None:
        """The thank-you for a completion, or None for a replayed old one (too late)."""
        if now - done.at > timedelta(days=self.settings.thanks_max_age_days):
            return None
        return thanks_reminder_id(ref, done.course_version), {
            "family": "thanks",
            "kind": ReminderKind.TRAINING_THANKS.value,
            "recipient_kind": RecipientKind.CLINICIAN.value,
            "recipient_ref": ref,
            "course_version": done.course_version,
            "trustcode": done.trustcode,
            "sitecode": done.sitecode,
            "due_at": done.at,
            "send_after": self.hours.next_open(done.at),
            "created_at": now,
        }

    def _surveys(
        self, ref: str, done: Completion, now: datetime, *, every: bool = False
    ) -> list[tuple[str, Document]]:
        """The delivery survey nudges of a completion whose window has not closed yet (a
        replayed old completion schedules only what could still be answered); with `every`,
        closed ones too (to re-time a pending nudge from a corrected, earlier completion:
        one whose window has closed by then is cancelled when due, never sent)."""
        if done.completed_on is None:
            return []
        today = assessment_date(now)
        closing_before = timedelta(days=self.settings.closing_before_days)
        return [
            (
                survey_reminder_id(n.kind.value, ref, n.survey.value),
                {
                    "family": "survey",
                    "kind": n.kind.value,
                    "survey": n.survey.value,
                    "recipient_kind": RecipientKind.CLINICIAN.value,
                    "recipient_ref": ref,
                    "trustcode": done.trustcode,
                    "sitecode": done.sitecode,
                    "remind_on": n.remind_on.isoformat(),
                    "due": n.due.isoformat(),
                    "opens": n.opens.isoformat(),
                    "closes": n.closes.isoformat(),
                    "closing_on": n.closing_on.isoformat(),
                    "due_at": n.due_at,
                    "send_after": self.hours.next_open(n.due_at),
                    "created_at": now,
                },
            )
            for n in survey_nudges(done.completed_on, closing_before)
            if every or n.closes >= today
        ]

    def _items(self, key: str, patient: Document, today: date) -> list[tuple[str, Document]]:
        """The follow-up items of a stored patient's latest baseline, windows still open."""
        trust, ref = patient_of(key)
        closing_before = timedelta(days=self.settings.closing_before_days)
        return [
            (
                follow_up_item_id(item.kind.value, trust, ref, item.timepoint.value),
                {
                    "trustcode": trust,
                    "patient_ref": ref,
                    "sitecode": patient["sitecode"],
                    "timepoint": item.timepoint.value,
                    "kind": item.kind.value,
                    "remind_on": item.remind_on.isoformat(),
                    "due": item.due.isoformat(),
                    "closes": item.closes.isoformat(),
                },
            )
            for item in follow_up_items(baseline_time(patient), closing_before)
            # a window already closed: nothing a reminder could still save
            if item.closes >= today
        ]


def _may_move(
    nudges: list[tuple[str, Document]], created: set[str], written: list[tuple[str, Document]]
) -> list[tuple[str, Document]]:
    """The re-timings that may move something: a nudge this batch has just created holds
    the timing it was created with (the first of `written` with its id), or an earlier one
    if another writer moved it since (re-timing only moves earlier), so re-timing it to the
    same or a later due date can only match nothing and is not sent."""
    first: dict[str, str] = {}
    for rid, fields in written:
        if rid in created and "due" in fields:  # a survey nudge (a thank-you has no window)
            first.setdefault(rid, fields["due"])
    return [(rid, f) for rid, f in nudges if not (rid in first and f["due"] >= first[rid])]


async def purge_expired_records(
    records: RecordRetention, settings: NotificationSettings, now: datetime
) -> int:
    """Retention: remove the records past IBEST_NOTIFY_RECORD_RETENTION_DAYS that no
    "once only" rule reads any more; how many."""
    return await records.purge_expired(now, settings.record_retention)
