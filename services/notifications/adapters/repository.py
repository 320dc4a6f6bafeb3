"""MongoDB storage of the notifications service: clinician and patient state, the durable
schedule of reminders, and delivery statuses (kept indefinitely, unlike Notify's 7 days).

Every write is keyed by a deterministic id and is safe to repeat; a finished reminder's
notification event is stored in the reminder (the backbone's embedded outbox) in the same
update that records how it ended; a reminder is claimed
with one atomic find-and-update (pending -> sending, with an owner and a lease), so two
instances never send the same one and a crashed claimer's reminder is reclaimed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta

from pymongo import ASCENDING, ReturnDocument, UpdateMany, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from ibest.backbone.document import Document
from ibest.backbone.mongo import Write, write_in_order
from ibest.backbone.outbox import MongoOutbox
from ibest.backbone.patient_refs import MongoPatientRefs
from services.notifications.domain.batch import (
    ClinicianChange,
    PatientChange,
    collected_timepoints,
    latest_key,
    ordering_key,
)
from services.notifications.domain.status import CANCELLED, FINISHED, PENDING, QUEUED, SENDING
from services.notifications.domain.surveys import SURVEY_TIMING, SurveyWindows, answering


class MongoNotificationsRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.clinicians = db["clinicians"]
        self.patients = db["patients"]
        self.follow_ups = db["follow_up_items"]
        self.patient_refs = MongoPatientRefs(
            {"patients": self.patients, "follow_up_items": self.follow_ups},
            keyed={"patients": ":"},
        )
        self.reminders = db["reminders"]
        self.deliveries = db["delivery_statuses"]
        # A finished reminder carries its notification.sent/failed event in `outbox`.
        self.outbox = MongoOutbox(self.reminders)

    async def ensure_indexes(self) -> None:
        await self.reminders.create_index([("status", ASCENDING), ("send_after", ASCENDING)])
        await self.reminders.create_index([("recipient_ref", ASCENDING), ("family", ASCENDING)])
        await self.reminders.create_index(
            [("outbox.id", ASCENDING)], name="outbox_pending", sparse=True
        )
        await self.follow_ups.create_index(
            [("sitecode", ASCENDING), ("status", ASCENDING), ("remind_on", ASCENDING)]
        )
        await self.follow_ups.create_index(
            [("trustcode", ASCENDING), ("patient_ref", ASCENDING), ("timepoint", ASCENDING)]
        )
        await self.follow_ups.create_index([("digest", ASCENDING)])
        await self.clinicians.create_index([("completed_at", ASCENDING)])
        await self.deliveries.create_index([("reference", ASCENDING)])
        await self._order_older_documents()

    async def _order_older_documents(self) -> None:
        """Give a clinician or patient stored before its ordering key existed (only
        `latest_enrolment_at` / `baseline_time`) the key its time says (`ordering_key`:
        the time alone, which any later or equal-time event's key follows, as the older
        time comparison let it win). Then one condition on the key alone orders every
        write (`_if_latest`). Idempotent, conditional on the key being still absent, and a
        read that finds nothing once done; run at start-up before any event is handled."""
        for collection, field, time_field in (
            (self.clinicians, "latest_enrolment", "latest_enrolment_at"),
            (self.patients, "latest_baseline", "baseline_time"),
        ):
            older = collection.find(
                {field: {"$exists": False}, time_field: {"$ne": None}}, {time_field: 1}
            )
            ops = [
                UpdateOne(
                    {"_id": doc["_id"], field: {"$exists": False}},
                    {"$set": {field: ordering_key(doc[time_field])}},
                )
                async for doc in older
            ]
            if ops:
                await collection.bulk_write(ops, ordered=False)

    # Clinicians ---------------------------------------------------------------------------

    async def apply_clinicians(self, changes: list[ClinicianChange]) -> None:
        """A batch's clinician changes in one ordered bulk write (`write_in_order`: one
        document per clinician where a conditional upsert can say it): atomic $min/$max and
        conditional updates, so concurrent writers commute. The earliest enrolment starts
        the clock, the latest one decides trust and site; a completion never sets them (the
        thank-you carries the completion's own); every delivery report's (Europe/London)
        date is kept, so whichever survey window holds one is answered."""
        writes: list[Write] = []
        for change in changes:
            # No `opted_out: false` on insert: an absent flag reads as not opted out.
            update: Document = {}
            if change.mins:
                update["$min"] = change.mins
            if change.maxs:
                update["$max"] = change.maxs
            if change.report_dates:
                update["$addToSet"] = {
                    "delivery_reports": {
                        "$each": sorted(d.isoformat() for d in change.report_dates)
                    }
                }
            plain = UpdateOne({"_id": change.ref}, update, upsert=True)
            if change.latest_enrolment is None:
                if update:
                    writes.append(Write(plain))
                continue
            # One conditional upsert (a new clinician, or a later enrolment: one document
            # written); if the stored enrolment is later, the pair it stands for.
            latest, newer = _latest_enrolment(change.ref, *change.latest_enrolment)
            writes.append(
                Write(
                    UpdateOne(latest, {**update, **newer}, upsert=True),
                    ((plain,) if update else ()) + (UpdateOne(latest, newer),),
                )
            )
        if writes:
            await write_in_order(self.clinicians, writes)

    async def cancel_answered_surveys(self, answers: list[tuple[str, date]]) -> None:
        """Cancel the pending survey nudges whose window contains a report (clinician, date):
        an answer cancels what is pending. The send-time check covers any created later.
        Only a survey nudge has a window (`opens`), so the filter need not name the family."""
        ops = [
            UpdateMany(
                {
                    "recipient_ref": ref,
                    "status": PENDING,
                    "opens": {"$lte": day.isoformat()},
                    "closes": {"$gte": day.isoformat()},
                },
                {"$set": {"status": CANCELLED, "reason": "survey answered"}},
            )
            for ref, day in answers
        ]
        if ops:
            await self.reminders.bulk_write(ops, ordered=False)

    async def cancel_surveys_answered_before(self, windows: SurveyWindows) -> None:
        """After creating (or re-timing) survey nudges: cancel those a report already stored
        answers (a report handled concurrently stores its date before cancelling, so one of
        the two always sees the other; every arrival order leaves the same reminders). Only
        a report inside one of the windows just written can answer a nudge this write
        made pending; any other nudge was seen by the report's own cancel or an earlier
        pass, so no cancel that can only match nothing is sent (`answering`)."""
        answers = [
            (doc["_id"], date.fromisoformat(day))
            async for doc in self.clinicians.find(
                {"_id": {"$in": sorted(windows)}, "delivery_reports.0": {"$exists": True}},
                {"delivery_reports": 1},
            )
            for day in answering(doc["delivery_reports"], windows[doc["_id"]])
        ]
        await self.cancel_answered_surveys(answers)

    async def set_opt_out(self, ref: str, opted_out: bool, at: datetime) -> None:
        await self.clinicians.update_one(
            {"_id": ref}, {"$set": {"opted_out": opted_out, "opt_out_changed_at": at}}, upsert=True
        )

    async def clinician(self, ref: str) -> Document | None:
        return await self.clinicians.find_one({"_id": ref})

    def active_clinicians(self) -> AsyncIterator[Document]:
        """Enrolled, not completed, not opted out: those who may still need a nudge."""
        return self.clinicians.find(
            {"enrolled_at": {"$ne": None}, "completed_at": None, "opted_out": {"$ne": True}}
        )

    async def training_reminders(self) -> dict[str, list[Document]]:
        by_ref: dict[str, list[Document]] = {}
        async for doc in self.reminders.find({"family": "training"}):
            by_ref.setdefault(doc["recipient_ref"], []).append(doc)
        return by_ref

    async def cancel_clinician_reminders(self, ref: str, families: list[str], reason: str) -> None:
        await self.reminders.update_many(
            {"recipient_ref": ref, "family": {"$in": families}, "status": PENDING},
            {"$set": {"status": CANCELLED, "reason": reason}},
        )

    async def complete_training(
        self, refs: list[str], families: list[str], reason: str, thanks: list[tuple[str, Document]]
    ) -> set[str]:
        """A batch's completions: cancel the pending reminders of `families`, then create
        each thank-you once (in order; an existing one is left as it is); the ids created
        (the bulk write's reply says them: no read)."""
        ops: list[UpdateOne | UpdateMany] = [
            UpdateMany(
                {"recipient_ref": {"$in": refs}, "family": {"$in": families}, "status": PENDING},
                {"$set": {"status": CANCELLED, "reason": reason}},
            )
        ]
        ops += [
            UpdateOne({"_id": rid}, {"$setOnInsert": _new_reminder(fields)}, upsert=True)
            for rid, fields in thanks
        ]
        result = await self.reminders.bulk_write(ops, ordered=True)
        return {str(rid) for rid in (result.upserted_ids or {}).values()}

    async def retime_surveys(self, nudges: list[tuple[str, Document]]) -> None:
        """Earliest completion wins (a conditional `$set`, so any order and any two writers
        end the same): a pending nudge timed from a later completion moves to these dates."""
        if nudges:
            await self.reminders.bulk_write(
                [UpdateOne(*_earlier_survey(rid, fields)) for rid, fields in nudges],
                ordered=False,
            )

    # Patients and follow-up items ---------------------------------------------------------

    async def apply_patients(self, changes: list[PatientChange]) -> dict[str, Document]:
        """A batch's patient changes in one ordered bulk write (`write_in_order`: one
        document per patient); returns, in one read, the stored patients that had a
        baseline in the batch."""
        writes: list[Write] = []
        for change in changes:
            # The `_id` says the trust and the reference (`patient_of`): not stored again.
            collected = {f"collected.{tp}": True for tp in change.collected}
            plain = UpdateOne({"_id": change.key}, {"$set": collected}, upsert=True)
            if change.baseline is None:
                writes.append(Write(plain))
                continue
            # One conditional upsert (a new patient, or a later baseline: one document
            # written); if the stored baseline is later, what it stands for: the
            # collected follow-ups, then the baseline again (for a concurrent insert).
            latest, newer = _latest_baseline(change.key, *change.baseline)
            merged = {"$set": {**newer["$set"], **collected}}
            fallback = ((plain,) if collected else ()) + (UpdateOne(latest, newer),)
            writes.append(Write(UpdateOne(latest, merged, upsert=True), fallback))
        if not writes:
            return {}
        await write_in_order(self.patients, writes)
        keys = [c.key for c in changes if c.baseline is not None]
        if not keys:
            return {}
        return {doc["_id"]: doc async for doc in self.patients.find({"_id": {"$in": keys}})}

    async def collected_of(self, keys: list[str]) -> dict[str, set[str]]:
        """The collected follow-ups of many patients, in one read."""
        return {
            doc["_id"]: collected_timepoints(doc)
            async for doc in self.patients.find({"_id": {"$in": keys}}, {"collected": 1})
        }

    async def collected(self, trust: str, patient: str) -> set[str]:
        return collected_timepoints(await self.patients.find_one({"_id": f"{trust}:{patient}"}))

    async def write_items(
        self, items: list[tuple[str, Document]], cancels: list[tuple[str, str, str]]
    ) -> None:
        """Create each follow-up item once and move its dates only while it is pending, then
        cancel the open items of each (trust, patient, timepoint), in one ordered bulk
        write."""
        ops: list[UpdateOne | UpdateMany] = []
        for item_id, fields in items:
            ops += [
                UpdateOne(
                    {"_id": item_id}, {"$setOnInsert": {**fields, "status": PENDING}}, upsert=True
                ),
                UpdateOne({"_id": item_id, "status": PENDING}, {"$set": fields}),
            ]
        # One cancel per trust and timepoint, its patients listed: the same items as one per
        # (trust, patient, timepoint), in a fraction of the bytes.
        patients: dict[tuple[str, str], list[str]] = {}
        for trust, patient, timepoint in cancels:
            patients.setdefault((trust, timepoint), []).append(patient)
        ops += [
            UpdateMany(
                _open_items(trust, {"$in": sorted(set(refs))} if len(refs) > 1 else refs[0], tp),
                {"$set": {"status": CANCELLED}},
            )
            for (trust, tp), refs in patients.items()
        ]
        if ops:
            await self.follow_ups.bulk_write(ops, ordered=True)

    async def sites_with_due_items(self, today: str) -> dict[str, str]:
        """Site -> trust for every site with a pending item due on or before `today`."""
        sites: dict[str, str] = {}
        async for doc in self.follow_ups.find(
            {"status": PENDING, "remind_on": {"$lte": today}}, {"sitecode": 1, "trustcode": 1}
        ):
            sites[doc["sitecode"]] = doc["trustcode"]
        return sites

    async def take_items_into(self, digest: str, site: str, today: str) -> list[Document]:
        """Items of a digest: those already in it plus any now due; caller holds its claim."""
        await self.follow_ups.update_many(
            {"sitecode": site, "status": PENDING, "remind_on": {"$lte": today}},
            {"$set": {"status": QUEUED, "digest": digest}},
        )
        return [d async for d in self.follow_ups.find({"digest": digest, "status": QUEUED})]

    async def finish_items(self, digest: str, status: str) -> None:
        await self.follow_ups.update_many(
            {"digest": digest, "status": QUEUED}, {"$set": {"status": status}}
        )

    # Reminders ----------------------------------------------------------------------------

    async def create_reminder(self, reminder_id: str, fields: Document) -> bool:
        """Schedule a reminder once; False when it already existed (any status)."""
        try:
            result = await self.reminders.update_one(
                {"_id": reminder_id}, {"$setOnInsert": _new_reminder(fields)}, upsert=True
            )
        except DuplicateKeyError:
            return False
        return result.upserted_id is not None

    async def claim(self, now: datetime, owner: str, lease: timedelta) -> Document | None:
        """Atomically take one due reminder (or one whose claimer's lease ran out)."""
        return await self.reminders.find_one_and_update(
            {
                "$or": [
                    {"status": PENDING, "send_after": {"$lte": now}},
                    {"status": SENDING, "lease_until": {"$lt": now}},
                ]
            },
            {
                "$set": {"status": SENDING, "owner": owner, "lease_until": now + lease},
                "$inc": {"claims": 1},
            },
            sort=[("send_after", ASCENDING)],
            return_document=ReturnDocument.AFTER,
        )

    async def finish(self, reminder_id: str, owner: str, fields: Document) -> None:
        """Record the outcome of a claimed reminder (sent, failed, cancelled, or pending)."""
        await self.reminders.update_one(
            {"_id": reminder_id, "owner": owner, "status": SENDING}, {"$set": fields}
        )

    async def finished_before_outbox(self) -> list[Document]:
        """Reminders finished by a version before the outbox (flag `published`) whose event
        was not published yet."""
        return [
            d
            async for d in self.reminders.find(
                {
                    "published": False,
                    "status": {"$in": list(FINISHED)},
                    "outbox": {"$exists": False},
                }
            )
        ]

    async def queue_event(self, reminder_id: str, entries: list[Document]) -> None:
        """Put such a reminder's event in its outbox (and drop the old flag)."""
        await self.reminders.update_one(
            {"_id": reminder_id}, {"$set": {"outbox": entries}, "$unset": {"published": ""}}
        )

    async def reminder(self, reminder_id: str) -> Document | None:
        return await self.reminders.find_one({"_id": reminder_id})

    # Delivery statuses --------------------------------------------------------------------

    async def record_delivery(self, status: Document, received_at: datetime) -> bool:
        """Store a Notify callback and update its reminder; False for an unknown reference."""
        await self.deliveries.update_one(
            {"_id": status["id"]},
            {
                "$set": {**status, "received_at": received_at},
                "$push": {"history": {"status": status["status"], "received_at": received_at}},
            },
            upsert=True,
        )
        reference = status.get("reference")
        if not reference:
            return False
        result = await self.reminders.update_one(
            {"_id": reference},
            {
                "$set": {"delivery_status": status["status"], "delivery_updated_at": received_at},
                "$addToSet": {"provider_ids": status["id"]},
            },
        )
        return result.matched_count > 0

    # Retention ----------------------------------------------------------------------------

    async def purge_expired(self, now: datetime, retention: timedelta) -> int:
        """Remove the records no rule reads any more once `retention` has passed; returns
        how many. What stays is what keeps "once only" true (see README.md, Retention):
        training start/continue reminders (the cap of 3 counts them), anything pending or
        in flight, and follow-up items whose window has not closed."""
        cutoff = now - retention
        removed = 0
        removed += (
            await self.deliveries.delete_many({"received_at": {"$lt": cutoff}})
        ).deleted_count
        # Thank-yous (never re-created for a completion older than thanks_max_age_days,
        # at most the retention) and site digests (one per site and day) once finished
        # and published, or cancelled.
        removed += (
            await self.reminders.delete_many(
                {
                    "family": {"$in": ["thanks", "follow_up"]},
                    "$or": [
                        {"status": {"$in": list(FINISHED)}, "published": True},
                        {"status": CANCELLED},
                    ],
                    "$and": [
                        {
                            "$or": [
                                {"finished_at": {"$lt": cutoff}},
                                {"finished_at": None, "created_at": {"$lt": cutoff}},
                            ]
                        }
                    ],
                }
            )
        ).deleted_count
        # Follow-up items whose window closed `retention` ago: a closed window is never
        # reminded, so a replayed baseline does not schedule them again.
        closed_before = (cutoff.date()).isoformat()
        removed += (
            await self.follow_ups.delete_many(
                {"status": {"$nin": [PENDING, QUEUED]}, "closes": {"$lt": closed_before}}
            )
        ).deleted_count
        return removed


def _earlier_survey(reminder_id: str, fields: Document) -> tuple[Document, Document]:
    """Filter and update moving a pending survey nudge to `fields`' timing if it is earlier
    (ISO dates order as strings)."""
    return (
        {"_id": reminder_id, "status": PENDING, "due": {"$gt": fields["due"]}},
        {"$set": {k: fields[k] for k in SURVEY_TIMING}},
    )


def _if_latest(key: str, field: str, latest: str, values: Document) -> tuple[Document, Document]:
    """Filter and update setting `values` only if `latest` orders after the stored key (or
    none is stored: `$not` matches a document without the field). The key holds the time
    too (`latest_time`), so no time field is written beside it; a document from before
    the key existed was given one at start-up (`_order_older_documents`)."""
    return (
        {"_id": key, field: {"$not": {"$gte": latest}}},
        {"$set": {**values, field: latest}},
    )


def _latest_enrolment(
    ref: str, at: datetime, trust: str, site: str, event_id: str
) -> tuple[Document, Document]:
    """The latest enrolment (by `latest_key`: time, trust, event id) decides the
    clinician's trust and site."""
    return _if_latest(
        ref,
        "latest_enrolment",
        latest_key(at, trust, event_id),
        {"trustcode": trust, "sitecode": site},
    )


def _latest_baseline(key: str, at: datetime, site: str, event_id: str) -> tuple[Document, Document]:
    """The latest baseline (by `latest_key`: time, trust, event id) decides the follow-up
    windows (a later one corrects an earlier one)."""
    trust = key.split(":", 1)[0]
    return _if_latest(key, "latest_baseline", latest_key(at, trust, event_id), {"sitecode": site})


def _open_items(trust: str, patient: str | Document, timepoint: str) -> Document:
    """The pending or queued items of a trust's patient (or patients: `{"$in": [...]}`) at
    a timepoint."""
    return {
        "trustcode": trust,
        "patient_ref": patient,
        "timepoint": timepoint,
        "status": {"$in": [PENDING, QUEUED]},
    }


def _new_reminder(fields: Document) -> Document:
    return {**fields, "status": PENDING, "attempts": 0}
