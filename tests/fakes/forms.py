"""In memory: every port of the forms service (services/forms/ports.py), for fast use-case
tests. tests/forms/test_stores_contract.py holds each to its MongoDB store (services/forms/adapters/
stores.py) by running the same assertions against both."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from ibest.backbone.outbox import OutboxEntry
from services.forms.domain.access import MAX_ACTIVE_KEYS, SiteKey
from services.forms.ports import (
    AssessmentTime,
    ClinicianFacts,
    Completion,
    Patient,
    PatientLink,
    Session,
)
from tests.fakes.outbox import FakeOutbox


class FakeClinicians:
    """As MongoClinicians: the earliest completion, the place of the latest event (by its
    time, whatever the arrival order), and revocations kept even before a completion."""

    def __init__(self) -> None:
        self.facts: dict[str, ClinicianFacts] = {}
        self._place_at: dict[str, datetime] = {}
        self._revoked: dict[str, dict[str, datetime]] = {}

    async def completed_many(self, completions: Sequence[Completion]) -> None:
        for c in completions:
            await self._completed(c.ref, c.completed_at, c.trust, c.site, c.at)

    async def _completed(
        self, ref: str, completed_at: datetime, trust: str, site: str, at: datetime
    ) -> None:
        old = self.facts.get(ref)
        earliest = min(completed_at, old.completed_at) if old else completed_at
        place = (trust, site)
        if old is not None and self._place_at[ref] > at:
            place = (old.trust, old.site)
        else:
            self._place_at[ref] = at
        self.facts[ref] = ClinicianFacts(ref, earliest, *place, dict(self._revoked.get(ref, {})))

    async def get(self, ref: str) -> ClinicianFacts | None:
        return self.facts.get(ref)

    async def revoke_links(self, ref: str, form: str, before: datetime) -> None:
        self._revoked.setdefault(ref, {})[form] = before
        old = self.facts.get(ref)
        if old is not None:
            self.facts[ref] = replace(old, revoked_before=dict(self._revoked[ref]))

    async def some(self, limit: int) -> list[ClinicianFacts]:
        return list(self.facts.values())[:limit]


class FakeSubmissions:
    """Submissions by event id; each keeps its event in `outbox` (the relay's store) until
    published."""

    def __init__(self) -> None:
        self.outbox = FakeOutbox()
        self.kinds: dict[str, str] = {}

    async def add(self, event_id: str, kind: str, at: datetime, entry: OutboxEntry) -> bool:
        if event_id in self.kinds:
            return False
        self.kinds[event_id] = kind
        self.outbox.put(event_id, [entry])
        return True


class FakeSiteKeys:
    def __init__(self) -> None:
        self.keys: dict[str, SiteKey] = {}
        self.slots: dict[str, str] = {}

    async def get(self, key_id: str) -> SiteKey | None:
        return self.keys.get(key_id)

    async def add(self, key: SiteKey, slot: int) -> bool:
        name = f"{key.site}/{slot}"
        if slot >= MAX_ACTIVE_KEYS or name in self.slots or key.key_id in self.keys:
            return False
        self.slots[name] = key.key_id
        self.keys[key.key_id] = key
        return True

    async def active_count(self, site: str) -> int:
        return sum(k.site == site and k.active for k in self.keys.values())

    async def all(self) -> list[SiteKey]:
        return sorted(self.keys.values(), key=lambda k: (k.site, k.created_at))

    async def revoke(self, key_id: str, at: datetime) -> SiteKey | None:
        key = self.keys.get(key_id)
        if key is None:
            return None
        if key.active:
            self.keys[key_id] = replace(key, revoked_at=at)
            self.slots = {s: k for s, k in self.slots.items() if k != key_id}
        return self.keys[key_id]


class FakeSessions:
    def __init__(self) -> None:
        self.sessions: dict[str, Session] = {}

    async def add(self, token_hash: str, session: Session) -> None:
        self.sessions[token_hash] = session

    async def get(self, token_hash: str) -> Session | None:
        return self.sessions.get(token_hash)

    async def remove(self, token_hash: str) -> None:
        self.sessions.pop(token_hash, None)


class FakePatients:
    def __init__(self) -> None:
        self.patients: dict[str, Patient] = {}

    async def get(self, trust: str, ref: str) -> Patient | None:
        return self.patients.get(f"{trust}:{ref}")

    async def create(self, patient: Patient) -> bool:
        key = f"{patient.trust}:{patient.patient_ref}"
        if key in self.patients:
            return False
        self.patients[key] = patient
        return True

    async def _assessed(
        self, trust: str, site: str | None, ref: str, timepoint: str, at: datetime
    ) -> None:
        key = f"{trust}:{ref}"
        old = self.patients.get(key) or Patient(trust, site or "", ref, None, {})
        recorded = {**old.recorded, timepoint: max(at, old.recorded.get(timepoint, at))}
        patient = replace(old, recorded=recorded)
        if timepoint == "baseline" and site and (old.baseline_at is None or old.baseline_at <= at):
            patient = replace(patient, baseline_at=at, site=site)
        self.patients[key] = patient

    async def assessed_many(self, assessments: Sequence[AssessmentTime]) -> None:
        for a in assessments:
            await self._assessed(a.trust, a.site, a.ref, a.timepoint, a.at)

    async def set_activities(self, trust: str, ref: str, names: list[str]) -> None:
        key = f"{trust}:{ref}"
        self.patients[key] = replace(self.patients[key], psfs_activities=tuple(names))

    async def of_site(self, site: str) -> list[Patient]:
        return [p for p in self.patients.values() if p.site == site]

    async def erase(self, trust: str, ref: str) -> int:
        return 1 if self.patients.pop(f"{trust}:{ref}", None) else 0


class FakePatientLinks:
    def __init__(self) -> None:
        self.links: dict[str, PatientLink] = {}

    async def add(self, link: PatientLink) -> None:
        self.links[link.link_hash] = link

    async def get(self, link_hash: str) -> PatientLink | None:
        return self.links.get(link_hash)

    async def save_draft(self, link_hash: str, draft: dict[str, Any]) -> None:
        self.links[link_hash] = replace(self.links[link_hash], draft=draft)

    async def finish(self, link_hash: str, at: datetime) -> None:
        self.links[link_hash] = replace(self.links[link_hash], draft={"finished": True})

    async def erase_patient(self, trust: str, ref: str) -> int:
        gone = [h for h, k in self.links.items() if (k.trust, k.patient_ref) == (trust, ref)]
        for h in gone:
            del self.links[h]
        return len(gone)


class FakeAudit:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    async def record(self, action: str, key_id: str, **what: Any) -> None:
        self.records.append({"action": action, "key_id": key_id, **what})
