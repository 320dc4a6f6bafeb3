"""In memory: outcomes' `OutcomesRepository` port (compare-and-set on `version`, like the
MongoDB adapter)."""

from __future__ import annotations

from datetime import datetime

from ibest.backbone.concurrency import ConcurrentUpdate
from ibest.backbone.document import Document
from services.outcomes.domain.assessments import Assessment
from services.outcomes.domain.outcomes import PatientState
from services.outcomes.ports import Commit, Loaded, patient_key
from tests.fakes.outbox import FakeOutbox


class FakeOutcomesRepository:
    def __init__(self) -> None:
        self.assessments: dict[str, Assessment] = {}
        self.patients: dict[tuple[str, str], tuple[PatientState, int]] = {}
        self.class_starts: dict[tuple[str, str], Document] = {}
        self.outbox = FakeOutbox()
        self.conflicts = 0  # lose the next N commits to a concurrent writer

    async def record_assessments(self, assessments: list[Assessment], received: datetime) -> None:
        for a in assessments:
            self.assessments.setdefault(a.event_id, a)

    async def history(self, trustcode: str, patient_ref: str) -> list[Assessment]:
        found = [
            a
            for a in self.assessments.values()
            if (a.trustcode, a.patient_ref) == (trustcode, patient_ref)
        ]
        return sorted(found, key=lambda a: (a.timepoint.value, a.rank))

    async def load(self, trustcode: str, patient_ref: str) -> tuple[PatientState, int | None]:
        stored = self.patients.get((trustcode, patient_ref))
        return stored if stored else (PatientState(), None)

    async def load_many(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], Loaded]:
        found: dict[tuple[str, str], Loaded] = {}
        for key in keys:
            state, version = await self.load(*key)
            found[key] = Loaded(state, version, await self.outbox.entries(patient_key(*key)))
        return found

    async def _commit(self, commit: Commit) -> None:
        key = (commit.trustcode, commit.patient_ref)
        if self.conflicts:
            self.conflicts -= 1
            raise ConcurrentUpdate(f"patient {key}: lost a race (fake)")
        _, version = await self.load(*key)
        if version != commit.version:
            raise ConcurrentUpdate(f"patient {key} kept changing under us")
        self.patients[key] = (commit.state, (commit.version or 0) + commit.changes)
        self.outbox.add(patient_key(*key), commit.outbox)

    async def commit_many(self, commits: list[Commit]) -> None:
        lost = 0
        for commit in commits:
            try:
                await self._commit(commit)
            except ConcurrentUpdate:
                lost += 1
        if lost:
            raise ConcurrentUpdate("a patient of the batch changed under us")

    async def record_classes(self, docs: list[Document]) -> None:
        for doc in docs:
            key = (doc["trustcode"], doc["class_id"])
            held = self.class_starts.get(key)
            if held is None or (doc["time"], doc["event_id"]) > (held["time"], held["event_id"]):
                self.class_starts[key] = doc

    async def classes(self, trustcode: str, class_ids: set[str]) -> dict[str, Document]:
        return {
            cid: doc
            for (trust, cid), doc in self.class_starts.items()
            if trust == trustcode and cid in class_ids
        }
