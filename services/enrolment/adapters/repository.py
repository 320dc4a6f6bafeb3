"""MongoDB storage of clinician records: collection `clinicians`, one document per clinician.

A document is `{_id: clinician_ref, rev, facts, contact, emitted, outbox, state}`. Every
change is one compare-and-set on `rev` (read, fold, replace if unchanged), so the facts, the
folded state and the outbox of derived events are always stored together without a
multi-document transaction. `state` is a copy of the fold for operators and queries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, InsertOne, ReplaceOne, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from ibest.backbone.mongo import only_duplicate_keys
from services.enrolment.domain.clinician import ClinicianState, Fact
from services.enrolment.domain.record import (
    Applied,
    ClinicianRecord,
    Contact,
    OutboxEntry,
    apply_event,
)
from shared.catalogue import Catalogue
from shared.envelope import AnyEvent

Document = dict[str, Any]
CLINICIANS = "clinicians"
SEEN_EVENTS = "seen_events"  # the backbone's EventLedger collection
CAS_ATTEMPTS = 20


class ConcurrentUpdateError(RuntimeError):
    """Another writer kept changing the record; transient, so the event is redelivered."""


@dataclass(frozen=True)
class Erasure:
    clinician_ref: str
    found: bool
    email_removed: bool
    record_removed: bool
    seen_events_removed: int
    state: ClinicianState | None


def to_doc(record: ClinicianRecord, state: ClinicianState, rev: int) -> Document:
    doc: Document = {
        "_id": record.clinician_ref,
        "rev": rev,
        "facts": [f.model_dump(mode="json") for f in record.facts],
        "emitted": sorted(record.emitted),
        "outbox": [o.model_dump() for o in record.outbox],
        "state": state.model_dump(mode="json"),
    }
    if record.contact is not None:
        doc["contact"] = record.contact.model_dump(mode="json")
    return doc


def from_doc(doc: Document) -> ClinicianRecord:
    contact = doc.get("contact")
    return ClinicianRecord(
        clinician_ref=doc["_id"],
        facts=tuple(Fact.model_validate(f) for f in doc.get("facts", [])),
        contact=Contact.model_validate(contact) if contact else None,
        emitted=frozenset(doc.get("emitted", [])),
        outbox=tuple(OutboxEntry.model_validate(o) for o in doc.get("outbox", [])),
    )


class ClinicianRepository:
    def __init__(self, db: AsyncDatabase[Document], catalogue: Catalogue) -> None:
        self._db = db
        self._clinicians: AsyncCollection[Document] = db[CLINICIANS]
        self._catalogue = catalogue

    async def create_indexes(self) -> None:
        # The republish loop looks for documents with a pending outbox.
        await self._clinicians.create_index([("outbox.id", ASCENDING)], name="outbox_id")
        # Operators look clinicians up by where they count.
        await self._clinicians.create_index(
            [("state.enrolment.trustcode", ASCENDING), ("state.enrolment.sitecode", ASCENDING)],
            name="trust_site",
        )

    async def apply(self, event: AnyEvent) -> tuple[Applied, tuple[OutboxEntry, ...]]:
        """Store the event's effect; return it with the record's pending outbox."""
        ref = event.data.clinician_ref
        for _ in range(CAS_ATTEMPTS):
            doc = await self._clinicians.find_one({"_id": ref})
            applied = apply_event(from_doc(doc) if doc else None, event, self._catalogue)
            if not applied.changed:
                return applied, applied.record.outbox
            if doc is None:
                try:
                    await self._clinicians.insert_one(to_doc(applied.record, applied.state, 1))
                except DuplicateKeyError:
                    continue
            else:
                result = await self._clinicians.replace_one(
                    {"_id": ref, "rev": doc["rev"]},
                    to_doc(applied.record, applied.state, doc["rev"] + 1),
                )
                if result.matched_count == 0:
                    continue
            return applied, applied.record.outbox
        raise ConcurrentUpdateError(f"clinician {ref}: record kept changing; will retry")

    async def apply_many(self, events: list[AnyEvent]) -> list[tuple[str, tuple[OutboxEntry, ...]]]:
        """Store a batch's effects in two round trips; return each touched record's outbox.

        One `$in` read, the events applied in memory in batch order per clinician (exactly
        what applying them one by one does), then one unordered bulk write of inserts and
        `rev`-guarded replaces. A lost race (a replace that matched nothing, an insert of an
        existing `_id`) raises ConcurrentUpdateError after the others are written: the
        caller then applies each event one by one, which skips the stored ones and retries
        the rest.
        """
        by_ref: dict[str, list[AnyEvent]] = {}
        for event in events:
            by_ref.setdefault(event.data.clinician_ref, []).append(event)
        docs = {doc["_id"]: doc async for doc in
                self._clinicians.find({"_id": {"$in": list(by_ref)}})}
        writes: list[InsertOne[Document] | ReplaceOne[Document]] = []
        outboxes: list[tuple[str, tuple[OutboxEntry, ...]]] = []
        for ref, mine in by_ref.items():
            doc = docs.get(ref)
            record = from_doc(doc) if doc else None
            last: Applied | None = None
            for event in mine:
                applied = apply_event(record, event, self._catalogue)
                record = applied.record
                if applied.changed:
                    last = applied
            assert record is not None
            if last is not None:
                # `last` is the final record: later events of the batch changed nothing.
                if doc is None:
                    writes.append(InsertOne(to_doc(last.record, last.state, 1)))
                else:
                    writes.append(ReplaceOne({"_id": ref, "rev": doc["rev"]},
                                             to_doc(last.record, last.state, doc["rev"] + 1)))
            outboxes.append((ref, record.outbox))
        if writes:
            try:
                result = await self._clinicians.bulk_write(writes, ordered=False)
            except BulkWriteError as exc:
                if only_duplicate_keys(exc):
                    raise ConcurrentUpdateError(
                        f"{len(exc.details['writeErrors'])} clinician record(s) created "
                        "concurrently") from exc
                raise
            if result.inserted_count + result.matched_count != len(writes):
                raise ConcurrentUpdateError("clinician record(s) changed concurrently")
        return outboxes

    async def clear_outboxes(self, entries: list[tuple[str, str]]) -> None:
        """`clear_outbox` for many (clinician_ref, entry id) pairs in one round trip."""
        if entries:
            await self._clinicians.bulk_write(
                [UpdateOne({"_id": ref, "outbox.id": entry_id},
                           {"$pull": {"outbox": {"id": entry_id}}, "$inc": {"rev": 1}})
                 for ref, entry_id in entries], ordered=False)

    async def clear_outbox(self, clinician_ref: str, entry_id: str) -> None:
        """Forget a derived event once the stream has it (stored or a known duplicate)."""
        await self._clinicians.update_one(
            {"_id": clinician_ref, "outbox.id": entry_id},
            {"$pull": {"outbox": {"id": entry_id}}, "$inc": {"rev": 1}},
        )

    async def pending_outboxes(self, limit: int = 500) -> list[tuple[str, list[OutboxEntry]]]:
        cursor = self._clinicians.find({"outbox.id": {"$exists": True}},
                                       {"outbox": 1}).limit(limit)
        return [(doc["_id"], [OutboxEntry.model_validate(o) for o in doc["outbox"]])
                async for doc in cursor]

    async def state(self, clinician_ref: str) -> ClinicianState | None:
        doc = await self._clinicians.find_one({"_id": clinician_ref}, {"state": 1})
        return ClinicianState.model_validate(doc["state"]) if doc else None

    async def contact(self, clinician_ref: str) -> tuple[bool, str | None]:
        """Whether the clinician is known, and their contact email if they have one."""
        doc = await self._clinicians.find_one({"_id": clinician_ref}, {"contact.email": 1})
        if not doc:
            return False, None
        email = (doc.get("contact") or {}).get("email")
        return True, str(email) if email else None

    async def rename_fact(self, clinician_ref: str, old_id: str, new_id: str) -> None:
        """Give a stored fact a new event id (its redacted copy's), bumping `rev`."""
        await self._clinicians.update_one(
            {"_id": clinician_ref, "facts.id": old_id},
            {"$set": {"facts.$.id": new_id}, "$inc": {"rev": 1}},
        )

    async def erase(self, clinician_ref: str, *, record: bool) -> Erasure:
        """Remove the contact email and, with `record`, the whole record and its event ids."""
        doc = await self._clinicians.find_one({"_id": clinician_ref})
        if doc is None:
            return Erasure(clinician_ref, False, False, False, 0, None)
        state = ClinicianState.model_validate(doc["state"])
        had_email = bool((doc.get("contact") or {}).get("email"))
        if record:
            ids = [f["id"] for f in doc.get("facts", [])]
            seen = await self._db[SEEN_EVENTS].delete_many({"_id": {"$in": ids}}) if ids else None
            await self._clinicians.delete_one({"_id": clinician_ref})
            return Erasure(clinician_ref, True, had_email, True,
                           seen.deleted_count if seen else 0, state)
        if doc.get("contact"):
            await self._clinicians.update_one(
                {"_id": clinician_ref},
                {"$set": {"contact.email": None, "contact.erased": True}, "$inc": {"rev": 1}},
            )
        return Erasure(clinician_ref, True, had_email, False, 0, state)
