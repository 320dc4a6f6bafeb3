"""Who a learner is: the clinician a course-platform learner becomes.

The clinician reference is the programme's clinician pseudonym of the professional
registration number (`shared.keyed.clinician_pseudonym`), so the same person has the same
reference in the course, trusts' systems, facilitator lists and forms. A learner with no
registration number gets a keyed hash of the learner id (`keyed_reference(key, "learner",
...)`): stable across imports and xAPI, but linkable to nothing else. The learner id itself
never leaves this module in clear: the platform stores only `learner_key`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from shared.events import EMAIL_PATTERN, Profession
from shared.identifiers import SITE_CODE_PATTERN
from shared.keyed import clinician_pseudonym, keyed_reference, normalise_registration_number

_SITE = re.compile(SITE_CODE_PATTERN)
_EMAIL = re.compile(EMAIL_PATTERN)
_REGISTRATION = re.compile(r"^[A-Z0-9]{4,12}$")
_WORDS = re.compile(r"[\s\-/]+")
_PROFESSION_WORDS = {
    **{p.value: p for p in Profession},
    "physio": Profession.PHYSIOTHERAPIST,
    "physiotherapy": Profession.PHYSIOTHERAPIST,
    "registered_nurse": Profession.NURSE,
    "nursing": Profession.NURSE,
    "occupational_therapy": Profession.OCCUPATIONAL_THERAPIST,
    "ot": Profession.OCCUPATIONAL_THERAPIST,
    "clinical_psychologist": Profession.PSYCHOLOGIST,
    "psychology": Profession.PSYCHOLOGIST,
    "gp": Profession.DOCTOR,
    "medical_doctor": Profession.DOCTOR,
}


@dataclass(frozen=True)
class Answers:
    """What a learner told the course about themselves (registration questions or the
    mapping file); any part may be missing."""

    site: str | None = None
    profession: str | None = None
    registration_number: str | None = None
    contact_email: str | None = None
    row: tuple[str, int] | None = None
    """The file and line the answers were read from (the mapping file's row, or the site
    answer's), to point at when they cannot be used."""


@dataclass(frozen=True)
class Clinician:
    """A mapped learner: the clinician, the place they count at, and whether the reference
    links to other systems."""

    clinician_ref: str
    trustcode: str
    sitecode: str
    profession: Profession
    linkable: bool
    contact_email: str | None = None

    def without_email(self) -> Clinician:
        """As the learner mapping keeps it: a contact email travels on the enrolment only
        (the enrolment service alone keeps it, under its retention and erasure)."""
        return replace(self, contact_email=None)


def learner_key(key: bytes, home_page: str, learner_id: str) -> str:
    """The platform's handle on a learner (import ledger, learner mapping, xAPI actor): a
    keyed hash of the platform's home page and learner id, never the id itself."""
    return keyed_reference(key, "course-learner", home_page, learner_id)


def profession_of(answer: str) -> Profession | None:
    words = _WORDS.sub("_", answer.strip().lower()).strip("_")
    return _PROFESSION_WORDS.get(words)


def clinician_of(key: bytes, home_page: str, learner_id: str, answers: Answers) -> Clinician | str:
    """The clinician `answers` make of the learner, or why they cannot (then the learner is
    unmapped: counted, listed, imported on a later run once mapped; never guessed)."""
    site = (answers.site or "").strip().upper()
    if not site:
        return "no site (ODS code) given"
    if not _SITE.match(site):
        return f"site {answers.site!r} is not a 5-character ODS site code (e.g. RTH08)"
    if not (answers.profession or "").strip():
        return "no profession given"
    profession = profession_of(answers.profession or "")
    if profession is None:
        known = ", ".join(p.value for p in Profession)
        return f"profession {answers.profession!r} is not one of {known}"
    email = (answers.contact_email or "").strip() or None
    if email is not None and not _EMAIL.match(email):
        return f"contact email {email!r} is not an email address"
    number = normalise_registration_number(answers.registration_number or "")
    if number and not _REGISTRATION.match(number):
        return f"registration number {answers.registration_number!r} is not one (e.g. PH123456)"
    if number:
        ref, linkable = clinician_pseudonym(key, number), True
    else:
        ref, linkable = keyed_reference(key, "learner", home_page, learner_id), False
    return Clinician(ref, site[:3], site, profession, linkable, email)
