"""Patients recorded through the forms: their references, paper entries and patient links.

A reference the forms make is random (not derived from anything about the patient), starts
with letters so it is never all digits (never mistaken for an NHS number) and is shown to the
site team to keep beside its own records. A patient link is a random token, stored hashed,
open for its timepoint's collection window: baseline and group end for 28 days from the
link's creation, month 3 and month 12 in the follow-up window from the patient's baseline
(`shared.followup`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from shared.followup import Timepoint, assessment_date, follow_up_window

REF_PREFIX = "FP"
LINK_OPEN_DAYS = 28
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and copied by hand


def new_patient_ref() -> str:
    """`FP-` and 10 characters from an unambiguous alphabet (50 bits): never all digits."""
    return f"{REF_PREFIX}-" + "".join(secrets.choice(_ALPHABET) for _ in range(10))


def new_link_token() -> str:
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class LinkWindow:
    opens: date
    closes: date

    def contains(self, day: date) -> bool:
        return self.opens <= day <= self.closes


def link_window(
    timepoint: Timepoint, created_at: datetime, baseline_at: datetime | None
) -> LinkWindow | None:
    """When a patient link for `timepoint` is open; None when it cannot be made (a follow-up
    without a baseline)."""
    if timepoint in (Timepoint.BASELINE, Timepoint.GROUP_END):
        start = assessment_date(created_at)
        return LinkWindow(start, start + timedelta(days=LINK_OPEN_DAYS))
    if baseline_at is None:
        return None
    window = follow_up_window(assessment_date(baseline_at), timepoint)
    return LinkWindow(window.opens, window.closes)


def entry_date_problem(
    timepoint: Timepoint, day: date, today: date, baseline_at: datetime | None
) -> str | None:
    """Why a paper form dated `day` cannot be entered: never in the future, never before
    2015 (the contract's time rule), a follow-up never before its baseline."""
    if day > today:
        return "The date the patient filled in the form must be today or in the past"
    if day.year < 2015:
        return "The date the patient filled in the form must be in 2015 or later"
    if timepoint != Timepoint.BASELINE:
        if baseline_at is None:
            return "Enter the patient's baseline form first"
        if day < assessment_date(baseline_at):
            return "A follow-up must be dated on or after the patient's baseline"
    return None
