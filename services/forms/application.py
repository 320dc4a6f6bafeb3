"""The forms' use cases: clinicians answer by signed link; site teams sign in, add patients,
enter paper forms and make patient links; patients answer their questionnaire. They depend
only on ports (`ports.py`), the backbone's outbox relay and pure rules (`domain/`, shared)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from ibest.backbone.outbox import OutboxEntry, OutboxRelay
from services.forms.domain import answers, questionnaire
from services.forms.domain.access import (
    MAX_ACTIVE_KEYS,
    KeyRuleError,
    SiteKey,
    check_room_for_another,
    check_site,
    digest,
    key_id_of,
    mint_key,
    new_session_token,
    verify_key,
)
from services.forms.domain.patients import (
    REF_PREFIX,
    entry_date_problem,
    link_window,
    new_link_token,
    new_patient_ref,
)
from services.forms.domain.windows import Verdict, judge
from services.forms.ports import (
    AssessmentTime,
    Audit,
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
from shared.envelope import AnyEvent, new_event
from shared.events import Measures, PatientAssessed, Payload, TrainingCompleted
from shared.followup import Timepoint, assessment_date, follow_up_window
from shared.keyed import keyed_event_id
from shared.links import ClinicianForm, LinkClaims, LinkError, verify_link
from shared.measures import Measure

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
SOURCE = "/platform/forms"
PAPER_MEASURES = list(Measure)
CLOSING_DAYS = 14


class Why(StrEnum):
    """Why the rules refuse a request; the HTTP edge (services/forms/api.py) gives each its
    status."""

    FORBIDDEN = "forbidden"
    """A link that does not work (copied wrongly, replaced, revoked)."""
    NOT_FOUND = "not-found"
    """No such patient at the site, or no such question on the form."""
    CLOSED = "closed"
    """Not open yet, closed, or already answered."""
    INVALID = "invalid"
    """What was typed or chosen cannot be used (the page is shown again with the why)."""


@dataclass(frozen=True)
class Refused:
    """A request the rules refuse: why, and the plain-English title and message."""

    why: Why
    title: str
    message: str


@dataclass(frozen=True)
class Recorded:
    """A submission became (or already was) one event."""

    event_id: str
    duplicate: bool = False


@dataclass(frozen=True)
class ClinicianPage:
    claims: LinkClaims
    facts: ClinicianFacts


FORBIDDEN_LINK = Refused(
    Why.FORBIDDEN,
    "This link does not work",
    "The link may have been copied wrongly or replaced by a newer one. Use the link in "
    "your most recent email from the iBeST programme.",
)


@dataclass
class Keys:
    """The secrets the use cases hold: link secrets (current first), the id key, CSRF key."""

    link_secrets: tuple[bytes, ...]
    id_key: bytes
    csrf_key: bytes


class Publishing:
    """Stores an event in a submission's outbox, then publishes it (the backbone outbox)."""

    def __init__(self, submissions: SubmissionStore, relay: OutboxRelay) -> None:
        self.submissions = submissions
        self.relay = relay

    async def record(self, event: AnyEvent, kind: str, at: datetime) -> Recorded:
        entry = OutboxEntry.of(event)
        if not await self.submissions.add(entry.id, kind, at, entry):
            return Recorded(entry.id, duplicate=True)
        try:
            await self.relay.publish(entry.id, [entry])
        except Exception:  # the background relay publishes it; the answer is stored
            log.warning("forms: %s stored, publish deferred to the relay", entry.id)
        return Recorded(entry.id)


class ClinicianForms:
    def __init__(
        self, clinicians: ClinicianStore, publishing: Publishing, keys: Keys, clock: Clock
    ) -> None:
        self.clinicians = clinicians
        self.publishing = publishing
        self.keys = keys
        self.clock = clock

    async def open(self, token: str) -> ClinicianPage | Refused:
        """The form a link opens, if the link is good and the answer still wanted now."""
        try:
            claims = verify_link(self.keys.link_secrets, token)
        except LinkError:
            return FORBIDDEN_LINK
        facts = await self.clinicians.get(claims.clinician_ref)
        revoked = facts.revoked_before.get(claims.form.value) if facts else None
        if revoked is not None and claims.issued_at <= revoked:  # the same second too
            return FORBIDDEN_LINK
        verdict = judge(claims.form, facts.completed_at if facts else None, self.clock())
        if verdict != Verdict.OPEN or facts is None:
            return _closed(verdict)
        return ClinicianPage(claims, facts)

    async def submit(
        self, token: str, fields: Mapping[str, str], nonce: str
    ) -> Recorded | Refused | answers.Problems:
        page = await self.open(token)
        if isinstance(page, Refused):
            return page
        ref = page.claims.clinician_ref
        payload: Payload | answers.Problems
        if page.claims.form == ClinicianForm.INTENTION:
            payload = answers.intention(ref, fields)
        else:
            payload = answers.delivery(ref, fields)
        if isinstance(payload, answers.Problems):
            return payload
        now = self.clock()
        event = new_event(
            payload,
            trustcode=page.facts.trust,
            sitecode=page.facts.site,
            source=SOURCE,
            time=now,
            event_id=keyed_event_id(self.keys.id_key, "forms", page.claims.form, ref, nonce),
        )
        return await self.publishing.record(event, page.claims.form.value, now)


def _closed(verdict: Verdict) -> Refused:
    if verdict == Verdict.NOT_YET:
        return Refused(Why.CLOSED, "This survey is not open yet", "Use the link when we email you.")
    if verdict == Verdict.UNKNOWN:
        return Refused(
            Why.CLOSED,
            "This survey is not open",
            "We have no record that you have completed the iBeST course, so there is "
            "nothing to answer yet.",
        )
    return Refused(
        Why.CLOSED,
        "This survey has closed",
        "The time to answer has passed. Thank you for your help with the iBeST programme.",
    )


class Facts:
    """Applies consumed events: completions (for clinicians' windows), assessments (for
    site teams' follow-up lists and the baseline-first rule)."""

    def __init__(self, clinicians: ClinicianStore, patients: PatientStore, clock: Clock) -> None:
        self.clinicians = clinicians
        self.patients = patients
        self.clock = clock

    async def apply_many(self, events: list[AnyEvent]) -> None:
        """Apply delivered events in order (one event is a batch of one); each write is an
        idempotent upsert, so a redelivered batch changes nothing."""
        completions: list[Completion] = []
        assessments: list[AssessmentTime] = []
        for event in events:
            data = event.data
            if isinstance(data, TrainingCompleted):
                completed_at = data.completed_at or event.time
                completions.append(
                    Completion(
                        data.clinician_ref,
                        completed_at,
                        event.trustcode,
                        event.sitecode,
                        event.time,
                    )
                )
            elif isinstance(data, PatientAssessed):
                assessments.append(
                    AssessmentTime(
                        event.trustcode,
                        event.sitecode,
                        data.patient_ref,
                        data.timepoint.value,
                        event.time,
                    )
                )
        # One write per kind for the whole batch (the two touch different collections).
        if completions:
            await self.clinicians.completed_many(completions)
        if assessments:
            await self.patients.assessed_many(assessments)


@dataclass(frozen=True)
class FollowUpRow:
    patient_ref: str
    timepoint: str
    due: date
    closes: date
    closing: bool


@dataclass(frozen=True)
class SignedIn:
    token: str
    session: Session


@dataclass(frozen=True)
class NewLink:
    token: str
    link: PatientLink


class SiteTeams:
    def __init__(
        self,
        keys: SiteKeyStore,
        sessions: SessionStore,
        patients: PatientStore,
        links: PatientLinkStore,
        publishing: Publishing,
        audit: Audit,
        secrets: Keys,
        clock: Clock,
        session_minutes: float,
    ) -> None:
        self.keys = keys
        self.sessions = sessions
        self.patients = patients
        self.links = links
        self.publishing = publishing
        self.audit = audit
        self.secrets = secrets
        self.clock = clock
        self.session_minutes = session_minutes

    async def sign_in(self, typed: str) -> SignedIn | None:
        key_id = key_id_of(typed)
        key = await self.keys.get(key_id) if key_id else None
        if not verify_key(typed, key) or key is None:
            return None
        session = Session(
            key.site, key.key_id, self.clock() + timedelta(minutes=self.session_minutes)
        )
        token = new_session_token()
        await self.audit.record("site_sign_in", key.key_id, site=key.site)
        await self.sessions.add(digest(token), session)
        return SignedIn(token, session)

    async def session(self, token: str | None) -> Session | None:
        if not token or len(token) > 100:
            return None
        session = await self.sessions.get(digest(token))
        if session is None or session.expires_at <= self.clock():
            return None
        key = await self.keys.get(session.key_id)
        if key is None or not key.active:  # a revoked key ends its sessions at once
            return None
        return session

    async def sign_out(self, token: str | None) -> None:
        if token:
            await self.sessions.remove(digest(token))

    async def follow_ups(self, session: Session) -> list[FollowUpRow]:
        """The site's follow-ups due now and not yet recorded (the digest's list)."""
        today = assessment_date(self.clock())
        rows = []
        for patient in await self.patients.of_site(session.site):
            if patient.baseline_at is None:
                continue
            for tp in (Timepoint.MONTH_3, Timepoint.MONTH_12):
                window = follow_up_window(assessment_date(patient.baseline_at), tp)
                if tp.value in patient.recorded or not window.due <= today <= window.closes:
                    continue
                closing = (window.closes - today).days <= CLOSING_DAYS
                rows.append(
                    FollowUpRow(patient.patient_ref, tp.value, window.due, window.closes, closing)
                )
        return sorted(rows, key=lambda r: (r.closes, r.patient_ref))

    async def add_patient(self, session: Session) -> Patient:
        while True:
            patient = Patient(session.site[:3], session.site, new_patient_ref(), None, {})
            if await self.patients.create(patient):
                break
        await self.audit.record(
            "patient_added", session.key_id, site=session.site, patient_ref=patient.patient_ref
        )
        return patient

    async def patient(self, session: Session, typed: str) -> Patient | Refused:
        """The site's patient `typed` names; a trust's own reference is taken as typed (the
        contract's rules first: an NHS number is refused) and stored only once something is
        recorded for it; another site's patient is not shown (404, the same answer as an
        unknown one)."""
        ref = typed.strip()
        problem = answers.patient_ref_problem(ref)
        if problem:
            return Refused(Why.INVALID, "Check the patient reference", problem)
        made_here = ref.upper().startswith(f"{REF_PREFIX}-")
        if made_here:  # the forms' own format, however it was typed
            ref = ref.upper()
        trust = session.site[:3]
        found = await self.patients.get(trust, ref)
        if found is None and made_here:  # a mistyped reference of ours: never a new patient
            return NOT_YOUR_PATIENT
        if found is None:  # stored only once something is recorded for it
            return Patient(trust, session.site, ref, None, {})
        if found.site != session.site:
            return NOT_YOUR_PATIENT
        return found

    async def enter_paper(
        self,
        session: Session,
        typed_ref: str,
        timepoint: str,
        fields: Mapping[str, str],
        nonce: str,
    ) -> Recorded | Refused | answers.Problems:
        patient = await self.patient(session, typed_ref)
        if isinstance(patient, Refused):
            return patient
        problems = answers.Problems()
        try:
            tp = Timepoint(timepoint)
        except ValueError:
            return Refused(Why.INVALID, "Choose a timepoint", "Choose which form this is.")
        totals = answers.totals(fields, PAPER_MEASURES, problems)
        day = answers.completion_date(fields, problems)
        if day is not None:
            why = entry_date_problem(tp, day, assessment_date(self.clock()), patient.baseline_at)
            if why:
                problems.add("completed", why)
        if problems or day is None:
            return problems
        # Midday of the day filled in; a form dated today and entered before midday takes
        # the entry time, so no event is ever in the future.
        at = min(answers.event_time_of(day), self.clock())
        event = new_event(
            PatientAssessed(
                patient_ref=patient.patient_ref,
                timepoint=tp,
                measures=Measures.model_validate(totals),
            ),
            trustcode=patient.trust,
            sitecode=session.site,
            source=SOURCE,
            time=at,
            event_id=keyed_event_id(
                self.secrets.id_key, "forms", "paper", patient.trust, patient.patient_ref, nonce
            ),
        )
        await self.audit.record(
            "paper_entry",
            session.key_id,
            site=session.site,
            patient_ref=patient.patient_ref,
            timepoint=tp.value,
            event_id=str(event.id),
        )
        result = await self.publishing.record(event, "paper", self.clock())
        await self.patients.assessed_many(
            [AssessmentTime(patient.trust, session.site, patient.patient_ref, tp, at)]
        )
        return result

    async def create_link(
        self, session: Session, typed_ref: str, timepoint: str, measures: list[str]
    ) -> NewLink | Refused:
        patient = await self.patient(session, typed_ref)
        if isinstance(patient, Refused):
            return patient
        try:
            tp = Timepoint(timepoint)
            chosen = questionnaire.choose_measures(measures)
        except ValueError:
            return Refused(
                Why.INVALID, "Check the link's details", "Choose a timepoint and a measure."
            )
        now = self.clock()
        window = link_window(tp, now, patient.baseline_at)
        if window is None:
            return Refused(
                Why.INVALID,
                "Enter the baseline first",
                "A follow-up link needs the patient's baseline form first.",
            )
        if window.closes < assessment_date(now):
            return Refused(
                Why.CLOSED, "This follow-up has closed", "Its collection window has passed."
            )
        token = new_link_token()
        link = PatientLink(
            digest(token),
            patient.trust,
            session.site,
            patient.patient_ref,
            tp.value,
            window.opens.isoformat(),
            window.closes.isoformat(),
            now,
            draft={"measures": [m.value for m in chosen]},
        )
        await self.audit.record(
            "patient_link",
            session.key_id,
            site=session.site,
            patient_ref=patient.patient_ref,
            timepoint=tp.value,
            closes=link.closes,
        )
        await self.patients.create(patient)  # a typed reference's first record (or kept)
        await self.links.add(link)
        return NewLink(token, link)


NOT_YOUR_PATIENT = Refused(
    Why.NOT_FOUND,
    "Patient not found",
    "There is no patient with this reference at your site. Check the reference.",
)


@dataclass
class PatientVisit:
    link: PatientLink
    patient: Patient
    steps: list[questionnaire.Step] = field(default_factory=list)


class PatientForms:
    def __init__(
        self,
        links: PatientLinkStore,
        patients: PatientStore,
        publishing: Publishing,
        secrets: Keys,
        clock: Clock,
    ) -> None:
        self.links = links
        self.patients = patients
        self.publishing = publishing
        self.secrets = secrets
        self.clock = clock

    async def open(self, token: str) -> PatientVisit | Refused:
        if not token or len(token) > 100:
            return FORBIDDEN_PATIENT_LINK
        link = await self.links.get(digest(token))
        if link is None or link.revoked_at is not None:
            return FORBIDDEN_PATIENT_LINK
        if link.draft.get("finished"):
            return Refused(
                Why.CLOSED,
                "You have already sent your answers",
                "Thank you. There is nothing more to do.",
            )
        today = assessment_date(self.clock()).isoformat()
        if not link.opens <= today <= link.closes:
            return Refused(
                Why.CLOSED,
                "This questionnaire has closed" if today > link.closes else "Not open yet",
                "Please contact your physiotherapy team if you would still like to answer.",
            )
        patient = await self.patients.get(link.trust, link.patient_ref)
        if patient is None:
            return FORBIDDEN_PATIENT_LINK
        steps = questionnaire.steps(
            [Measure(m) for m in link.draft.get("measures", [])],
            link.timepoint == Timepoint.BASELINE.value,
            patient.psfs_activities,
            link.draft.get("answers", {}),
        )
        return PatientVisit(link, patient, steps)

    async def answer(
        self, token: str, step_id: str, fields: Mapping[str, str]
    ) -> PatientVisit | Refused | answers.Problems:
        visit = await self.open(token)
        if isinstance(visit, Refused):
            return visit
        step = next((s for s in visit.steps if s.step_id == step_id), None)
        if step is None:
            return Refused(
                Why.NOT_FOUND, "Page not found", "This question is not part of your form."
            )
        got = questionnaire.read_step(step, fields)
        if isinstance(got, answers.Problems):
            return got
        saved: dict[str, Any] = dict(visit.link.draft.get("answers", {}))
        saved[step.step_id] = got
        draft = {**visit.link.draft, "answers": saved}
        await self.links.save_draft(visit.link.link_hash, draft)
        return await self.open(token)

    async def submit(self, token: str, nonce: str) -> Recorded | Refused:
        visit = await self.open(token)
        if isinstance(visit, Refused):
            return visit
        saved = visit.link.draft.get("answers", {})
        scored = questionnaire.score(visit.steps, saved)
        if isinstance(scored, str):
            return Refused(Why.INVALID, "Some answers are missing", scored)
        now = self.clock()
        link = visit.link
        event = new_event(
            PatientAssessed(
                patient_ref=link.patient_ref,
                timepoint=Timepoint(link.timepoint),
                measures=Measures.model_validate(scored.scores),
            ),
            trustcode=link.trust,
            sitecode=link.site,
            source=SOURCE,
            time=now,
            event_id=keyed_event_id(self.secrets.id_key, "forms", "patient", link.link_hash),
        )
        result = await self.publishing.record(event, "patient", now)
        if scored.activities:
            await self.patients.set_activities(link.trust, link.patient_ref, scored.activities)
        await self.patients.assessed_many(
            [AssessmentTime(link.trust, link.site, link.patient_ref, link.timepoint, now)]
        )
        await self.links.finish(link.link_hash, now)
        return result


FORBIDDEN_PATIENT_LINK = Refused(
    Why.FORBIDDEN,
    "This link does not work",
    "The link may have been copied wrongly or cancelled. Please contact your "
    "physiotherapy team for a new one.",
)


class KeyAdmin:
    def __init__(self, keys: SiteKeyStore, clock: Clock) -> None:
        self.keys = keys
        self.clock = clock

    async def create(self, site: str) -> tuple[SiteKey, str]:
        check_site(site)
        check_room_for_another(site, await self.keys.active_count(site))
        key, token = mint_key(site, self.clock())
        for slot in range(MAX_ACTIVE_KEYS):
            if await self.keys.add(key, slot):
                return key, token
        check_room_for_another(site, MAX_ACTIVE_KEYS)
        raise KeyRuleError("unreachable")  # pragma: no cover

    async def list(self) -> list[SiteKey]:
        return await self.keys.all()

    async def revoke(self, key_id: str) -> SiteKey:
        key = await self.keys.revoke(key_id, self.clock())
        if key is None:
            raise KeyRuleError(f"no key {key_id!r}")
        return key


class PatientAdmin:
    """Erasing a patient's record in the forms: the reference, the PSFS activity names and
    the patient's links (events already in the stream carry scores only)."""

    def __init__(self, patients: PatientStore, links: PatientLinkStore) -> None:
        self.patients = patients
        self.links = links

    async def erase(self, trust: str, ref: str) -> tuple[int, int]:
        return await self.patients.erase(trust, ref), await self.links.erase_patient(trust, ref)


class LinkAdmin:
    """Operators' clinician links: a fresh one, or revoking every earlier one of a form."""

    def __init__(self, clinicians: ClinicianStore, secret: bytes, base_url: str, clock: Clock):
        self.clinicians = clinicians
        self.secret = secret
        self.base_url = base_url
        self.clock = clock

    def link(self, clinician_ref: str, form: ClinicianForm) -> str:
        from shared.links import clinician_link

        now = self.clock().replace(microsecond=0)
        return clinician_link(self.base_url, self.secret, LinkClaims(form, clinician_ref, now))

    async def open_link(self, limit: int = 500) -> str | None:
        """A link to a form that is open now for some clinician who completed (the demo)."""
        now = self.clock()
        for facts in await self.clinicians.some(limit):
            for form in ClinicianForm:
                if judge(form, facts.completed_at, now) == Verdict.OPEN:
                    return self.link(facts.clinician_ref, form)
        return None

    async def revoke(self, clinician_ref: str, form: ClinicianForm) -> None:
        await self.clinicians.revoke_links(clinician_ref, form.value, self.clock())
