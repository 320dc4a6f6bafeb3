"""Every forms use case on the in-memory fakes (tests/fakes/forms.py): no servers."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from ibest.backbone.outbox import OutboxRelay, OutboxSettings
from services.forms.application import (
    ClinicianForms,
    Facts,
    KeyAdmin,
    Keys,
    LinkAdmin,
    PatientAdmin,
    PatientForms,
    Publishing,
    Recorded,
    Refused,
    SiteTeams,
    Why,
)
from services.forms.domain.access import KeyRuleError
from services.forms.domain.answers import Problems
from shared.envelope import new_event
from shared.events import TrainingCompleted
from shared.links import ClinicianForm
from tests.fakes.forms import (
    FakeAudit,
    FakeClinicians,
    FakePatientLinks,
    FakePatients,
    FakeSessions,
    FakeSiteKeys,
    FakeSubmissions,
)
from tests.fakes.publisher import FakePublisher

NOW = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
REF = "0123456789abcdef0123456789abcdef"
SECRET = secrets.token_bytes(32)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    clock: Clock
    publisher: FakePublisher
    submissions: FakeSubmissions
    clinicians: FakeClinicians
    patients: FakePatients
    links: FakePatientLinks
    audit: FakeAudit
    site_keys: FakeSiteKeys
    forms: ClinicianForms
    sites: SiteTeams
    patient_forms: PatientForms
    facts: Facts
    key_admin: KeyAdmin
    link_admin: LinkAdmin
    relay: OutboxRelay


def world() -> World:
    clock = Clock()
    keys = Keys((SECRET,), secrets.token_bytes(32), secrets.token_bytes(32))
    publisher, submissions = FakePublisher(), FakeSubmissions()
    relay = OutboxRelay(submissions.outbox, publisher, "forms", OutboxSettings(1, 10))
    publishing = Publishing(submissions, relay)
    clinicians, patients, links = FakeClinicians(), FakePatients(), FakePatientLinks()
    audit, site_keys = FakeAudit(), FakeSiteKeys()
    return World(
        clock,
        publisher,
        submissions,
        clinicians,
        patients,
        links,
        audit,
        site_keys,
        ClinicianForms(clinicians, publishing, keys, clock),
        SiteTeams(site_keys, FakeSessions(), patients, links, publishing, audit, keys, clock, 60),
        PatientForms(links, patients, publishing, keys, clock),
        Facts(clinicians, patients, clock),
        KeyAdmin(site_keys, clock),
        LinkAdmin(clinicians, SECRET, "https://forms.example", clock),
        relay,
    )


async def completed(w: World, days_ago: int) -> None:
    at = NOW - timedelta(days=days_ago)
    event = new_event(
        TrainingCompleted(clinician_ref=REF, course_version="1", completed_at=at),
        trustcode="RTH",
        sitecode="RTH08",
        source="/test",
        time=at,
    )
    await w.facts.apply_many([event])


def token(w: World, form: ClinicianForm) -> str:
    return w.link_admin.link(REF, form).rsplit("/", 1)[1]


async def test_a_delivery_answer_is_one_event_per_page_and_a_new_one_per_new_page() -> None:
    w = world()
    await completed(w, 122)
    link = token(w, ClinicianForm.DELIVERY_MONTH_4)
    answer = {"delivering": "yes", "groups": "4"}
    first = await w.forms.submit(link, answer, "page-1")
    again = await w.forms.submit(link, answer, "page-1")
    assert isinstance(first, Recorded) and isinstance(again, Recorded) and again.duplicate
    later = await w.forms.submit(link, {"delivering": "no"}, "page-2")
    assert isinstance(later, Recorded) and not later.duplicate
    events = list(w.publisher.stored.values())
    assert [e.data.model_dump() for e in events] == [
        {"clinician_ref": REF, "delivering": True, "groups_delivered": 4},
        {"clinician_ref": REF, "delivering": False, "groups_delivered": 0},
    ]
    assert all(e.trustcode == "RTH" and e.time == NOW for e in events)
    assert await w.submissions.outbox.pending(10) == []  # each published, then cleared


async def test_refusals_store_nothing() -> None:
    w = world()
    link = token(w, ClinicianForm.INTENTION)
    unknown = await w.forms.submit(link, {"intends": "yes", "confidence": "5"}, "p")
    assert isinstance(unknown, Refused) and unknown.why is Why.CLOSED  # no completion known
    await completed(w, 30)
    bad = await w.forms.submit(link, {"intends": "maybe", "confidence": "11"}, "p")
    assert isinstance(bad, Problems) and set(bad.by_field) == {"intends", "confidence"}
    await w.link_admin.revoke(REF, ClinicianForm.INTENTION)
    revoked = await w.forms.submit(link, {"intends": "yes", "confidence": "5"}, "p")
    assert isinstance(revoked, Refused) and revoked.why is Why.FORBIDDEN
    w.clock.now = NOW + timedelta(days=1)  # a link made after the revocation opens
    fresh = await w.forms.submit(
        token(w, ClinicianForm.INTENTION), {"intends": "yes", "confidence": "5"}, "p"
    )
    assert isinstance(fresh, Recorded)
    w.clock.now = NOW + timedelta(days=61)  # more than 90 days after completion
    closed = await w.forms.submit(link, {"intends": "yes", "confidence": "5"}, "q")
    assert isinstance(closed, Refused) and closed.why in (Why.FORBIDDEN, Why.CLOSED)
    assert len(w.publisher.stored) == 1


async def test_site_keys_two_per_site_and_sessions_end_with_their_key() -> None:
    w = world()
    first, token1 = await w.key_admin.create("RTH08")
    await w.key_admin.create("RTH08")
    with pytest.raises(KeyRuleError):
        await w.key_admin.create("RTH08")
    with pytest.raises(KeyRuleError):
        await w.key_admin.create("RTH")
    signed = await w.sites.sign_in(token1)
    assert signed and signed.session.site == "RTH08"
    assert w.audit.records[-1] == {
        "action": "site_sign_in",
        "key_id": first.key_id,
        "site": "RTH08",
    }
    assert await w.sites.sign_in(token1[:-1] + "x") is None
    await w.key_admin.revoke(first.key_id)
    assert await w.sites.session(signed.token) is None
    await w.key_admin.create("RTH08")  # the slot is free again


async def test_paper_forms_links_and_a_patients_questionnaire() -> None:
    w = world()
    _, key = await w.key_admin.create("RTH08")
    signed = await w.sites.sign_in(key)
    assert signed
    session = signed.session
    patient = await w.sites.add_patient(session)
    day = NOW - timedelta(days=91)
    fields = {
        "completed-day": str(day.day),
        "completed-month": str(day.month),
        "completed-year": str(day.year),
        "pain_nrs": "8",
    }
    nhs = await w.sites.enter_paper(session, "943 476 5919", "baseline", fields, "n0")
    assert isinstance(nhs, Refused) and "NHS number" in nhs.message
    ok = await w.sites.enter_paper(session, patient.patient_ref, "baseline", fields, "n1")
    assert isinstance(ok, Recorded)
    [baseline] = w.publisher.stored.values()
    assert baseline.time.hour == 12 and baseline.time.date() == day.date()
    rows = await w.sites.follow_ups(session)
    assert [(r.patient_ref, r.timepoint) for r in rows] == [(patient.patient_ref, "month_3")]

    other_key = (await w.key_admin.create("RTH02"))[1]
    other = await w.sites.sign_in(other_key)
    assert other
    theirs = await w.sites.create_link(other.session, patient.patient_ref, "month_3", ["psfs"])
    assert isinstance(theirs, Refused) and theirs.why is Why.NOT_FOUND

    made = await w.sites.create_link(session, patient.patient_ref, "month_3", ["psfs"])
    assert not isinstance(made, Refused)
    visit = await w.patient_forms.open(made.token)
    assert not isinstance(visit, Refused)
    assert [s.step_id for s in visit.steps] == ["psfs.activities"]
    names = {"activity-1": "Socks", "activity-2": "Shopping", "activity-3": "Stairs"}
    step = await w.patient_forms.answer(made.token, "psfs.activities", names)
    assert not isinstance(step, (Refused, Problems))
    for n, rating in enumerate(("2", "4", "9"), start=1):
        await w.patient_forms.answer(made.token, f"psfs.rate-{n}", {"answer": rating})
    sent = await w.patient_forms.submit(made.token, "x")
    assert isinstance(sent, Recorded)
    event = w.publisher.stored[sent.event_id]
    assert event.data.model_dump(exclude_none=True)["measures"] == {"psfs": 5.0}
    assert "Socks" not in event.to_json().decode()
    kept = await w.patients.get("RTH", patient.patient_ref)
    assert kept and kept.psfs_activities == ("Socks", "Shopping", "Stairs")
    again = await w.patient_forms.open(made.token)
    assert isinstance(again, Refused) and again.why is Why.CLOSED
    assert [r["action"] for r in w.audit.records].count("patient_link") == 1
    assert await PatientAdmin(w.patients, w.links).erase("RTH", patient.patient_ref) == (1, 1)


async def test_a_paper_form_dated_today_is_never_in_the_future() -> None:
    w = world()
    w.clock.now = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)  # 09:00 in London (BST)
    _, key = await w.key_admin.create("RTH08")
    signed = await w.sites.sign_in(key)
    assert signed
    patient = await w.sites.add_patient(signed.session)
    today = {"completed-day": "1", "completed-month": "6", "completed-year": "2026", "rmdq": "9"}
    ok = await w.sites.enter_paper(signed.session, patient.patient_ref, "baseline", today, "n")
    assert isinstance(ok, Recorded)
    assert w.publisher.stored[ok.event_id].time == w.clock.now  # not midday, 3 hours ahead
    tomorrow = {**today, "completed-day": "2"}
    refused = await w.sites.enter_paper(
        signed.session, patient.patient_ref, "baseline", tomorrow, "m"
    )
    assert isinstance(refused, Problems) and "today or in the past" in refused.by_field["completed"]


async def test_a_refused_entry_stores_nothing() -> None:
    w = world()
    _, key = await w.key_admin.create("RTH08")
    signed = await w.sites.sign_in(key)
    assert signed
    bad = {"completed-day": "1", "completed-month": "5", "completed-year": "2026", "rmdq": "99"}
    refused = await w.sites.enter_paper(signed.session, "trust-ref-1", "baseline", bad, "n")
    assert isinstance(refused, Problems) and "rmdq" in refused.by_field
    assert w.patients.patients == {} and w.publisher.stored == {}
    assert [r["action"] for r in w.audit.records] == ["site_sign_in"]
