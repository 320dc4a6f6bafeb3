"""Each consumed event becomes one fact stored on its entity (clinician, patient, class,
notification).

An entity keeps every competing fact under its trust and event id (`<trust>:<id>`: ids
belong to their trust, so two trusts' events with one id are two facts, and the trust then
the id break a tie of event times), so applying an event twice or in any order leaves the
same document; its current contribution to the figures is then a
pure function of those facts (`clinician_contribution`, ...). Exactness follows from that.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.envelope import AnyEvent
from shared.followup import FOLLOW_UPS, Timepoint, assessment_date, follow_up_window
from shared.surveys import SURVEYS, completed_at, completion_date, survey_answers, survey_window

Fact = dict[str, Any]
Contribution = dict[str, Any]

CLINICIANS = "clinicians"
PATIENTS = "patients"
CLASSES = "classes"
NOTIFICATIONS = "notifications"
ENTITY_KINDS = (CLINICIANS, PATIENTS, CLASSES, NOTIFICATIONS)

CONSUMES = (
    "clinician.enrolled",
    "clinician.training_started",
    "clinician.training_completed",
    "clinician.intention_reported",
    "clinician.delivery_reported",
    "class.started",
    "patient.assessed",
    "outcome.recorded",
    "notification.sent",
    "notification.failed",
)


@dataclass(frozen=True)
class EntityFact:
    """Where one event's fact is stored: entity collection, entity key, fact id and body.

    `places`: the fact's site may become the site its entity is counted at (an enrolment, a
    baseline, a class start, a reminder outcome). Contributions take their site only from
    such facts, so the sites of an entity's placing facts are every site it may be counted
    at, known when the fact is stored, before any read.
    """

    entity: str
    key: str
    fact_id: str
    fact: Fact
    places: bool = False


def fact_of(event: AnyEvent) -> EntityFact:
    """The fact an event contributes; its trust and id key it, so redelivery overwrites
    itself."""
    name = event.event_type.name
    data = event.data
    base: Fact = {"t": event.time, "trust": event.trustcode, "site": event.sitecode}
    eid = fact_id(event)
    if name == "clinician.enrolled":
        fact = {
            **base,
            "k": "enrolled",
            "profession": str(data.profession),
            "cv": data.course_version,
        }
        return EntityFact(CLINICIANS, data.clinician_ref, eid, fact, places=True)
    if name == "clinician.training_started":
        return EntityFact(
            CLINICIANS,
            data.clinician_ref,
            eid,
            {**base, "k": "started", "cv": data.course_version, "rev": data.revision or 1},
        )
    if name == "clinician.training_completed":
        # `done`: the completion time the delivery surveys are timed from (shared.surveys).
        return EntityFact(
            CLINICIANS,
            data.clinician_ref,
            eid,
            {
                **base,
                "k": "completed",
                "cv": data.course_version,
                "rev": data.revision or 1,
                "done": completed_at(data.completed_at, event.time),
            },
        )
    if name == "clinician.intention_reported":
        return EntityFact(
            CLINICIANS,
            data.clinician_ref,
            eid,
            {**base, "k": "intention", "value": data.intends_to_deliver},
        )
    if name == "clinician.delivery_reported":
        return EntityFact(
            CLINICIANS, data.clinician_ref, eid, {**base, "k": "delivery", "value": data.delivering}
        )
    if name == "class.started":
        return EntityFact(
            CLASSES, f"{event.trustcode}:{data.class_id}", eid, {**base, "k": "class"}, places=True
        )
    if name == "patient.assessed":
        timepoint = str(data.timepoint)
        return EntityFact(
            PATIENTS,
            f"{event.trustcode}:{data.patient_ref}",
            eid,
            {**base, "k": "assessed", "tp": timepoint},
            places=timepoint == Timepoint.BASELINE.value,
        )
    if name == "outcome.recorded":
        measures = {
            str(m): {"change": float(o.change), "improved": bool(o.improved)}
            for m, o in data.measures.items()
        }
        return EntityFact(
            PATIENTS,
            f"{event.trustcode}:{data.patient_ref}",
            eid,
            {
                **base,
                "k": "outcome",
                "tp": str(data.timepoint),
                "rev": data.revision,
                "measures": measures,
            },
        )
    if name in ("notification.sent", "notification.failed"):
        kind = "sent" if name.endswith("sent") else "failed"
        return EntityFact(
            NOTIFICATIONS, data.notification_id, eid, {**base, "k": kind}, places=True
        )
    raise ValueError(f"reporting does not consume {name}")


PATIENT_KINDS = ("assessed", "outcome")
"""The kinds of a patient's facts: an assessment, or an outcome (the one with measures), so
a stored patient fact needs no kind (`stored_fact`)."""
REVISED = ("started", "completed", "outcome")
"""Kinds of fact with a `revision` (1 when the event has none)."""


def stored_fact(fact: EntityFact) -> Fact:
    """A fact as its entity document keeps it: without what its key or its other fields
    already say, or what nothing reads (`read_facts` gives the whole fact back). Not kept:
    `trust` (the fact's key, `<trust>:<event id>`, starts with it); `site`, unless the fact
    places its entity (contributions take their place only from placing facts); a
    `revision` of 1; a completion time (`done`) equal to the event time; a `facilitated`
    fact's `class` (its key is the class event's); a patient's fact's kind (`PATIENT_KINDS`:
    an outcome is the one with measures). An outcome's measures are kept as
    `[change, improved]` pairs."""
    f = fact.fact
    out = {
        k: v
        for k, v in f.items()
        if k not in ("trust", "class")
        and (k != "site" or fact.places)
        and (k != "k" or v not in PATIENT_KINDS)
    }
    if out.get("rev") == 1:
        del out["rev"]
    if "done" in out and out["done"] == f["t"]:
        del out["done"]
    if "measures" in out:
        out["measures"] = {m: [o["change"], o["improved"]] for m, o in out["measures"].items()}
    return out


def read_facts(facts: Mapping[str, Fact]) -> dict[str, Fact]:
    """An entity's stored facts as contributions read them, whatever version stored them
    (`stored_fact`; a fact stored whole reads as it is): a patient's fact's kind, the trust
    from the key, a revision of 1, measures as `{change, improved}`."""
    out: dict[str, Fact] = {}
    for fid, stored in facts.items():
        f = dict(stored)
        f.setdefault("k", PATIENT_KINDS[1] if "measures" in f else PATIENT_KINDS[0])
        f.setdefault("trust", fid.split(":", 1)[0])
        if f["k"] in REVISED:
            f.setdefault("rev", 1)
        if "measures" in f:
            f["measures"] = {m: outcome_of(o) for m, o in f["measures"].items()}
        out[fid] = f
    return out


def outcome_of(stored: Any) -> dict[str, Any]:
    """One measure's outcome, `{change, improved}`, from its stored `[change, improved]`
    pair (or a dict stored by an earlier version)."""
    if isinstance(stored, Mapping):
        return {"change": stored["change"], "improved": stored["improved"]}
    change, improved = stored
    return {"change": change, "improved": improved}


def fact_id(event: AnyEvent) -> str:
    """The key of an event's fact on its entity: `<trust>:<event id>`."""
    return f"{event.trustcode}:{event.id}"


def facts_of(event: AnyEvent) -> list[EntityFact]:
    """Every fact an event contributes: `fact_of`'s, and for a `class.started` one
    `facilitated` fact on each facilitator's clinician (keyed by its trust and event id, so
    redelivery overwrites itself), which `clinicians_facilitating` counts at the clinician's
    place."""
    facts = [fact_of(event)]
    if event.event_type.name == "class.started":
        class_key = facts[0].key
        facts += [
            EntityFact(
                CLINICIANS,
                ref,
                fact_id(event),
                {
                    "t": event.time,
                    "trust": event.trustcode,
                    "site": event.sitecode,
                    "k": "facilitated",
                    "class": class_key,
                },
            )
            for ref in dict.fromkeys(event.data.facilitator_refs)
        ]
    return facts


def newest_time(facts: Iterable[EntityFact]) -> datetime | None:
    """What a batch moves `as_of` to: the newest event time of its facts, enrolment's
    derived training facts aside. Their time is a module event's (reporting never sees
    those), and a superseded revision's is later than its correction's, so counting them
    would make `as_of` depend on which revisions arrived: a function of the order, not of
    the set of events."""
    return max((f.fact["t"] for f in facts if f.fact["k"] not in DERIVED), default=None)


def _latest(facts: dict[str, Fact], kind: str) -> Fact | None:
    """The fact of `kind` with the latest event time; the trust code, then the event id
    break ties (the platform's one order, domain.md "One verdict per event")."""
    found = [(f["t"], f.get("trust", ""), fid, f) for fid, f in facts.items() if f["k"] == kind]
    return max(found, key=lambda x: x[:3])[3] if found else None


DERIVED = ("started", "completed")
"""Enrolment's derived facts: revised by a higher revision when an earlier module event
arrives late; only the highest revision of each (kind, course version) stands."""


def current_facts(facts: Mapping[str, Fact]) -> dict[str, Fact]:
    """`facts` without the revisions a higher one superseded (by revision, then event time,
    trust and id), so a clinician counts one start, at its latest revision's time, however
    many revisions arrived and in whatever order."""
    best: dict[tuple[str, str], tuple[Any, ...]] = {}
    for fid, f in facts.items():
        if f["k"] in DERIVED:
            rank = (f.get("rev", 1), f["t"], f.get("trust", ""), fid)
            key = (f["k"], f["cv"])
            best[key] = max(best.get(key, rank), rank)
    return {
        fid: f
        for fid, f in facts.items()
        if f["k"] not in DERIVED or best[(f["k"], f["cv"])][3] == fid
    }


def clinician_contribution(facts: dict[str, Fact]) -> Contribution | None:
    """A clinician counts at the trust and site of their latest enrolment; stages are
    cumulative and judged against that enrolment's course version, from the latest
    revision of enrolment's derived facts; facts before any enrolment wait (the clinician
    does not count until enrolled)."""
    enrolment = _latest(facts, "enrolled")
    if enrolment is None:
        return None
    facts = current_facts(facts)
    cv = enrolment["cv"]
    completions = [f for f in facts.values() if f["k"] == "completed" and f["cv"] == cv]
    completed = bool(completions)
    started = completed or any(f["k"] == "started" and f["cv"] == cv for f in facts.values())
    intention = _latest(facts, "intention")
    delivery = _latest(facts, "delivery")
    return {
        "trust": enrolment["trust"],
        "site": enrolment["site"],
        "profession": enrolment["profession"],
        "enrolled": True,
        "started": started,
        "completed": completed,
        "intending": bool(intention and intention["value"]),
        "delivering": bool(delivery and delivery["value"]),
        "surveys": _surveys(completions, facts),
        # Observed delivery: completed and named as a facilitator of at least one class.
        "facilitating": completed and any(f["k"] == "facilitated" for f in facts.values()),
    }


def _surveys(completions: list[Fact], facts: dict[str, Fact]) -> dict[str, Any]:
    """A completed clinician's delivery surveys (shared.surveys): each one's due date
    (stored, not judged: whether it has arrived depends on the reading time), whether it was
    answered and whether its answer (the latest report inside its window) says delivering.
    Empty for a clinician who has not completed the counted course version."""
    if not completions:
        return {}
    done: datetime = min(f.get("done") or f["t"] for f in completions)
    completed = completion_date(done)
    answers = survey_answers(
        completed,
        [
            (f["t"], f"{f.get('trust', '')} {fid}", f)
            for fid, f in facts.items()
            if f["k"] == "delivery"
        ],
    )
    return {
        s.value: {
            "due": survey_window(completed, s).due.isoformat(),
            "answered": s in answers,
            "delivering": bool(s in answers and answers[s]["value"]),
        }
        for s in SURVEYS
    }


def patient_contribution(facts: dict[str, Fact]) -> Contribution | None:
    """A patient counts once they have a baseline, at the site of the latest baseline.

    Follow-ups recorded before the baseline arrives wait for it. Per follow-up timepoint the
    outcome with the highest revision wins (event time, then id, break ties). Due dates are
    stored, not judged: whether one has arrived depends on the reading time.
    """
    baselines = {
        fid: f
        for fid, f in facts.items()
        if f["k"] == "assessed" and f["tp"] == Timepoint.BASELINE.value
    }
    baseline = _latest(baselines, "assessed")
    if baseline is None:
        return None
    assessed = {f["tp"] for f in facts.values() if f["k"] == "assessed"}
    outcomes: dict[str, Any] = {}
    best: dict[str, tuple[int, datetime, str]] = {}
    for fid, f in facts.items():
        if f["k"] != "outcome":
            continue
        rank = (f["rev"], f["t"], fid)
        if f["tp"] not in best or rank > best[f["tp"]]:
            best[f["tp"]] = rank
            outcomes[f["tp"]] = f["measures"]
    baseline_date = assessment_date(baseline["t"])
    return {
        "trust": baseline["trust"],
        "site": baseline["site"],
        "recorded": {tp.value: tp.value in assessed or tp.value in outcomes for tp in FOLLOW_UPS},
        "due": {tp.value: follow_up_window(baseline_date, tp).due.isoformat() for tp in FOLLOW_UPS},
        "outcomes": outcomes,
    }


def class_contribution(facts: dict[str, Fact]) -> Contribution | None:
    """A class counts at the site of its (latest) start event. Its start `date` (Europe/London)
    is the earliest start event at that site: announcing a class again does not make it
    start later (sites that keep going, domain.md)."""
    start = _latest(facts, "class")
    if start is None:
        return None
    first = min(f["t"] for f in facts.values() if f["k"] == "class" and f["site"] == start["site"])
    return {
        "trust": start["trust"],
        "site": start["site"],
        "date": assessment_date(first).isoformat(),
    }


def notification_contribution(facts: dict[str, Fact]) -> Contribution | None:
    """A reminder counts once, by its latest outcome (event time) at that event's site: one
    that failed and was later sent counts as sent. On equal event times sent wins (a
    delivery did happen), then the event id decides, so the order of arrival never matters."""
    found = [
        (f["t"], f["k"] == "sent", fid, f)
        for fid, f in facts.items()
        if f["k"] in ("sent", "failed")
    ]
    if not found:
        return None
    latest = max(found, key=lambda x: (x[0], x[1], x[2]))[3]
    return {"trust": latest["trust"], "site": latest["site"], "outcome": latest["k"]}


CONTRIBUTION = {
    CLINICIANS: clinician_contribution,
    PATIENTS: patient_contribution,
    CLASSES: class_contribution,
    NOTIFICATIONS: notification_contribution,
}
