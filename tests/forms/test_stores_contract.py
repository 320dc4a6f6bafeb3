"""The forms' stores, held to one contract: every assertion here runs against the
in-memory fakes (tests/fakes/forms.py) and against the MongoDB stores on the real database
(services/forms/adapters/stores.py), so the fake-based use-case tests (test_application.py)
prove what the service does (the pattern of tests/reporting/test_store.py). Every method of
every store port (services/forms/ports.py) but `Audit` (the backbone's audit log, proved in
tests/governance/test_audit.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from ibest.backbone.document import Document
from ibest.backbone.outbox_values import OutboxEntry
from services.forms.adapters.stores import (
    MongoClinicians,
    MongoPatientLinks,
    MongoPatients,
    MongoSessions,
    MongoSiteKeys,
    MongoSubmissions,
)
from services.forms.domain.access import SiteKey
from services.forms.ports import (
    AssessmentTime,
    ClinicianFacts,
    ClinicianStore,
    Completion,
    Patient,
    PatientLink,
    PatientLinkStore,
    PatientStore,
    Session,
    SessionStore,
    SiteKeyStore,
    SubmissionStore,
)
from tests.fakes.forms import (
    FakeClinicians,
    FakePatientLinks,
    FakePatients,
    FakeSessions,
    FakeSiteKeys,
    FakeSubmissions,
)

T0 = datetime(2026, 2, 2, 10, 0, tzinfo=UTC)
LATER = datetime(2099, 1, 1, tzinfo=UTC)
"""For what a TTL index expires (submissions, sessions): never due while the test runs."""


@dataclass
class Stores:
    clinicians: ClinicianStore
    submissions: SubmissionStore
    site_keys: SiteKeyStore
    sessions: SessionStore
    patients: PatientStore
    links: PatientLinkStore


@pytest.fixture(params=["fake", "mongo"])
async def stores(request: pytest.FixtureRequest, mongodb_url: str) -> AsyncIterator[Stores]:
    if request.param == "fake":
        yield Stores(
            FakeClinicians(),
            FakeSubmissions(),
            FakeSiteKeys(),
            FakeSessions(),
            FakePatients(),
            FakePatientLinks(),
        )
        return
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_url, tz_aware=True)
    db = client[f"t{uuid.uuid4().hex[:10]}_forms"]
    submissions, site_keys = MongoSubmissions(db, 30), MongoSiteKeys(db)
    sessions, patients = MongoSessions(db), MongoPatients(db)
    for store in (submissions, site_keys, sessions, patients):
        await store.create_indexes()
    try:
        yield Stores(
            MongoClinicians(db), submissions, site_keys, sessions, patients, MongoPatientLinks(db)
        )
    finally:
        await client.drop_database(db.name)
        await client.close()


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


async def assessed(patients: PatientStore, *when: Any) -> None:
    """One assessment's time, as one answered form records it (a batch of one)."""
    await patients.assessed_many([AssessmentTime(*when)])


async def test_a_clinician_keeps_the_earliest_completion_and_the_latest_events_place(
    stores: Stores,
) -> None:
    clinicians = stores.clinicians
    assert await clinicians.get("c1") is None
    await clinicians.completed_many(
        [
            Completion("c1", at(5), "RTH", "RTH08", at(5)),
            Completion("c1", at(2), "RNU", "RNU01", at(9)),  # earlier completion, later event
        ]
    )
    await clinicians.completed_many(
        [Completion("c1", at(1), "RXX", "RXX01", at(3))]  # an older event: no place
    )
    assert await clinicians.get("c1") == ClinicianFacts("c1", at(1), "RNU", "RNU01", {})
    await clinicians.revoke_links("c1", "month_4", at(10))
    await clinicians.revoke_links("c1", "month_4", at(11))
    await clinicians.revoke_links("c1", "month_12", at(12))
    expected = ClinicianFacts("c1", at(1), "RNU", "RNU01", {"month_4": at(11), "month_12": at(12)})
    assert await clinicians.get("c1") == expected
    # A revocation before the completion arrives is kept for it.
    await clinicians.revoke_links("c2", "month_4", at(1))
    assert await clinicians.get("c2") is None
    await clinicians.completed_many([Completion("c2", at(2), "RTH", "RTH09", at(2))])
    assert await clinicians.get("c2") == ClinicianFacts(
        "c2", at(2), "RTH", "RTH09", {"month_4": at(1)}
    )
    assert sorted(await clinicians.some(10), key=lambda f: f.clinician_ref) == [
        expected,
        ClinicianFacts("c2", at(2), "RTH", "RTH09", {"month_4": at(1)}),
    ]
    assert len(await clinicians.some(1)) == 1


def entry(event_id: str) -> OutboxEntry:
    return OutboxEntry(id=event_id, name="patient.assessed", body="{}")


async def test_a_submission_is_stored_once_per_event_id(stores: Stores) -> None:
    submissions = stores.submissions
    assert await submissions.add("e1", "baseline", LATER, entry("e1")) is True
    assert await submissions.add("e1", "month_3", LATER, entry("e1")) is False
    assert await submissions.add("e2", "baseline", LATER, entry("e2")) is True


def key(key_id: str, site: str = "RTH08", hours: float = 0) -> SiteKey:
    return SiteKey(key_id, site, f"hash-{key_id}", at(hours))


async def test_a_site_holds_two_active_keys_one_per_slot_and_a_revoked_key_frees_its_slot(
    stores: Stores,
) -> None:
    keys = stores.site_keys
    assert await keys.add(key("k1"), 0) is True
    assert await keys.add(key("k2", hours=1), 0) is False  # slot taken
    assert await keys.add(key("k2", hours=1), 2) is False  # no third slot
    assert await keys.add(key("k1", hours=1), 1) is False  # the id is taken
    assert await keys.add(key("k2", hours=1), 1) is True
    assert await keys.add(key("n1", site="RTH09"), 0) is True
    assert await keys.active_count("RTH08") == 2
    assert await keys.get("k1") == key("k1") and await keys.get("k9") is None
    revoked = await keys.revoke("k1", at(2))
    assert revoked == SiteKey("k1", "RTH08", "hash-k1", T0, at(2))
    assert await keys.revoke("k1", at(3)) == revoked  # already revoked: kept as it was
    assert await keys.revoke("k9", at(3)) is None
    assert await keys.active_count("RTH08") == 1
    assert await keys.add(key("k3", hours=3), 0) is True
    assert [(k.site, k.key_id) for k in await keys.all()] == [
        ("RTH08", "k1"),
        ("RTH08", "k2"),
        ("RTH08", "k3"),
        ("RTH09", "n1"),
    ]


async def test_a_session_is_found_by_its_token_hash_until_removed(stores: Stores) -> None:
    sessions = stores.sessions
    session = Session("RTH08", "k1", LATER)
    await sessions.add("h1", session)
    assert await sessions.get("h1") == session
    assert await sessions.get("h2") is None
    await sessions.remove("h1")
    await sessions.remove("h1")
    assert await sessions.get("h1") is None


async def test_a_patient_is_created_once_and_keeps_its_latest_baseline_and_records(
    stores: Stores,
) -> None:
    patients = stores.patients
    created = Patient("RTH", "RTH08", "p1", None, {})
    assert await patients.create(created) is True
    assert await patients.create(Patient("RTH", "RTH09", "p1", None, {})) is False
    assert await patients.get("RTH", "p1") == created
    assert await patients.get("RNU", "p1") is None
    await assessed(patients, "RTH", "RTH08", "p1", "baseline", at(2))
    await patients.assessed_many(
        [AssessmentTime("RTH", "RTH09", "p1", "baseline", at(1))]
    )  # older: not the baseline
    await assessed(patients, "RTH", None, "p1", "month_3", at(5))
    await assessed(patients, "RTH", None, "p1", "month_3", at(4))
    await patients.set_activities("RTH", "p1", ["walking", "gardening"])
    assert await patients.get("RTH", "p1") == Patient(
        "RTH",
        "RTH08",
        "p1",
        at(2),
        {"baseline": at(2), "month_3": at(5)},
        ("walking", "gardening"),
    )
    await patients.assessed_many(
        [AssessmentTime("RTH", "RTH07", "p1", "baseline", at(3))]
    )  # a later one corrects it
    corrected = await patients.get("RTH", "p1")
    assert corrected is not None and (corrected.site, corrected.baseline_at) == ("RTH07", at(3))
    await patients.assessed_many(
        [AssessmentTime("RTH", "RTH08", "p2", "month_3", at(1))]
    )  # first seen at a follow-up
    assert await patients.get("RTH", "p2") == Patient(
        "RTH", "RTH08", "p2", None, {"month_3": at(1)}
    )
    await assessed(patients, "RTH", None, "p3", "month_12", at(1))
    assert await patients.get("RTH", "p3") == Patient("RTH", "", "p3", None, {"month_12": at(1)})
    assert sorted(p.patient_ref for p in await patients.of_site("RTH08")) == ["p2"]
    assert sorted(p.patient_ref for p in await patients.of_site("RTH07")) == ["p1"]
    assert await patients.erase("RTH", "p1") == 1
    assert await patients.erase("RTH", "p1") == 0
    assert await patients.get("RTH", "p1") is None


def link(link_hash: str, patient: str = "p1", trust: str = "RTH") -> PatientLink:
    return PatientLink(
        link_hash, trust, f"{trust}08", patient, "month_3", "2026-05-01", "2026-06-01", T0
    )


async def test_a_patient_link_keeps_its_draft_until_finished_and_is_erased_with_the_patient(
    stores: Stores,
) -> None:
    links = stores.links
    await links.add(link("l1"))
    await links.add(link("l2"))
    await links.add(link("l3", patient="p2"))
    await links.add(link("l4", trust="RNU"))
    assert await links.get("l1") == link("l1")
    assert await links.get("l9") is None
    draft: dict[str, Any] = {"page": 2, "answers": {"rmdq_1": True}}
    await links.save_draft("l1", draft)
    saved = await links.get("l1")
    assert saved is not None and saved.draft == draft
    await links.finish("l1", at(1))
    finished = await links.get("l1")
    assert finished is not None and finished.draft == {"finished": True}
    assert await links.erase_patient("RTH", "p1") == 2
    assert await links.erase_patient("RTH", "p1") == 0
    assert [await links.get(h) is None for h in ("l1", "l2", "l3", "l4")] == [
        True,
        True,
        False,
        False,
    ]


async def test_a_patient_document_says_each_fact_once_and_the_older_shape_is_read_alike(
    mongodb_url: str,
) -> None:
    """Issue 26: a stored patient does not repeat the trust and reference its `_id` says,
    nor a site-bearing baseline's time twice (`baseline_at` is its recorded time). A
    document of the older shape (both repeated) is read alike and still ordered: an
    earlier baseline leaves it as it was, a later one corrects it."""
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_url, tz_aware=True)
    db = client[f"t{uuid.uuid4().hex[:10]}_forms"]
    patients = MongoPatients(db)
    try:
        await patients.assessed_many(
            [
                AssessmentTime("RTH", "RTH08", "p1", "baseline", at(2)),
                AssessmentTime("RTH", "RTH08", "p1", "month_3", at(5)),
                AssessmentTime("RTH", None, "p1", "baseline", at(3)),  # no site: recorded only
            ]
        )
        new = await db["patients"].find_one({"_id": "RTH:p1"})
        assert new == {
            "_id": "RTH:p1",
            "site": "RTH08",
            "baseline_at": at(2),
            "recorded": {"month_3": at(5), "baseline": at(3)},
        }
        await db["patients"].insert_one(
            {
                "_id": "RTH:p-old",
                "trust": "RTH",
                "site": "RTH08",
                "patient_ref": "p-old",
                "recorded": {"baseline": at(2), "month_3": at(5)},
                "baseline_at": at(2),
            }
        )
        for p in ("p1", "p-old"):
            found = await patients.get("RTH", p)
            assert found is not None and found.trust == "RTH" and found.patient_ref == p
            assert (found.site, found.baseline_at) == ("RTH08", at(2))
            assert found.recorded == {"baseline": at(3) if p == "p1" else at(2), "month_3": at(5)}
        await patients.assessed_many([AssessmentTime("RTH", "RTH09", "p-old", "baseline", at(1))])
        await patients.assessed_many([AssessmentTime("RTH", "RTH07", "p1", "baseline", at(4))])
        old = await patients.get("RTH", "p-old")
        assert old is not None and (old.site, old.baseline_at) == ("RTH08", at(2))
        assert sorted(p.patient_ref for p in await patients.of_site("RTH08")) == ["p-old"]
        corrected = await patients.get("RTH", "p1")
        assert corrected is not None and (corrected.site, corrected.recorded["baseline"]) == (
            "RTH07",
            at(4),
        )
    finally:
        await client.drop_database(db.name)
        await client.close()
