"""The scheduler (the sending use case): plans due reminders, claims and sends them,
publishes how each ended.

One pass (`run_once`) is: plan training reminders that have fallen due; inside working
hours, open today's digest for every site with follow-ups due; claim due reminders one at
a time and send them, storing each finished one's notification.sent/failed event in the
same update (the backbone outbox); relay what is unpublished (so a crash between recording
and publishing only delays the event, whose id is deterministic).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from ibest.backbone.clock import Clock
from ibest.backbone.document import Document
from ibest.backbone.outbox import OutboxRelay
from ibest.backbone.outbox_values import OutboxEntry
from ibest.backbone.periodic import every
from ibest.backbone.publisher import Publisher
from services.notifications.declaration import DECLARATION
from services.notifications.domain import messages
from services.notifications.domain.followups import DigestLine, digest_kind, digest_lines
from services.notifications.domain.ids import (
    digest_id,
    notification_event_id,
    training_reminder_id,
)
from services.notifications.domain.status import (
    CANCELLED,
    FAILED,
    FINISHED,
    NOTIFIED,
    PENDING,
    SENT,
    UNRESOLVED,
)
from services.notifications.domain.surveys import reason_not_to_send
from services.notifications.domain.training import (
    TrainingState,
    next_training_reminder,
)
from services.notifications.ports import (
    Channel,
    ContactDirectory,
    ContactUnavailable,
    NotificationsRepository,
    OutgoingMessage,
    PermanentSendError,
    TransientSendError,
)
from services.notifications.settings import NotificationSettings
from shared.envelope import AnyEvent, new_event
from shared.events import NotificationFailed, NotificationSent, RecipientKind, ReminderKind
from shared.followup import Timepoint, assessment_date
from shared.links import ClinicianForm, LinkClaims, clinician_link
from shared.surveys import Survey

log = logging.getLogger(__name__)
SOURCE = "/services/notifications"
NAME = DECLARATION.name


@dataclass
class SendResult:
    """What became of one claimed reminder."""

    status: str  # sent, failed, cancelled, pending (retry later)
    reason: str = ""
    provider_id: str | None = None


class Scheduler:
    def __init__(
        self,
        repo: NotificationsRepository,
        settings: NotificationSettings,
        channel: Channel,
        contacts: ContactDirectory,
        publisher: Publisher,
        clock: Clock,
        id_key: bytes,
    ) -> None:
        self.repo = repo
        self.id_key = id_key
        self.settings = settings
        self.channel = channel
        self.contacts = contacts
        self.relay = OutboxRelay(repo.outbox, publisher, NAME, settings.outbox())
        self.clock = clock
        self.rules = settings.training_rules()
        self.hours = settings.working_hours()
        self.site_teams = settings.site_team_addresses()
        self.owner = uuid.uuid4().hex
        self.last_pass: datetime | None = None

    async def loop(self) -> None:
        """The background task: one pass every IBEST_NOTIFY_POLL_SECONDS."""
        await every("notifications: scheduler", self.settings.poll_seconds, self.run_once)

    async def run_once(self) -> int:
        """One pass; returns how many reminders it finished (sent or failed)."""
        now = self.clock()
        await self.plan_training(now)
        finished = 0
        if self.hours.is_open(now):
            await self.plan_digests(now)
            while (doc := await self.repo.claim(now, self.owner, self._lease())) is not None:
                result = await self.deliver(doc, now)
                await self._record(doc, result, now)
                finished += result.status in FINISHED
        await self.relay.relay_once()
        self.last_pass = now
        return finished

    async def queue_events_finished_before_outbox(self) -> int:
        """At start-up: reminders an older version finished but had not yet published (it
        kept a `published` flag and built the event at publish time) get that same event in
        their outbox, so the relay publishes it; how many."""
        found = await self.repo.finished_before_outbox()
        for doc in found:
            event = notification_event(doc, self.clock(), self.id_key)
            await self.repo.queue_event(doc["_id"], [OutboxEntry.of(event).model_dump()])
        return len(found)

    def _lease(self) -> timedelta:
        return timedelta(seconds=self.settings.lease_seconds)

    def _survey_link(self, survey: Survey, clinician_ref: str) -> str:
        """A signed forms link (shared/links.py) when the forms' secret is configured, so
        no reference is in clear; otherwise the configured URL (deprecated)."""
        form = (
            ClinicianForm.DELIVERY_MONTH_4
            if survey == Survey.MONTH_4
            else (ClinicianForm.DELIVERY_MONTH_12)
        )
        signed = self._signed(form, clinician_ref)
        return signed or messages.survey_link(self.settings.survey_url, survey, clinician_ref)

    def _intention_link(self, clinician_ref: str) -> str:
        return self._signed(ClinicianForm.INTENTION, clinician_ref) or self.settings.intention_url

    def _signed(self, form: ClinicianForm, clinician_ref: str) -> str | None:
        secret = self.settings.forms_link_secret()
        if secret is None:
            return None
        now = self.clock().replace(microsecond=0)
        claims = LinkClaims(form, clinician_ref, now)
        return clinician_link(self.settings.forms_base_url, secret, claims)

    # Planning -----------------------------------------------------------------------------

    async def plan_training(self, now: datetime) -> None:
        made = await self.repo.training_reminders()
        async for clinician in self.repo.active_clinicians():
            ref = clinician["_id"]
            planned = next_training_reminder(
                _training_state(clinician, made.get(ref, [])), self.rules
            )
            if planned is None or planned.due_at > now:
                continue
            await self.repo.create_reminder(
                training_reminder_id(ref, planned.number),
                {
                    "family": "training",
                    "kind": planned.kind.value,
                    "number": planned.number,
                    "recipient_kind": RecipientKind.CLINICIAN.value,
                    "recipient_ref": ref,
                    "due_at": planned.due_at,
                    "send_after": self.hours.next_open(planned.due_at),
                    "created_at": now,
                },
            )

    async def plan_digests(self, now: datetime) -> None:
        today = self.hours.local_date(now)
        for site, trust in (await self.repo.sites_with_due_items(today)).items():
            await self.repo.create_reminder(
                digest_id(site, today),
                {
                    "family": "follow_up",
                    "kind": ReminderKind.FOLLOW_UP_DUE.value,
                    "recipient_kind": RecipientKind.SITE_TEAM.value,
                    "recipient_ref": site,
                    "trustcode": trust,
                    "sitecode": site,
                    "day": today,
                    "due_at": now,
                    "send_after": now,
                    "created_at": now,
                },
            )

    # Sending ------------------------------------------------------------------------------

    async def deliver(self, doc: Document, now: datetime) -> SendResult:
        kind = ReminderKind(doc["kind"])
        try:
            if doc["recipient_kind"] == RecipientKind.SITE_TEAM.value:
                prepared = await self._prepare_digest(doc, now)
            else:
                prepared = await self._prepare_clinician(doc, kind, now)
        except ContactUnavailable as exc:
            return self._retry_or_fail(doc, str(exc))
        if isinstance(prepared, SendResult):
            return prepared
        try:
            provider_id = await self.channel.send(prepared)
        except TransientSendError as exc:
            return self._retry_or_fail(doc, str(exc))
        except PermanentSendError as exc:
            return SendResult(FAILED, str(exc))
        return SendResult(SENT, provider_id=provider_id)

    async def _prepare_clinician(
        self, doc: Document, kind: ReminderKind, now: datetime
    ) -> OutgoingMessage | SendResult:
        clinician = await self.repo.clinician(doc["recipient_ref"]) or {}
        if clinician.get("opted_out"):
            return SendResult(CANCELLED, "opted out")
        if doc.get("family") == "training" and clinician.get("completed_at") is not None:
            return SendResult(CANCELLED, "training completed")
        if doc.get("family") == "survey":
            reason = reason_not_to_send(
                kind,
                date.fromisoformat(doc["opens"]),
                date.fromisoformat(doc["closes"]),
                date.fromisoformat(doc["closing_on"]),
                assessment_date(now),
                [date.fromisoformat(d) for d in clinician.get("delivery_reports", [])],
            )
            if reason is not None:
                return SendResult(CANCELLED, reason)
            survey = Survey(doc["survey"])
            content = messages.survey_content(
                kind,
                survey,
                doc["closes"],
                self._survey_link(survey, doc["recipient_ref"]),
            )
        elif kind == ReminderKind.TRAINING_THANKS:
            content = messages.thanks_content(
                doc.get("course_version", ""), self._intention_link(doc["recipient_ref"])
            )
        else:
            content = messages.training_content(
                kind, self.settings.course_url, int(doc.get("number", 1))
            )
        email = await self.contacts.email_of(doc["recipient_ref"])
        if email is None:
            return SendResult(FAILED, "no contact email")
        return self._message(doc, kind, [email], content)

    async def _prepare_digest(self, doc: Document, now: datetime) -> OutgoingMessage | SendResult:
        site = doc["recipient_ref"]
        items = await self.repo.take_items_into(doc["_id"], site, doc["day"])
        raw = []
        for item in items:
            if item["timepoint"] in await self.repo.collected(
                item["trustcode"], item["patient_ref"]
            ):
                continue
            raw.append(
                DigestLine(
                    item["patient_ref"],
                    Timepoint(item["timepoint"]),
                    ReminderKind(item["kind"]),
                    date.fromisoformat(item["due"]),
                    date.fromisoformat(item["closes"]),
                )
            )
        lines = digest_lines(raw, date.fromisoformat(self.hours.local_date(now)))
        if not lines:
            return SendResult(CANCELLED, "nothing left to remind")
        kind = digest_kind(lines)
        doc["kind"] = kind.value
        addresses = self.site_teams.get(site, [])
        if not addresses:
            return SendResult(FAILED, f"no site team address configured for {site}")
        return self._message(doc, kind, addresses, messages.digest_content(site, doc["day"], lines))

    def _message(
        self, doc: Document, kind: ReminderKind, to: list[str], content: messages.Content
    ) -> OutgoingMessage:
        return OutgoingMessage(
            doc["_id"],
            kind,
            to,
            self.settings.template_id(kind),
            content.subject,
            content.body,
            content.personalisation,
        )

    def _retry_or_fail(self, doc: Document, reason: str) -> SendResult:
        if int(doc.get("attempts", 0)) + 1 >= self.settings.max_attempts:
            return SendResult(
                FAILED, f"gave up after {self.settings.max_attempts} attempts: {reason}"
            )
        return SendResult(PENDING, reason)

    async def _record(self, doc: Document, result: SendResult, now: datetime) -> None:
        kind = ReminderKind(doc["kind"])
        fields: dict[str, Any] = {"status": result.status, "kind": kind.value, "lease_until": None}
        if result.status == PENDING:
            attempts = int(doc.get("attempts", 0)) + 1
            # At least a second, so a pass never picks its own retry up again.
            delay = max(
                1.0,
                min(
                    self.settings.retry_max_seconds,
                    self.settings.retry_base_seconds * 2 ** (attempts - 1),
                ),
            )
            fields |= {
                "attempts": attempts,
                "last_error": result.reason,
                "send_after": self.hours.next_open(now + timedelta(seconds=delay)),
            }
            log.warning(
                "reminder %s (%s) will be retried: %s", doc["_id"], kind.value, result.reason
            )
        else:
            # As MongoDB stores it (milliseconds), so the event made now is the one a
            # re-publish from the stored reminder would make.
            now = now.replace(microsecond=now.microsecond // 1000 * 1000)
            fields |= {
                "finished_at": now,
                "reason": result.reason,
                "channel": self.channel.name,
                "template_id": self.settings.template_id(kind),
            }
            if result.provider_id:
                fields["provider_id"] = result.provider_id
            if result.status == SENT:
                fields["sent_at"] = now
            if result.status in FINISHED:
                fields |= await self._publish_target(doc)
                event = notification_event({**doc, **fields}, now, self.id_key)
                fields["outbox"] = [OutboxEntry.of(event).model_dump()]
            log.info("reminder %s (%s) %s %s", doc["_id"], kind.value, result.status, result.reason)
        await self.repo.finish(doc["_id"], self.owner, fields)
        if doc.get("family") == "follow_up" and result.status != PENDING:
            await self.repo.finish_items(
                doc["_id"], NOTIFIED if result.status == SENT else result.status
            )

    async def _publish_target(self, doc: Document) -> dict[str, str]:
        """The trust and site the result is published under: the site team's site, or the
        clinician's latest enrolment."""
        if doc.get("trustcode") and doc.get("recipient_kind") == RecipientKind.SITE_TEAM.value:
            return {"trustcode": doc["trustcode"], "sitecode": doc["sitecode"]}
        clinician = await self.repo.clinician(doc["recipient_ref"]) or {}
        trust = clinician.get("trustcode") or doc.get("trustcode")
        site = clinician.get("sitecode") or doc.get("sitecode")
        return {"trustcode": str(trust), "sitecode": str(site)}


def notification_event(doc: Document, now: datetime, id_key: bytes) -> AnyEvent:
    """notification.sent or notification.failed for a finished reminder (no address)."""
    common = {
        "notification_id": doc["_id"],
        "kind": ReminderKind(doc["kind"]),
        "recipient_kind": RecipientKind(doc["recipient_kind"]),
        "recipient_ref": doc["recipient_ref"],
        "template_id": str(doc["template_id"])[:64],
        "channel": doc["channel"],
    }
    payload: NotificationSent | NotificationFailed
    if doc["status"] == SENT:
        payload = NotificationSent(**common, sent_at=doc["sent_at"])
    else:
        payload = NotificationFailed(**common, reason=str(doc.get("reason") or "failed")[:500])
    return new_event(
        payload,
        trustcode=doc["trustcode"],
        sitecode=doc["sitecode"],
        source=SOURCE,
        time=doc.get("finished_at") or now,
        event_id=notification_event_id(id_key, doc["_id"], doc["status"]),
    )


def _training_state(clinician: Document, reminders: list[Document]) -> TrainingState:
    finished = [r for r in reminders if r["status"] in FINISHED]
    return TrainingState(
        enrolled_at=clinician.get("enrolled_at"),
        started_at=clinician.get("started_at"),
        last_progress_at=clinician.get("last_progress_at"),
        completed=clinician.get("completed_at") is not None,
        opted_out=bool(clinician.get("opted_out")),
        made=len(reminders),
        finished=len(finished),
        last_finished_at=max(
            (r["finished_at"] for r in finished if r.get("finished_at")), default=None
        ),
        unresolved=any(r["status"] in UNRESOLVED for r in reminders),
    )
