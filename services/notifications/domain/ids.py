"""Deterministic identifiers: the same fact always gives the same reminder and event id,
so redelivered events, retries and a second instance deduplicate instead of resending."""

from __future__ import annotations

import hashlib
import re
import uuid

from ibest.backbone.outbox_values import deterministic_id
from shared.identifiers import REF_MAX_LENGTH, REF_PATTERN

NAMESPACE = uuid.UUID("5b0f2d52-3c1e-4f7e-9a51-6f1c0f4e7a10")


def _bounded(prefix: str, *parts: str) -> str:
    """`prefix:part:...`, hashed when it would not fit a contract reference."""
    joined = ":".join((prefix, *parts))
    if len(joined) <= REF_MAX_LENGTH and re.fullmatch(REF_PATTERN, joined):
        return joined
    return f"{prefix}:{hashlib.sha256(joined.encode()).hexdigest()[:40]}"


def training_reminder_id(clinician_ref: str, number: int) -> str:
    return _bounded("training", clinician_ref, str(number))


def thanks_reminder_id(clinician_ref: str, course_version: str) -> str:
    return _bounded("training_thanks", clinician_ref, course_version)


def survey_reminder_id(kind: str, clinician_ref: str, survey: str) -> str:
    """`delivery_survey_due|delivery_survey_closing:<clinician>:<survey>`: one of each per
    clinician and survey, whatever course version they completed or how often."""
    return _bounded(kind, clinician_ref, survey)


def follow_up_item_id(kind: str, trustcode: str, patient_ref: str, timepoint: str) -> str:
    return f"{kind}:{trustcode}:{patient_ref}:{timepoint}"


def digest_id(sitecode: str, local_date: str) -> str:
    return f"site:{sitecode}:{local_date}"


def notification_event_id(reminder_id: str, status: str) -> uuid.UUID:
    """The id of a reminder's notification.sent / notification.failed event."""
    return deterministic_id(NAMESPACE, f"{reminder_id}:{status}")
