"""In memory: notifications' `NotificationsRepository` port, documents as dicts with the
MongoDB adapter's semantics ($min/$max, create-once, latest-wins, atomic claims)."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from typing import Any

from ibest.backbone.document import Document
from ibest.backbone.outbox_values import OutboxEntry
from services.notifications.domain.batch import (
    ClinicianChange,
    PatientChange,
    collected_timepoints,
    latest_key,
    patient_of,
)
from services.notifications.domain.status import (
    CANCELLED,
    FINISHED,
    PENDING,
    QUEUED,
    SENDING,
)
from services.notifications.domain.surveys import SURVEY_TIMING, SurveyWindows, answering
from services.notifications.ports import ChannelName, ContactUnavailable, OutgoingMessage
from tests.fakes.outbox import FakeOutbox


class _ReminderOutbox(FakeOutbox):
    """The reminders' embedded `outbox` field, as the outbox store sees it."""

    def __init__(self, reminders: dict[str, Document]) -> None:
        super().__init__()
        self._reminders = reminders

    def _keys(self) -> list[str]:
        return list(self._reminders)

    def _held(self, key: str) -> list[OutboxEntry]:
        return [
            OutboxEntry.model_validate(o) for o in self._reminders.get(key, {}).get("outbox", [])
        ]

    def _keep(self, key: str, entries: list[OutboxEntry]) -> None:
        self._reminders[key]["outbox"] = [e.model_dump() for e in entries]


class FakeNotificationsRepository:
    def __init__(self) -> None:
        self.clinicians: dict[str, Document] = {}
        self.patients: dict[str, Document] = {}
        self.follow_ups: dict[str, Document] = {}
        self.reminders: dict[str, Document] = {}
        self.deliveries: dict[str, Document] = {}
        self.outbox = _ReminderOutbox(self.reminders)

    # Clinicians ---------------------------------------------------------------------------

    def _clinician(self, ref: str) -> Document:
        return self.clinicians.setdefault(ref, {"_id": ref})

    def _latest(self, doc: Document, field: str, latest: str, values: Document) -> None:
        if field not in doc or latest > doc[field]:
            doc.update(values, **{field: latest})

    async def apply_clinicians(self, changes: list[ClinicianChange]) -> None:
        for change in changes:
            doc = self._clinician(change.ref)
            for name, at in change.mins.items():
                _min(doc, name, at)
            for name, at in change.maxs.items():
                _max(doc, name, at)
            for day in sorted(change.report_dates):
                _add(doc, "delivery_reports", day.isoformat())
            if change.latest_enrolment is not None:
                at, trust, site, event_id = change.latest_enrolment
                self._latest(
                    doc,
                    "latest_enrolment",
                    latest_key(at, trust, event_id),
                    {"trustcode": trust, "sitecode": site},
                )

    async def cancel_answered_surveys(self, answers: list[tuple[str, date]]) -> None:
        for ref, day in answers:
            for r in self.reminders.values():
                if (
                    r["recipient_ref"] == ref
                    and r.get("family") == "survey"
                    and r["status"] == PENDING
                    and r["opens"] <= day.isoformat() <= r["closes"]
                ):
                    r.update(status=CANCELLED, reason="survey answered")

    async def cancel_surveys_answered_before(self, windows: SurveyWindows) -> None:
        await self.cancel_answered_surveys(
            [
                (ref, date.fromisoformat(day))
                for ref, spans in windows.items()
                for day in answering(
                    self.clinicians.get(ref, {}).get("delivery_reports", []), spans
                )
            ]
        )

    async def set_opt_out(self, ref: str, opted_out: bool, at: datetime) -> None:
        self._clinician(ref).update(opted_out=opted_out, opt_out_changed_at=at)

    async def clinician(self, ref: str) -> Document | None:
        doc = self.clinicians.get(ref)
        return copy.deepcopy(doc) if doc else None

    def active_clinicians(self) -> AsyncIterator[Document]:
        async def found() -> AsyncIterator[Document]:
            for doc in list(self.clinicians.values()):
                if (
                    doc.get("enrolled_at") is not None
                    and doc.get("completed_at") is None
                    and doc.get("opted_out") is not True
                ):
                    yield copy.deepcopy(doc)

        return found()

    async def training_reminders(self) -> dict[str, list[Document]]:
        by_ref: dict[str, list[Document]] = {}
        for doc in self.reminders.values():
            if doc.get("family") == "training":
                by_ref.setdefault(doc["recipient_ref"], []).append(copy.deepcopy(doc))
        return by_ref

    async def cancel_clinician_reminders(self, ref: str, families: list[str], reason: str) -> None:
        for r in self.reminders.values():
            if r["recipient_ref"] == ref and r.get("family") in families and r["status"] == PENDING:
                r.update(status=CANCELLED, reason=reason)

    async def complete_training(
        self, refs: list[str], families: list[str], reason: str, thanks: list[tuple[str, Document]]
    ) -> set[str]:
        for ref in refs:
            await self.cancel_clinician_reminders(ref, families, reason)
        return {rid for rid, fields in thanks if await self.create_reminder(rid, fields)}

    async def retime_surveys(self, nudges: list[tuple[str, Document]]) -> None:
        for rid, fields in nudges:
            doc = self.reminders.get(rid)
            if doc is not None and doc["status"] == PENDING and doc["due"] > fields["due"]:
                doc.update({k: fields[k] for k in SURVEY_TIMING})

    # Patients and follow-up items ---------------------------------------------------------

    def _patient(self, trust: str, patient: str) -> Document:
        key = f"{trust}:{patient}"
        return self.patients.setdefault(key, {"_id": key})

    def _baseline(self, doc: Document, at: datetime, site: str, event_id: str) -> None:
        trust, _ = patient_of(doc["_id"])
        self._latest(doc, "latest_baseline", latest_key(at, trust, event_id), {"sitecode": site})

    async def apply_patients(self, changes: list[PatientChange]) -> dict[str, Document]:
        for change in changes:
            doc = self._patient(change.trustcode, change.patient_ref)
            for tp in change.collected:
                doc.setdefault("collected", {})[tp] = True
            if change.baseline is not None:
                self._baseline(doc, *change.baseline)
        return {
            c.key: copy.deepcopy(self.patients[c.key]) for c in changes if c.baseline is not None
        }

    async def collected_of(self, keys: list[str]) -> dict[str, set[str]]:
        return {k: collected_timepoints(self.patients[k]) for k in keys if k in self.patients}

    async def collected(self, trust: str, patient: str) -> set[str]:
        return collected_timepoints(self.patients.get(f"{trust}:{patient}"))

    async def write_items(
        self, items: list[tuple[str, Document]], cancels: list[tuple[str, str, str]]
    ) -> None:
        for item_id, fields in items:
            item = self.follow_ups.setdefault(
                item_id, {"_id": item_id, **fields, "status": PENDING}
            )
            if item["status"] == PENDING:
                item.update(fields)
        for item in self.follow_ups.values():
            key = (item["trustcode"], item["patient_ref"], item["timepoint"])
            if key in cancels and item["status"] in (PENDING, QUEUED):
                item["status"] = CANCELLED

    async def sites_with_due_items(self, today: str) -> dict[str, str]:
        return {
            i["sitecode"]: i["trustcode"]
            for i in self.follow_ups.values()
            if i["status"] == PENDING and i["remind_on"] <= today
        }

    async def take_items_into(self, digest: str, site: str, today: str) -> list[Document]:
        for item in self.follow_ups.values():
            if (
                item["sitecode"] == site
                and item["status"] == PENDING
                and item["remind_on"] <= today
            ):
                item.update(status=QUEUED, digest=digest)
        return [
            copy.deepcopy(i)
            for i in self.follow_ups.values()
            if i.get("digest") == digest and i["status"] == QUEUED
        ]

    async def finish_items(self, digest: str, status: str) -> None:
        for item in self.follow_ups.values():
            if item.get("digest") == digest and item["status"] == QUEUED:
                item["status"] = status

    # Reminders ----------------------------------------------------------------------------

    async def create_reminder(self, reminder_id: str, fields: Document) -> bool:
        if reminder_id in self.reminders:
            return False
        self.reminders[reminder_id] = {
            "_id": reminder_id,
            **fields,
            "status": PENDING,
            "attempts": 0,
        }
        return True

    async def claim(self, now: datetime, owner: str, lease: timedelta) -> Document | None:
        due = [
            r
            for r in self.reminders.values()
            if (r["status"] == PENDING and r["send_after"] <= now)
            or (r["status"] == SENDING and r["lease_until"] < now)
        ]
        if not due:
            return None
        doc = min(due, key=lambda r: r["send_after"])
        doc.update(
            status=SENDING, owner=owner, lease_until=now + lease, claims=doc.get("claims", 0) + 1
        )
        return copy.deepcopy(doc)

    async def finish(self, reminder_id: str, owner: str, fields: Document) -> None:
        doc = self.reminders.get(reminder_id)
        if doc is not None and doc.get("owner") == owner and doc["status"] == SENDING:
            doc.update(copy.deepcopy(fields))

    async def finished_before_outbox(self) -> list[Document]:
        return [
            copy.deepcopy(r)
            for r in self.reminders.values()
            if r.get("published") is False and r["status"] in FINISHED and "outbox" not in r
        ]

    async def queue_event(self, reminder_id: str, entries: list[Document]) -> None:
        doc = self.reminders[reminder_id]
        doc["outbox"] = copy.deepcopy(entries)
        doc.pop("published", None)

    async def reminder(self, reminder_id: str) -> Document | None:
        doc = self.reminders.get(reminder_id)
        return copy.deepcopy(doc) if doc else None

    # Delivery statuses --------------------------------------------------------------------

    async def record_delivery(self, status: Document, received_at: datetime) -> bool:
        held = self.deliveries.setdefault(status["id"], {"_id": status["id"], "history": []})
        held.update(status, received_at=received_at)
        held["history"].append({"status": status["status"], "received_at": received_at})
        reference = status.get("reference")
        doc = self.reminders.get(reference) if reference else None
        if doc is None:
            return False
        doc.update(delivery_status=status["status"], delivery_updated_at=received_at)
        _add(doc, "provider_ids", status["id"])
        return True


def _min(doc: Document, name: str, at: datetime) -> None:
    if name not in doc or at < doc[name]:
        doc[name] = at


def _max(doc: Document, name: str, at: datetime) -> None:
    if name not in doc or at > doc[name]:
        doc[name] = at


def _add(doc: Document, name: str, value: Any) -> None:
    values = doc.setdefault(name, [])
    if value not in values:
        values.append(value)


class FakeChannel:
    """Keeps what it sends; `fail_with` raises that error for every send until cleared."""

    name: ChannelName = "log"

    def __init__(self) -> None:
        self.sent: list[OutgoingMessage] = []
        self.fail_with: Exception | None = None

    async def send(self, message: OutgoingMessage) -> str | None:
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append(message)
        return f"provider-{len(self.sent)}"


class FakeContacts:
    """The enrolment service's contact lookup, from a dict; `down` makes it unreachable."""

    def __init__(self, emails: dict[str, str] | None = None) -> None:
        self.emails = dict(emails or {})
        self.down = False

    async def email_of(self, clinician_ref: str) -> str | None:
        if self.down:
            raise ContactUnavailable("enrolment contact lookup: NoRespondersError (fake)")
        return self.emails.get(clinician_ref)
