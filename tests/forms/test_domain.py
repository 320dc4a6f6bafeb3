"""The forms' pure rules: signed links (sign, verify, rotation, tampering), scoring, windows,
patient references; and notifications building the very links forms accepts."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.forms.domain.patients import new_patient_ref
from services.forms.domain.windows import Verdict, judge
from services.notifications.scheduler import Scheduler
from services.notifications.settings import NotificationSettings
from shared.identifiers import is_nhs_number
from shared.instruments import (
    INSTRUMENTS,
    ScoringError,
    score_pain_nrs,
    score_pseq,
    score_psfs,
    score_rmdq,
    score_von_korff_pain,
)
from shared.links import ClinicianForm, LinkClaims, LinkError, sign_link, verify_link
from shared.surveys import Survey
from tests.fakes.notifications import FakeChannel, FakeContacts, FakeNotificationsRepository
from tests.fakes.publisher import FakePublisher
from tests.harness import ID_KEY

REF = "0123456789abcdef0123456789abcdef"
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
OLD, NEW = secrets.token_bytes(32), secrets.token_bytes(32)


def test_a_link_names_its_form_and_clinician_only_under_its_secret() -> None:
    claims = LinkClaims(ClinicianForm.DELIVERY_MONTH_4, REF, NOW)
    token = sign_link(NEW, claims)
    assert REF not in token and "delivery" not in token
    assert verify_link((NEW,), token) == claims
    assert verify_link((NEW, OLD), sign_link(OLD, claims)) == claims  # rotation
    with pytest.raises(LinkError):
        verify_link((NEW,), sign_link(OLD, claims))  # a retired secret
    for i in range(3, len(token)):
        altered = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]
        with pytest.raises(LinkError):
            verify_link((NEW,), altered)
    with pytest.raises(LinkError):
        verify_link((NEW,), "f1." + "A" * 5000)


def test_scoring_follows_domain_md() -> None:
    assert score_rmdq([True] * 7 + [False] * 17) == 7
    assert score_pseq([6] * 10) == 60
    assert score_pain_nrs(0) == 0
    assert score_psfs([3, 4, 6]) == 4.33
    assert score_psfs([10, 10, 10, 10, 9]) == 9.8
    assert score_von_korff_pain([5, 9, 6]) == 66.67
    for bad in ([11, 1, 1], [1, 1]):
        with pytest.raises(ScoringError):
            score_von_korff_pain(bad)
    with pytest.raises(ScoringError):
        score_psfs([1, 2])
    with pytest.raises(ScoringError):
        score_rmdq([True] * 23)
    assert {i.measure.value for i in INSTRUMENTS.values() if i.self_completable} == {
        "pain_nrs",
        "von_korff_pain",
        "psfs",
    }


def test_windows_judged_at_submission() -> None:
    done = NOW - timedelta(days=122)
    assert judge(ClinicianForm.DELIVERY_MONTH_4, done, NOW) == Verdict.OPEN
    assert judge(ClinicianForm.DELIVERY_MONTH_4, done, NOW + timedelta(days=43)) == Verdict.CLOSED
    assert judge(ClinicianForm.DELIVERY_MONTH_12, done, NOW) == Verdict.NOT_YET
    assert judge(ClinicianForm.INTENTION, NOW - timedelta(days=90), NOW) == Verdict.OPEN
    assert judge(ClinicianForm.INTENTION, NOW - timedelta(days=91), NOW) == Verdict.CLOSED
    assert judge(ClinicianForm.INTENTION, None, NOW) == Verdict.UNKNOWN


def test_patient_references_are_random_and_never_all_digits() -> None:
    refs = {new_patient_ref() for _ in range(1000)}
    assert len(refs) == 1000
    assert not any(r.replace("-", "").isdigit() or is_nhs_number(r) for r in refs)


def test_notifications_build_the_links_forms_accepts(tmp_path: Path) -> None:
    secret = tmp_path / "link_secret"
    secret.write_text(NEW.hex())
    settings = NotificationSettings(
        IBEST_FORMS_LINK_SECRET_FILE=secret, IBEST_FORMS_BASE_URL="https://forms.example"
    )
    scheduler = Scheduler(
        FakeNotificationsRepository(),
        settings,
        FakeChannel(),
        FakeContacts(),
        FakePublisher(),
        lambda: NOW,
        ID_KEY,
    )
    url = scheduler._survey_link(Survey.MONTH_12, REF)
    assert url.startswith("https://forms.example/c/") and REF not in url
    claims = verify_link((NEW.hex().encode(),), url.rsplit("/", 1)[1])
    assert (claims.form, claims.clinician_ref) == (ClinicianForm.DELIVERY_MONTH_12, REF)
    intention = verify_link((NEW.hex().encode(),), scheduler._intention_link(REF).rsplit("/", 1)[1])
    assert intention.form == ClinicianForm.INTENTION


def test_the_letter_is_one_page_with_a_long_address() -> None:
    from services.forms.letters import letter_document

    url = "https://ibest-forms.platform.example.nhs.uk/p/" + "x" * 32
    document = letter_document(url, "2026-07-01")
    assert len(document.pages) == 1
    assert document.write_pdf().startswith(b"%PDF")
