"""MongoDB storage of clinician records: collection `clinicians`, one document per clinician.

A document is `{_id: clinician_ref, rev, facts, contact, derived, outbox, state}`. Every
change is one compare-and-set on `rev` (the application reads, folds, and saves if
unchanged), so the facts and the outbox of derived events (the backbone's embedded outbox)
are always stored together without a multi-document transaction. `state` keeps the part of
the fold operators look clinicians up by (`STATE_KEPT`); the whole state is folded from the
facts whenever it is read, so a module event does not rewrite a copy of every module.
"""

from __future__ import annotations

from datetime import datetime

from pymongo import ASCENDING, InsertOne, ReplaceOne, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from ibest.backbone.concurrency import ConcurrentUpdate
from ibest.backbone.document import Document
from ibest.backbone.ledger import SEEN_EVENTS, erased_ids
from ibest.backbone.mongo import only_duplicate_keys, update_of
from ibest.backbone.outbox import MongoOutbox, read_entries, stored_entries
from services.enrolment.domain.clinician import ClinicianState, Fact
from services.enrolment.domain.record import ClinicianRecord, Contact, Emitted
from services.enrolment.ports import Change, Erasure, HeldContact, Stored

CLINICIANS = "clinicians"
STATE_KEPT = frozenset({"status", "enrolment", "started_at", "completed_at"})
"""The fields of the fold a document keeps (issue 26): where the clinician counts and how
far they got, which change a few times in a clinician's life. Modules and reports, which
change with most events, are folded from the facts on read. Documents written before keep
the whole fold until their next write drops the rest."""


def to_doc(record: ClinicianRecord, state: ClinicianState, rev: int) -> Document:
    """The stored record. Each fact without its `data.clinician_ref` (the document's `_id`);
    each derived event's last revision once, in `derived` (`emitted`, the bare list of its
    keys, is only read, from records written before revisions). What a write carries is
    what changed (`update_of`), so nothing is stored twice."""
    doc: Document = {
        "_id": record.clinician_ref,
        "rev": rev,
        "facts": [_stored_fact(f) for f in record.facts],
        "derived": [{"key": key, **e.model_dump()} for key, e in sorted(record.emitted.items())],
        "outbox": stored_entries(record.outbox),
        "state": state.model_dump(mode="json", include=set(STATE_KEPT)),
    }
    if record.contact is not None:
        doc["contact"] = record.contact.model_dump(mode="json")
    return doc


def _stored_fact(fact: Fact) -> Document:
    stored = fact.model_dump(mode="json")
    stored["data"] = {k: v for k, v in stored["data"].items() if k != "clinician_ref"}
    return stored


def _fact(stored: Document, clinician_ref: str) -> Fact:
    """A stored fact, in either shape (with `data.clinician_ref`, as written before issue
    26, or without)."""
    return Fact.model_validate(
        {**stored, "data": {"clinician_ref": clinician_ref, **stored.get("data", {})}}
    )


def from_doc(doc: Document) -> ClinicianRecord:
    contact = doc.get("contact")
    return ClinicianRecord(
        clinician_ref=doc["_id"],
        facts=tuple(_fact(f, doc["_id"]) for f in doc.get("facts", [])),
        contact=Contact.model_validate(contact) if contact else None,
        emitted=emitted_of(doc),
        outbox=read_entries(doc.get("outbox", [])),
    )


def emitted_of(doc: Document) -> dict[str, Emitted]:
    """`derived` holds each derived event's last revision; a key only in `emitted` was
    emitted before revisions were recorded (revision 1, content unknown)."""
    emitted = {key: Emitted(revision=1) for key in doc.get("emitted", [])}
    for d in doc.get("derived", []):
        emitted[d["key"]] = Emitted(revision=d["revision"], signature=d["signature"])
    return emitted


class MongoClinicianRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._db = db
        self._clinicians: AsyncCollection[Document] = db[CLINICIANS]
        # Stamped (the backbone's outbox): a record's next write drops what was published.
        # Clearing a document of before (no stamp) bumps `rev`, so a writer holding an
        # older copy cannot restore the entry.
        self.outbox = MongoOutbox(db[CLINICIANS], on_clear={"$inc": {"rev": 1}}, stamped=True)
        self._read: dict[str, Document] = {}
        """The documents the last `load_many` read, so saving them writes what changed."""

    async def create_indexes(self) -> None:
        # The outbox relay looks for documents with a pending outbox.
        await self._clinicians.create_index([("outbox.id", ASCENDING)], name="outbox_id")
        # Its background pass reads the records stamped since its mark, in stamp order.
        await self._clinicians.create_index(
            [("outbox_at", ASCENDING), ("_id", ASCENDING)], name="outbox_stamped", sparse=True
        )
        # Operators look clinicians up by where they count.
        await self._clinicians.create_index(
            [("state.enrolment.trustcode", ASCENDING), ("state.enrolment.sitecode", ASCENDING)],
            name="trust_site",
        )

    async def load_many(self, clinician_refs: list[str]) -> dict[str, Stored]:
        """Several records in one `$in` read; absent ones are left out."""
        self._read = {
            doc["_id"]: doc async for doc in self._clinicians.find({"_id": {"$in": clinician_refs}})
        }
        return {ref: self._stored(doc) for ref, doc in self._read.items()}

    def _stored(self, doc: Document) -> Stored:
        """A record as read, its outbox without what this process published (so the next
        write drops those, and only the others are published again)."""
        record = from_doc(doc)
        kept = tuple(self.outbox.kept(record.outbox))
        if kept != record.outbox:
            record = record.model_copy(update={"outbox": kept})
        return Stored(record, doc["rev"])

    def _doc_of(self, change: Change, rev: int, read: Document | None) -> Document:
        """The record's document: its outbox stamped when it gains an entry (the sweep
        looks for it), left out when empty."""
        doc = to_doc(change.record, change.state, rev)
        if not doc["outbox"]:
            del doc["outbox"]
            return doc
        before = {o.get("id") for o in (read or {}).get("outbox") or []}
        if read is not None and "outbox_at" in read and {o["id"] for o in doc["outbox"]} <= before:
            doc["outbox_at"] = read["outbox_at"]
        else:
            doc["outbox_at"] = self.outbox.stamp()
        return doc

    async def save_many(self, changes: list[Change]) -> None:
        """One unordered bulk write of inserts and `rev`-guarded replaces; a lost race (a
        replace that matched nothing, an insert of an existing `_id`) raises
        ConcurrentUpdate after the others are written."""
        writes = [self._write_of(c) for c in changes]
        if not writes:
            return
        try:
            result = await self._clinicians.bulk_write(writes, ordered=False)
        except BulkWriteError as exc:
            if only_duplicate_keys(exc):
                raise ConcurrentUpdate(
                    f"{len(exc.details['writeErrors'])} clinician record(s) created concurrently"
                ) from exc
            raise
        if result.inserted_count + result.matched_count != len(writes):
            raise ConcurrentUpdate("clinician record(s) changed concurrently")

    def _write_of(self, c: Change) -> InsertOne[Document] | ReplaceOne[Document] | UpdateOne:
        """An insert, or a `rev`-guarded write of what changed since `load_many` read the
        record (its new facts pushed, changed fields set), else a whole replace."""
        ref = c.record.clinician_ref
        if c.rev is None:
            return InsertOne(self._doc_of(c, 1, None))
        read = self._read.pop(ref, None)
        if read is None or read.get("rev") != c.rev:
            return ReplaceOne({"_id": ref, "rev": c.rev}, self._doc_of(c, c.rev + 1, None))
        return UpdateOne(
            {"_id": ref, "rev": c.rev}, update_of(read, self._doc_of(c, c.rev + 1, read))
        )

    async def record(self, clinician_ref: str) -> ClinicianRecord | None:
        doc = await self._clinicians.find_one({"_id": clinician_ref})
        return from_doc(doc) if doc else None

    async def contact(self, clinician_ref: str) -> tuple[bool, str | None]:
        """Whether the clinician is known, and their contact email if they have one."""
        doc = await self._clinicians.find_one({"_id": clinician_ref}, {"contact.email": 1})
        if not doc:
            return False, None
        email = (doc.get("contact") or {}).get("email")
        return True, str(email) if email else None

    async def rename_fact(
        self, clinician_ref: str, trustcode: str, old_id: str, new_id: str
    ) -> None:
        """Give a stored fact (of `trustcode`'s event `old_id`: ids belong to their trust) a
        new event id (its redacted copy's), bumping `rev`."""
        await self._clinicians.update_one(
            {"_id": clinician_ref, "facts": {"$elemMatch": {"id": old_id, "trustcode": trustcode}}},
            {"$set": {"facts.$.id": new_id}, "$inc": {"rev": 1}},
        )

    async def erase(self, clinician_ref: str, *, record: bool) -> Erasure:
        """Remove the contact email and, with `record`, the whole record and its event ids."""
        doc = await self._clinicians.find_one({"_id": clinician_ref})
        if doc is None:
            return Erasure(clinician_ref, False, False, False, 0)
        had_email = bool((doc.get("contact") or {}).get("email"))
        if record:
            facts = doc.get("facts", [])
            # Every shape the ledger may hold them in (`erased_ids`: binary, text, bare).
            ids = erased_ids((f["trustcode"], f["id"]) for f in facts)
            seen = await self._db[SEEN_EVENTS].delete_many({"_id": {"$in": ids}}) if ids else None
            await self._clinicians.delete_one({"_id": clinician_ref})
            return Erasure(clinician_ref, True, had_email, True, seen.deleted_count if seen else 0)
        if doc.get("contact"):
            await self._clinicians.update_one(
                {"_id": clinician_ref},
                {"$set": {"contact.email": None, "contact.erased": True}, "$inc": {"rev": 1}},
            )
        return Erasure(clinician_ref, True, had_email, False, 0)

    async def held_contacts(self) -> list[HeldContact]:
        held = []
        async for doc in self._clinicians.find(
            {"contact.email": {"$type": "string"}}, {"rev": 1, "facts.time": 1}
        ):
            times = tuple(
                datetime.fromisoformat(f["time"]) if isinstance(f["time"], str) else f["time"]
                for f in doc.get("facts", [])
            )
            held.append(HeldContact(doc["_id"], doc["rev"], times))
        return held

    async def erase_contacts(self, held: list[HeldContact]) -> int:
        """One `rev`-guarded update per record, in one round trip: a record stored meanwhile
        is not overwritten."""
        if not held:
            return 0
        result = await self._clinicians.bulk_write(
            [
                UpdateOne(
                    {"_id": h.clinician_ref, "rev": h.rev},
                    {"$set": {"contact.email": None, "contact.erased": True}, "$inc": {"rev": 1}},
                )
                for h in held
            ],
            ordered=False,
        )
        return result.modified_count

    async def clinician_refs(self) -> list[str]:
        return [doc["_id"] async for doc in self._clinicians.find({}, {"_id": 1})]

    async def erased_contacts(self) -> set[str]:
        """Clinicians whose contact email was erased (by request or by retention)."""
        return {
            doc["_id"] async for doc in self._clinicians.find({"contact.erased": True}, {"_id": 1})
        }
