"""In memory: enrolment's `ClinicianRepository` port (compare-and-set on `rev`, like the
MongoDB adapter)."""

from __future__ import annotations

from ibest.backbone.concurrency import ConcurrentUpdate
from services.enrolment.domain.record import ClinicianRecord
from services.enrolment.ports import Change, Erasure, HeldContact, Stored
from tests.fakes.outbox import FakeOutbox


class FakeClinicianRepository:
    def __init__(self) -> None:
        self.records: dict[str, Stored] = {}
        self.outbox = FakeOutbox(on_clear=self._bump)
        self.conflicts = 0  # lose the next N saves to a concurrent writer

    def _bump(self, ref: str) -> None:
        stored = self.records[ref]
        self.records[ref] = Stored(stored.record, stored.rev + 1)

    async def _load(self, clinician_ref: str) -> Stored | None:
        stored = self.records.get(clinician_ref)
        if stored is None:
            return None
        outbox = tuple(await self.outbox.entries(clinician_ref))
        return Stored(stored.record.model_copy(update={"outbox": outbox}), stored.rev)

    async def load_many(self, clinician_refs: list[str]) -> dict[str, Stored]:
        found = {ref: await self._load(ref) for ref in clinician_refs}
        return {ref: stored for ref, stored in found.items() if stored is not None}

    async def _save(self, change: Change) -> None:
        ref = change.record.clinician_ref
        current = self.records.get(ref)
        if self.conflicts:
            self.conflicts -= 1
            raise ConcurrentUpdate(f"clinician {ref}: lost a race (fake)")
        if (current.rev if current else None) != change.rev:
            raise ConcurrentUpdate(f"clinician {ref}: record changed concurrently")
        self.records[ref] = Stored(change.record, (change.rev or 0) + 1)
        self.outbox.put(ref, list(change.record.outbox))

    async def save_many(self, changes: list[Change]) -> None:
        lost = 0
        for change in changes:
            try:
                await self._save(change)
            except ConcurrentUpdate:
                lost += 1
        if lost:
            raise ConcurrentUpdate(f"{lost} clinician record(s) changed concurrently")

    async def record(self, clinician_ref: str) -> ClinicianRecord | None:
        stored = await self._load(clinician_ref)
        return stored.record if stored else None

    async def contact(self, clinician_ref: str) -> tuple[bool, str | None]:
        stored = self.records.get(clinician_ref)
        if stored is None:
            return False, None
        contact = stored.record.contact
        return True, contact.email if contact else None

    async def rename_fact(
        self, clinician_ref: str, trustcode: str, old_id: str, new_id: str
    ) -> None:
        stored = self.records[clinician_ref]
        facts = tuple(
            f.model_copy(update={"id": new_id}) if (f.trustcode, f.id) == (trustcode, old_id) else f
            for f in stored.record.facts
        )
        self.records[clinician_ref] = Stored(
            stored.record.model_copy(update={"facts": facts}), stored.rev + 1
        )

    async def erase(self, clinician_ref: str, *, record: bool) -> Erasure:
        stored = self.records.get(clinician_ref)
        if stored is None:
            return Erasure(clinician_ref, False, False, False, 0)
        contact = stored.record.contact
        had_email = bool(contact and contact.email)
        if record:
            del self.records[clinician_ref]
            return Erasure(clinician_ref, True, had_email, True, 0)
        if contact is not None:
            erased = contact.model_copy(update={"email": None, "erased": True})
            self.records[clinician_ref] = Stored(
                stored.record.model_copy(update={"contact": erased}), stored.rev + 1
            )
        return Erasure(clinician_ref, True, had_email, False, 0)

    async def held_contacts(self) -> list[HeldContact]:
        return [
            HeldContact(ref, stored.rev, tuple(f.time for f in stored.record.facts))
            for ref, stored in self.records.items()
            if stored.record.contact is not None and stored.record.contact.email
        ]

    async def erase_contacts(self, held: list[HeldContact]) -> int:
        erased = 0
        for h in held:
            stored = self.records.get(h.clinician_ref)
            if stored is None or stored.rev != h.rev or stored.record.contact is None:
                continue
            contact = stored.record.contact.model_copy(update={"email": None, "erased": True})
            self.records[h.clinician_ref] = Stored(
                stored.record.model_copy(update={"contact": contact}), stored.rev + 1
            )
            erased += 1
        return erased

    async def clinician_refs(self) -> list[str]:
        return list(self.records)

    async def erased_contacts(self) -> set[str]:
        return {
            ref
            for ref, stored in self.records.items()
            if stored.record.contact is not None and stored.record.contact.erased
        }
