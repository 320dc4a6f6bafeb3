"""MongoDB storage: every assessment (for audit), one document per patient, classes.

Collections (database `<prefix>_outcomes`):
- `assessments`: every patient.assessed received, `_id` = `<trust>:<event id>` (the audit
  history; ids belong to their trust, so two trusts' assessments with one id are both kept);
  the event id is not repeated in a field, nor an absent `class_id` stored as null
  (`stored_assessment`; documents of the older shape hold both and are read alike).
- `patients`: `_id` = `<trust>/<patient_ref>` (not repeated in fields since issue 26, no
  `updated_at`, which nothing read; older documents keep theirs, unread), the winners,
  revisions (absent while there are none) and the embedded backbone
  outbox of outcome.recorded events not yet confirmed published; `version` guards every
  write (compare-and-set), so concurrent handlers never lose a correction or a revision.
  A winner is stored without what its document already says (trust, patient, the
  timepoint it is keyed by) and the outcomes are not stored (each is computed from the
  winners and revisions; its event, in the outbox, carries it): what a write carries is
  what changed, once (`stored_state`, `state_of`). Documents of the older shape (full
  winners, an `outcomes` copy) are read alike and rewritten in the new one when next
  changed.
- `classes`: per (trustcode, class_id) the latest class.started.
"""

from __future__ import annotations

from datetime import datetime

from pymongo import ASCENDING, IndexModel, InsertOne, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from ibest.backbone.concurrency import ConcurrentUpdate
from ibest.backbone.document import Document
from ibest.backbone.mongo import only_duplicate_keys, update_of
from ibest.backbone.outbox import MongoOutbox, read_entries, stored_entries
from ibest.backbone.outbox_values import OutboxEntry
from ibest.backbone.patient_refs import MongoPatientRefs
from services.outcomes.domain.assessments import Assessment
from services.outcomes.domain.outcomes import PatientState
from services.outcomes.ports import Commit, Loaded, patient_key


class MongoOutcomesRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._assessments = db["assessments"]
        self._patients = db["patients"]
        self._classes = db["classes"]
        # Stamped (the backbone's outbox): a patient's next write drops what was published.
        self.outbox = MongoOutbox(db["patients"], stamped=True)
        self.patient_refs = MongoPatientRefs(
            {"assessments": self._assessments, "patients": self._patients},
            keyed={"patients": "/"},
        )
        self._read: dict[str, Document] = {}
        """The patient documents the last `load_many` read, so a commit writes what changed."""

    async def create_indexes(self) -> None:
        await self._assessments.create_indexes(
            [
                IndexModel(
                    [
                        ("trustcode", ASCENDING),
                        ("patient_ref", ASCENDING),
                        ("timepoint", ASCENDING),
                        ("time", ASCENDING),
                    ],
                    name="by_patient",
                ),
                IndexModel([("trustcode", ASCENDING), ("class_id", ASCENDING)], name="by_class"),
            ]
        )
        await self._patients.create_indexes(
            [
                # The outbox relay looks for patients with pending events.
                IndexModel([("outbox.id", ASCENDING)], name="outbox_pending", sparse=True),
                # ... and those stamped since its mark, in stamp order (the stamped outbox).
                IndexModel(
                    [("outbox_at", ASCENDING), ("_id", ASCENDING)],
                    name="outbox_stamped",
                    sparse=True,
                ),
            ]
        )
        await self._classes.create_indexes(
            [
                IndexModel([("trustcode", ASCENDING), ("sitecode", ASCENDING)], name="by_site"),
            ]
        )

    # Assessments (audit history)

    async def record_assessments(self, assessments: list[Assessment], received: datetime) -> None:
        """Keep each assessment, in one unordered insert: one already kept (a
        redelivery) fails alone with a duplicate key and stays as it was. An insert carries
        the document alone, where an upsert wrapped it in a filter and an update."""
        unique = {_assessment_key(a): a for a in assessments}
        if not unique:
            return
        try:
            await self._assessments.insert_many(
                [
                    {"_id": key, **stored_assessment(a), "received_at": received}
                    for key, a in unique.items()
                ],
                ordered=False,
            )
        except BulkWriteError as exc:
            if not only_duplicate_keys(exc):
                raise

    async def history(self, trustcode: str, patient_ref: str) -> list[Assessment]:
        cursor = self._assessments.find({"trustcode": trustcode, "patient_ref": patient_ref})
        found = [assessment_of(doc) async for doc in cursor]
        return sorted(found, key=lambda a: (a.timepoint.value, a.rank))

    # Patients

    async def load(self, trustcode: str, patient_ref: str) -> tuple[PatientState, int | None]:
        """The patient's state and its version (None when the patient is new)."""
        doc = await self._patients.find_one({"_id": patient_key(trustcode, patient_ref)})
        if doc is None:
            return PatientState(), None
        return state_of(doc, trustcode, patient_ref), int(doc["version"])

    async def load_many(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], Loaded]:
        """Several patients in one query; those not stored yet come back new (version None)."""
        found: dict[tuple[str, str], Loaded] = dict.fromkeys(keys, Loaded(PatientState(), None, []))
        ids = sorted(patient_key(t, r) for t, r in keys)
        self._read = {}
        async for doc in self._patients.find({"_id": {"$in": ids}}):
            self._read[doc["_id"]] = doc
            key = patient_of(doc["_id"])
            found[key] = Loaded(
                state_of(doc, *key),
                int(doc["version"]),
                self.outbox.kept(_entries(doc)),
            )
        return found

    async def commit_many(self, commits: list[Commit]) -> None:
        """Store every commit in one bulk write; ConcurrentUpdate if any patient had moved
        on (another writer got there first: its version changed, or it was inserted)."""
        if not commits:
            return
        ops: list[InsertOne[Document] | UpdateOne] = [
            InsertOne(_new_patient(c, self.outbox.stamp()))
            if c.version is None
            else UpdateOne(*self._compare_and_set(c, self._read.pop(_key(c), None)))
            for c in commits
        ]
        try:
            result = await self._patients.bulk_write(ops, ordered=False)
        except BulkWriteError as exc:
            if only_duplicate_keys(exc):
                raise ConcurrentUpdate("a patient of the batch changed under us") from exc
            raise
        updates = sum(1 for c in commits if c.version is not None)
        if result.matched_count != updates:
            raise ConcurrentUpdate("a patient of the batch changed under us")

    def _compare_and_set(self, c: Commit, read: Document | None) -> tuple[Document, Document]:
        """Filter and update writing `c` only if the patient is still at `c.version`: the
        state's changed fields only when `read` is the document as stored at that version
        (every change of the state moves the version), else the whole state. The outbox
        becomes what it held less what this process published, plus the commit's entries
        (stamped); without `read`, the commit's entries are pushed."""
        assert c.version is not None
        state = stored_state(c.state)
        always = {"version": c.version + c.changes}
        if read is None or read.get("version") != c.version:
            update: Document = {"$set": {**state, **always}, "$unset": {"outcomes": ""}}
            if c.outbox:
                update["$push"] = {"outbox": {"$each": _outbox(c.outbox)}}
                update["$set"]["outbox_at"] = self.outbox.stamp()
            return {"_id": _key(c), "version": c.version}, update
        update = update_of({k: read[k] for k in state if k in read}, state, always)
        unsets = ["outcomes"] if "outcomes" in read else []  # the older shape's copy
        was = _entries(read)
        outbox = [*self.outbox.kept(was), *c.outbox]
        if c.outbox:
            update.setdefault("$set", {}).update(
                {"outbox": _outbox(outbox), "outbox_at": self.outbox.stamp()}
            )
        elif not outbox and "outbox" in read:
            unsets += ["outbox", "outbox_at"]
        elif len(outbox) < len(was):
            update.setdefault("$set", {})["outbox"] = _outbox(outbox)
        if unsets:
            update.setdefault("$unset", {}).update(dict.fromkeys(unsets, ""))
        return {"_id": _key(c), "version": c.version}, update

    # Classes

    async def record_classes(self, docs: list[Document]) -> None:
        """Keep the latest class.started of each class (by time, then event id), in one bulk
        write (one event is a batch of one)."""
        latest: dict[tuple[str, str], Document] = {}
        for doc in docs:
            key = (doc["trustcode"], doc["class_id"])
            if key not in latest or _rank(doc) > _rank(latest[key]):
                latest[key] = doc
        if not latest:
            return
        try:
            await self._classes.bulk_write(
                [UpdateOne(*_if_newer(doc), upsert=True) for doc in latest.values()], ordered=False
            )
        except BulkWriteError as exc:
            if not only_duplicate_keys(exc):  # a newer (or the same) start is stored
                raise

    async def classes(self, trustcode: str, class_ids: set[str]) -> dict[str, Document]:
        query = {"trustcode": trustcode, "class_id": {"$in": sorted(class_ids)}}
        cursor = self._classes.find(query, {"_id": 0})
        return {doc["class_id"]: doc async for doc in cursor}


def _outbox(entries: list[OutboxEntry]) -> list[Document]:
    return stored_entries(entries)


def _entries(doc: Document) -> list[OutboxEntry]:
    return list(read_entries(doc.get("outbox") or []))


def stored_state(state: PatientState) -> Document:
    """What a patient document keeps of the state: each winner without the fields its
    `_id` says (trustcode, patient_ref) or its key says (timepoint), and without its
    `class_id` (the audit history keeps it, and only the patient view shows it, which
    reads that history: `OutcomesService.patient`); the revisions (none: absent); not the
    outcomes, which the winners and revisions determine (`PatientState.outcomes`)."""
    doc = state.to_doc()
    return {
        "winners": {
            tp: {k: v for k, v in a.items() if k not in _NOT_KEPT and v is not None}
            for tp, a in doc["winners"].items()
        },
        **({"revisions": doc["revisions"]} if doc["revisions"] else {}),
    }


_NOT_KEPT = ("trustcode", "patient_ref", "timepoint", "class_id")


def patient_of(key: str) -> tuple[str, str]:
    """(trustcode, patient_ref) of a patient document's `_id` (`patient_key`): what the
    document says once, where the older shape repeated it in fields of its own."""
    trustcode, _, patient_ref = key.partition("/")
    return trustcode, patient_ref


def state_of(doc: Document, trustcode: str, patient_ref: str) -> PatientState:
    """The state of the stored patient (`trustcode`, `patient_ref`), in any shape (winners
    stored whole before issue 26, without what the document implies and without
    `class_id` since; no `revisions` while there are none). A winner's `class_id` is
    then None: the audit history holds it."""
    winners = {
        tp: {"trustcode": trustcode, "patient_ref": patient_ref, "timepoint": tp, **a}
        for tp, a in (doc.get("winners") or {}).items()
    }
    return PatientState.from_doc({"winners": winners, "revisions": doc.get("revisions") or {}})


def stored_assessment(a: Assessment) -> Document:
    """An assessment as the audit history keeps it beside its `_id` (`<trust>:<event
    id>`): without the event id the key already says, and without a `class_id` it does
    not name."""
    return {k: v for k, v in a.to_doc().items() if k != "event_id" and v is not None}


def assessment_of(doc: Document) -> Assessment:
    """A stored assessment, in either shape (documents before issue 26 repeat the event id
    and hold `class_id: null`)."""
    return Assessment.from_doc({"event_id": doc["_id"].partition(":")[2], **doc})


def _new_patient(c: Commit, stamp: datetime) -> Document:
    """A new patient: its `_id` says its trust and reference, which it does not repeat."""
    doc: Document = {
        "_id": patient_key(c.trustcode, c.patient_ref),
        "version": c.changes,
        **stored_state(c.state),
    }
    if c.outbox:
        doc["outbox"] = _outbox(c.outbox)
        doc["outbox_at"] = stamp
    return doc


def _assessment_key(assessment: Assessment) -> str:
    return f"{assessment.trustcode}:{assessment.event_id}"


def _key(c: Commit) -> str:
    return patient_key(c.trustcode, c.patient_ref)


def _rank(doc: Document) -> tuple[str, str]:
    return (doc["time"], doc["event_id"])


def _if_newer(doc: Document) -> tuple[Document, Document]:
    """Filter and update storing a class start unless a later (or the same) one is stored."""
    newer = {
        "$or": [
            {"time": {"$lt": doc["time"]}},
            {"time": doc["time"], "event_id": {"$lt": doc["event_id"]}},
        ]
    }
    return {"_id": f"{doc['trustcode']}/{doc['class_id']}", **newer}, {"$set": doc}
