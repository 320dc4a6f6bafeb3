"""A scripted multi-trust dataset as raw CloudEvents, with its expected figures by hand.

Trusts RTH (sites RTH08, RTH01), RXF (RXF01) and R0A (R0A02). It includes a clinician
moving trust (counted at the latest enrolment, against its course version), a module fact
arriving before its enrolment, one for a clinician never enrolled, reports superseded by
later ones, an outcome correction (revision 2) and a follow-up without a baseline, and reminders
(notification.sent / notification.failed): one published twice under two event ids, one
failed then sent (counts as sent), one sent then failed (counts as failed).
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime
from typing import Any
from unittest import mock

from shared.catalogue import Catalogue, catalogue
from shared.envelope import AnyEvent, parse_event
from tests.harness import cloud_event

CATALOGUE = Catalogue.model_validate(
    {
        "courses": [
            *[c.model_dump(by_alias=True) for c in catalogue().courses],
            {
                "course_version": "2",
                "title": "A second version (this dataset only)",
                "modules": [{"module_id": "v2-m01", "title": "The one module of version 2"}],
            },
        ]
    }
)
"""The shipped catalogue and a version 2, which the contract must know for the mover's
re-enrolment to be valid (see `with_version_2`)."""

NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
LATEST = datetime(2025, 5, 20, 10, 0, tzinfo=UTC)  # newest event time: the reports' as_of
Event = dict[str, Any]


def parsed(raw: Event) -> AnyEvent:
    """A raw event as the contract parses it from the wire, judged against this dataset's
    catalogue (for tests of the use cases, which take parsed events)."""
    with mock.patch("shared.envelope.catalogue", lambda: CATALOGUE):
        return parse_event(None, json.dumps(raw).encode())


def _t(month: int, day: int, year: int = 2025, hour: int = 9) -> datetime:
    return datetime(year, month, day, hour, 0, tzinfo=UTC)


def _site(site: str) -> dict[str, str]:
    return {"trust": site[:3], "site": site}


def _enrol(ref: str, profession: str, site: str, when: datetime, cv: str = "1") -> Event:
    return cloud_event(
        "clinician.enrolled",
        {"clinician_ref": ref, "profession": profession, "course_version": cv},
        time=when,
        **_site(site),
    )


def _derived(kind: str, ref: str, site: str, when: datetime, cv: str = "1") -> Event:
    return cloud_event(
        f"clinician.training_{kind}",
        {"clinician_ref": ref, "course_version": cv},
        time=when,
        **_site(site),
    )


def _assessed(patient: str, timepoint: str, site: str, when: datetime, **measures: int) -> Event:
    return cloud_event(
        "patient.assessed",
        {"patient_ref": patient, "timepoint": timepoint, "measures": measures or {"rmdq": 14}},
        time=when,
        **_site(site),
    )


def _outcome(
    patient: str,
    site: str,
    baseline: datetime,
    when: datetime,
    revision: int,
    **values: tuple[int, int],
) -> Event:
    improvement = {"rmdq": 5, "pain_nrs": 2}
    measures = {
        m: {
            "baseline": b,
            "value": v,
            "change": v - b,
            "improved": b - v >= improvement[m] or b - v >= 0.3 * b,
        }
        for m, (b, v) in values.items()
    }
    return cloud_event(
        "outcome.recorded",
        {
            "patient_ref": patient,
            "timepoint": "month_3",
            "baseline_time": baseline.isoformat(),
            "assessment_time": when.isoformat(),
            "revision": revision,
            "measures": measures,
        },
        time=when,
        **_site(site),
    )


def events() -> list[Event]:
    out: list[Event] = []
    # RTH08: 12 clinicians (9 physiotherapists, 3 nurses) on version 1.
    for i in range(12):
        ref = f"c-a{i:02d}"
        out.append(_enrol(ref, "physiotherapist" if i < 9 else "nurse", "RTH08", _t(1, 5)))
        if i < 10:
            out.append(_derived("started", ref, "RTH08", _t(2, 1)))
        if i < 9:
            out.append(_derived("completed", ref, "RTH08", _t(3, 1)))
            out.append(
                cloud_event(
                    "clinician.intention_reported",
                    {"clinician_ref": ref, "intends_to_deliver": True, "confidence": 8},
                    time=_t(3, 2),
                    **_site("RTH08"),
                )
            )
        if 1 <= i <= 5:
            out.append(
                cloud_event(
                    "clinician.delivery_reported",
                    {"clinician_ref": ref, "delivering": True, "groups_delivered": 2},
                    time=_t(5, 1),
                    **_site("RTH08"),
                )
            )
    # c-a00 changed their mind later (latest report wins); c-a01's earlier "no" is superseded.
    out.append(
        cloud_event(
            "clinician.intention_reported",
            {"clinician_ref": "c-a00", "intends_to_deliver": False, "confidence": 2},
            time=_t(4, 1),
            **_site("RTH08"),
        )
    )
    out.append(
        cloud_event(
            "clinician.intention_reported",
            {"clinician_ref": "c-a01", "intends_to_deliver": False, "confidence": 2},
            time=_t(2, 1),
            **_site("RTH08"),
        )
    )
    # A derived start published before its enrolment; a completion never enrolled.
    out.append(_derived("started", "c-late", "RTH08", _t(1, 20)))
    out.append(_enrol("c-late", "nurse", "RTH08", _t(1, 15)))
    out.append(_derived("completed", "c-ghost", "RTH08", _t(3, 3)))
    # RTH01: three nurses; a physiotherapist who completed version 1 and then re-enrolled
    # at RXF01 on version 2 (counts there, neither started nor completed).
    for i in range(3):
        out.append(_enrol(f"c-b{i}", "nurse", "RTH01", _t(1, 6)))
    out.append(_enrol("c-mover", "physiotherapist", "RTH01", _t(1, 1)))
    out.append(_derived("started", "c-mover", "RTH01", _t(1, 10)))
    out.append(_derived("completed", "c-mover", "RTH01", _t(2, 10)))
    out.append(_enrol("c-mover", "physiotherapist", "RXF01", _t(3, 1), cv="2"))
    out.append(_enrol("c-x0", "doctor", "RXF01", _t(2, 2)))
    # R0A02: eight psychologists who all started.
    for i in range(8):
        out.append(_enrol(f"c-p{i}", "psychologist", "R0A02", _t(1, 7)))
        out.append(_derived("started", f"c-p{i}", "R0A02", _t(1, 8)))
    # Classes: 9 at RTH08 (k-00 announced twice under two ids), 1 at RTH01, 1 at RXF01.
    for i in range(9):
        out.append(_class(f"k-{i:02d}", "RTH08", _t(2, 1 + i)))
    out.append(_class("k-00", "RTH08", _t(2, 20)))
    out.append(_class("k-10", "RTH01", _t(2, 3)))
    out.append(_class("q-0", "RXF01", _t(3, 3)))
    # RTH08 patients. 20 with a baseline on 10 January (month 3 due 11 April): 12 followed up.
    jan = _t(1, 10)
    for i in range(20):
        ref = f"p-r{i:02d}"
        out.append(_assessed(ref, "baseline", "RTH08", jan))
        if i < 12:
            when = _t(4, 12)
            out.append(_assessed(ref, "month_3", "RTH08", when))
            value = 8 if i < 8 else 13
            extra = {"pain_nrs": (6, 3)} if i < 3 else {}
            out.append(_outcome(ref, "RTH08", jan, when, 1, rmdq=(14, value), **extra))
    # A correction of p-r08's follow-up: revision 2 (improved) supersedes revision 1.
    out.append(_outcome("p-r08", "RTH08", jan, _t(4, 20), 2, rmdq=(14, 8)))
    # 3 recent baselines (month 3 not yet due), the newest event of the dataset.
    for i in range(3):
        out.append(_assessed(f"p-n{i}", "baseline", "RTH08", LATEST))
    # 9 baselines from March 2024: both follow-ups due; all month 3 and 6 month 12 recorded.
    mar = _t(3, 1, 2024)
    for i in range(9):
        ref = f"p-y{i}"
        out.append(_assessed(ref, "baseline", "RTH08", mar))
        out.append(_assessed(ref, "month_3", "RTH08", _t(6, 1, 2024)))
        if i < 6:
            out.append(_assessed(ref, "month_12", "RTH08", _t(3, 1)))
    out.append(_assessed("p-orphan", "month_3", "RTH08", _t(4, 4)))  # no baseline: waits
    # RXF01: two baselines, month 3 due, none recorded.
    for i in range(2):
        out.append(_assessed(f"p-x{i}", "baseline", "RXF01", _t(2, 1)))
    out += _reminders()
    return out


def notification(outcome: str, notification_id: str, site: str, when: datetime) -> Event:
    data: dict[str, Any] = {
        "notification_id": notification_id,
        "kind": "training_start",
        "recipient_kind": "clinician",
        "recipient_ref": "c-a00",
        "template_id": "training-start-v1",
        "channel": "log",
    }
    data.update(
        {"sent_at": when.isoformat()} if outcome == "sent" else {"reason": "mailbox unavailable"}
    )
    return cloud_event(f"notification.{outcome}", data, time=when, **_site(site))


def _reminders() -> list[Event]:
    """RTH08: 13 sent, 3 failed; RTH01: 1 sent; RXF01: 8 failed; R0A02: none."""
    out = [notification("sent", f"n-s{i:02d}", "RTH08", _t(2, 1 + i)) for i in range(12)]
    out.append(notification("sent", "n-s00", "RTH08", _t(2, 15)))  # same reminder, new id
    out.append(notification("failed", "n-fs", "RTH08", _t(3, 1)))  # failed, then sent
    out.append(notification("sent", "n-fs", "RTH08", _t(3, 2)))
    out.append(notification("sent", "n-sf", "RTH08", _t(3, 1)))  # sent, then bounced
    out.append(notification("failed", "n-sf", "RTH08", _t(3, 2)))
    out += [notification("failed", f"n-f{i}", "RTH08", _t(3, 3)) for i in range(2)]
    out.append(notification("sent", "n-b0", "RTH01", _t(3, 4)))
    out += [notification("failed", f"n-x{i}", "RXF01", _t(3, 5)) for i in range(8)]
    return out


def _class(class_id: str, site: str, when: datetime) -> Event:
    return cloud_event(
        "class.started",
        {"class_id": class_id, "facilitator_refs": ["c-a01"], "planned_sessions": 6},
        time=when,
        **_site(site),
    )


def shuffled_with_duplicates(seed: int = 6) -> list[tuple[Event, str]]:
    """Every event with its Nats-Msg-Id, a quarter of them twice (under a second message
    id, so the stream keeps both copies), in shuffled order."""
    rng = random.Random(seed)
    base = events()
    sends = [(e, e["id"]) for e in base]
    sends += [(e, str(uuid.uuid4())) for e in rng.sample(base, len(base) // 4)]
    rng.shuffle(sends)
    return sends


PROFESSIONS = (
    "physiotherapist",
    "nurse",
    "occupational_therapist",
    "psychologist",
    "doctor",
    "other",
)


def _prof(**counts: int | str) -> dict[str, int | str]:
    return {p: counts.get(p, 0) for p in PROFESSIONS}


NATIONAL = {
    "clinicians_enrolled": 26,
    "clinicians_started": 19,
    "clinicians_completed": 9,
    "clinicians_intending": 8,
    "clinicians_delivering": 5,
    "clinicians_enrolled_by_profession": _prof(
        physiotherapist=10, nurse=7, psychologist=8, doctor=1
    ),
    "clinicians_started_by_profession": _prof(physiotherapist=9, nurse=2, psychologist=8),
    "clinicians_completed_by_profession": _prof(physiotherapist=9),
    "clinicians_intending_by_profession": _prof(physiotherapist=8),
    "clinicians_delivering_by_profession": _prof(physiotherapist=5),
    "classes_started": 11,
    "sites_running_classes": 3,
    "patients_baseline": 34,
    "patients_month_3": 21,
    "patients_month_12": 6,
    "followup_due_month_3": 31,
    "followup_due_month_12": 9,
    "followup_rate_month_3": 0.677,
    "followup_rate_month_12": 0.667,
    "reminders_sent": 14,
    "reminders_failed": 11,
}
# The national figures as published: exact, except the by-profession breakdowns whose exact
# cells beside the trusts' "*" would give them back by difference (services/reporting/
# README.md, "Secondary suppression"): those go out under the trusts' control, and a
# breakdown whose controlled total is "*" is all "*" (no make-up of a small group).
NATIONAL_PUBLISHED = {
    **NATIONAL,
    "clinicians_enrolled_by_profession": _prof(
        physiotherapist=10, nurse="*", psychologist=10, doctor="*"
    ),
    "clinicians_started_by_profession": _prof(physiotherapist=10, nurse="*", psychologist=10),
    "clinicians_delivering_by_profession": dict.fromkeys(PROFESSIONS, "*"),
}
NATIONAL_OUTCOMES = {
    ("rmdq", "month_3"): {"n": 12, "mean_change": -4.75, "improved_share": 0.75},
    ("pain_nrs", "month_3"): {"n": 3, "mean_change": -3.0, "improved_share": 1.0},
    ("rmdq", "month_12"): {"n": 0, "mean_change": None, "improved_share": None},
}
# Published (controlled) figures of trust RTH, its sites, and trust RXF.
RTH = {
    "clinicians_enrolled": 15,
    "clinicians_started": 10,
    "clinicians_completed": 10,
    "clinicians_intending": 10,
    "clinicians_delivering": "*",
    "clinicians_enrolled_by_profession": _prof(physiotherapist=10, nurse="*"),
    "classes_started": 10,
    "sites_running_classes": "*",
    "patients_baseline": 30,
    "patients_month_3": 20,
    "patients_month_12": "*",
    "followup_due_month_3": 30,
    "followup_due_month_12": 10,
    "followup_rate_month_3": 0.7,
    "followup_rate_month_12": "*",  # 20/30, 1 place
    "reminders_sent": 15,
    "reminders_failed": "*",
}
RTH08 = {
    "clinicians_enrolled": 15,
    "clinicians_started": 10,
    "clinicians_completed": 10,
    "clinicians_enrolled_by_profession": _prof(physiotherapist=10, nurse="*"),
    "classes_started": 10,
    "patients_baseline": 30,
    "followup_due_month_3": 30,
    "reminders_sent": 15,
    "reminders_failed": "*",
}
RTH08_RMDQ_MONTH_3 = {"n": 10, "mean_change": -4.75, "improved_share": 1.0}
RTH01 = {
    "clinicians_enrolled": "*",
    "clinicians_started": 0,
    "classes_started": "*",
    "patients_baseline": 0,
    "followup_rate_month_3": None,
    "reminders_sent": "*",
    "reminders_failed": 0,
}
RXF = {
    "clinicians_enrolled": "*",
    "patients_baseline": "*",
    "patients_month_3": 0,
    "followup_due_month_3": "*",
    "followup_rate_month_3": "*",
    "sites_running_classes": "*",
    "reminders_sent": 0,
    "reminders_failed": 10,
}
R0A = {
    "clinicians_enrolled": 10,
    "clinicians_started": 10,
    "clinicians_completed": 0,
    "clinicians_started_by_profession": _prof(psychologist=10),
    "reminders_sent": 0,
    "reminders_failed": 0,
}
