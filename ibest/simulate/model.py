"""The simulated rollout as a plan of raw events: pure, seeded, no I/O.

Everything is drawn from one `random.Random(seed)` and event ids are uuid5 of the seed, start
and a counter, so the same options give byte-identical events (and a re-run is deduplicated
rather than dead-lettered as an id reused for different content).

Proportions follow domain.md's published figures: of the clinicians enrolled about 60% begin
and about 40% complete; patients' scores improve about as the BeST trial found (RMDQ about
-3 points at 12 months) with realistic missing follow-ups (about 75% at month 3, 60% at
month 12). Only raw events are planned: the services derive training_started/completed,
outcome.recorded and notifications themselves.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ibest.simulate.trusts import Trust
from shared import events as ev
from shared.envelope import new_event
from shared.followup import Timepoint
from shared.measures import MEASURES, Measure

NAMESPACE = uuid.UUID("6f1c0d1e-5b7a-4a53-9d59-2a4f3c1b7e10")
SOURCE = "/trusts/{trust}/ibest-simulator"
PROFESSIONS = {  # the rollout's mix: mostly physiotherapists
    ev.Profession.PHYSIOTHERAPIST: 0.62,
    ev.Profession.NURSE: 0.1,
    ev.Profession.OCCUPATIONAL_THERAPIST: 0.1,
    ev.Profession.PSYCHOLOGIST: 0.08,
    ev.Profession.DOCTOR: 0.04,
    ev.Profession.OTHER: 0.06,
}
BEGIN_SHARE = 0.6
COMPLETE_SHARE_OF_BEGUN = 0.4 / 0.6
FOLLOW_UP_RESPONSE = {Timepoint.GROUP_END: 0.5, Timepoint.MONTH_3: 0.75, Timepoint.MONTH_12: 0.6}
# (baseline mean, baseline sd, mean change at 12 months, sd of change); trial-like.
SCORE_MODEL: dict[Measure, tuple[float, float, float, float]] = {
    Measure.RMDQ: (9.0, 4.5, -3.0, 4.0),
    Measure.PAIN_NRS: (6.0, 1.8, -1.6, 2.0),
    Measure.VON_KORFF_PAIN: (60.0, 15.0, -13.0, 18.0),
    Measure.VON_KORFF_DISABILITY: (50.0, 20.0, -12.0, 18.0),
    Measure.PSFS: (4.0, 1.5, 2.0, 2.0),
    Measure.PSEQ: (30.0, 10.0, 6.0, 8.0),
}
# Measure sets a site collects: the trial's primary measures, or the implementation's.
MEASURE_SETS = (
    (Measure.RMDQ, Measure.VON_KORFF_PAIN, Measure.VON_KORFF_DISABILITY),
    (Measure.PAIN_NRS, Measure.PSFS),
    (Measure.RMDQ, Measure.PAIN_NRS, Measure.PSFS, Measure.PSEQ),
)
FALLBACK_MODULES = (  # course version "1" as shared/catalogue.json lists it
    "m01-understanding-back-pain",
    "m02-cbt-approach",
    "m03-individual-assessment",
    "m04-running-groups",
    "m05-pacing-and-goals",
    "m06-exercise",
    "m07-thoughts-and-setbacks",
    "m08-delivery-and-evaluation",
)


@dataclass(frozen=True)
class SimulationOptions:
    seed: int = 1
    trusts: int | None = None
    """How many trusts of deploy/trusts.yaml take part (None: all)."""
    clinicians: int = 300
    patients: int = 200
    start: datetime = datetime(2024, 1, 8, 9, 0, tzinfo=UTC)
    months: int = 24
    time_compression: float = 0.0
    """Simulated seconds per wall-clock second when publishing; 0 publishes at once."""
    duplicate_rate: float = 0.01
    out_of_order_rate: float = 0.02
    invalid_rate: float = 0.005
    course_version: str = "1"
    progress: bool = True
    via: str = "nats"
    """`nats` (publish as a trust's NATS client) or `http` (send through the gateway)."""
    gateway_url: str | None = None
    """With `via="http"`: the gateway's base URL (default: this machine's gateway port)."""

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=round(self.months * 30.4))


@dataclass(frozen=True)
class Planned:
    """One message to publish: when (simulated time), where, and whether it is valid."""

    publish_at: datetime
    subject: str
    body: bytes
    msg_id: str
    name: str
    valid: bool = True
    duplicate: bool = False


@dataclass
class Plan:
    events: list[Planned] = field(default_factory=list)
    clinicians: int = 0
    begun: int = 0
    completed: int = 0
    classes: int = 0
    patients: int = 0


class _Planner:
    def __init__(self, options: SimulationOptions, trusts: list[Trust], modules: list[str]) -> None:
        self.o = options
        self.rng = random.Random(options.seed)
        self.trusts = trusts[: options.trusts] if options.trusts else trusts
        self.modules = modules
        self.plan = Plan()
        self._counter = 0

    def _id(self) -> uuid.UUID:
        self._counter += 1
        return uuid.uuid5(NAMESPACE, f"{self.o.seed}:{self.o.start.isoformat()}:{self._counter}")

    def _ref(self, kind: str, n: int) -> str:
        digest = hashlib.sha256(f"{kind}:{self.o.seed}:{n}".encode()).hexdigest()
        return f"{kind}-{digest[:20]}"

    def add(
        self, payload: ev.Payload, site: str, at: datetime, publish_at: datetime | None = None
    ) -> None:
        if at > self.o.end:
            return
        trust = site[:3]
        event = new_event(
            payload,
            trustcode=trust,
            sitecode=site,
            time=at,
            source=SOURCE.format(trust=trust),
            event_id=self._id(),
        )
        self.plan.events.append(
            Planned(
                publish_at or at,
                event.subject,
                event.to_json(),
                str(event.id),
                event.event_type.name,
            )
        )

    def days(self, low: float, high: float) -> timedelta:
        return timedelta(days=self.rng.uniform(low, high))

    def run(self) -> Plan:
        sites = [(t, s) for t in self.trusts for s in t.sites]
        # Bigger trusts enrol more: a weight per trust drawn once.
        weights = [self.rng.uniform(0.5, 2.0) for _ in sites]
        deliverers: list[tuple[str, str, datetime]] = []
        for n in range(self.o.clinicians):
            _, site = self.rng.choices(sites, weights)[0]
            deliverers += self.clinician(n, site)
        self.classes_and_patients(deliverers)
        self.anomalies()
        self.plan.events.sort(key=lambda p: p.publish_at)
        return self.plan

    def clinician(self, n: int, site: str) -> list[tuple[str, str, datetime]]:
        ref = self._ref("c", n)
        profession = self.rng.choices(list(PROFESSIONS), list(PROFESSIONS.values()))[0]
        enrolled = self.o.start + self.days(0, 150)
        email = f"clinician{n}@example.nhs.uk" if self.rng.random() < 0.8 else None
        self.plan.clinicians += 1
        publish_enrol = None
        begins = self.rng.random() < BEGIN_SHARE
        if begins and self.rng.random() < self.o.out_of_order_rate / BEGIN_SHARE:
            publish_enrol = enrolled + timedelta(days=40)  # arrives after its module events
        self.add(
            ev.ClinicianEnrolled(
                clinician_ref=ref,
                profession=profession,
                course_version=self.o.course_version,
                contact_email=email,
            ),
            site,
            enrolled,
            publish_enrol,
        )
        if not begins:
            return []
        self.plan.begun += 1
        completes = self.rng.random() < COMPLETE_SHARE_OF_BEGUN
        done = len(self.modules) if completes else self.rng.randrange(0, len(self.modules))
        at = enrolled + self.days(0.5, 20)
        for i, module in enumerate(self.modules[: max(done, 1)]):
            self.add(ev.ModuleStarted(clinician_ref=ref, module_id=module), site, at)
            at += self.days(0.05, 6)
            if i < done:
                self.add(
                    ev.ModuleCompleted(
                        clinician_ref=ref,
                        module_id=module,
                        quiz_score=round(self.rng.uniform(60, 100), 1),
                    ),
                    site,
                    at,
                )
            at += self.days(0, 4)
        if not completes:
            return []
        self.plan.completed += 1
        intends = self.rng.random() < 0.8
        self.add(
            ev.IntentionReported(
                clinician_ref=ref,
                intends_to_deliver=intends,
                confidence=self.rng.randint(6, 10) if intends else self.rng.randint(0, 5),
            ),
            site,
            at,
        )
        delivering_from: datetime | None = None
        for months in (4, 12):
            report_at = at + timedelta(days=30.4 * months) + self.days(-7, 14)
            delivering = intends and self.rng.random() < (0.55 if months == 4 else 0.65)
            if delivering and report_at <= self.o.end:
                delivering_from = delivering_from or report_at - timedelta(days=60)
            self.add(
                ev.DeliveryReported(
                    clinician_ref=ref,
                    delivering=delivering,
                    groups_delivered=self.rng.randint(1, 4) if delivering else 0,
                ),
                site,
                report_at,
            )
        return [(ref, site, delivering_from)] if delivering_from else []

    def classes_and_patients(self, deliverers: list[tuple[str, str, datetime]]) -> None:
        classes: list[tuple[str, str, datetime]] = []
        for ref, site, start in deliverers:
            for _ in range(self.rng.randint(1, 3)):
                class_id = self._ref("class", len(classes))
                begins = start + self.days(0, 90)
                if begins > self.o.end:
                    continue
                self.add(
                    ev.ClassStarted(class_id=class_id, facilitator_refs=[ref], planned_sessions=6),
                    site,
                    begins,
                )
                classes.append((class_id, site, begins))
        self.plan.classes = len(classes)
        if not classes:
            return
        site_measures = {site: self.rng.choice(MEASURE_SETS) for _, site, _ in classes}
        for n in range(self.o.patients):
            class_id, site, begins = self.rng.choice(classes)
            self.patient(n, class_id, site, begins, site_measures[site])

    def patient(
        self, n: int, class_id: str, site: str, class_start: datetime, measures: tuple[Measure, ...]
    ) -> None:
        ref = self._ref("p", n)
        baseline_at = class_start - self.days(1, 14)
        baseline = {
            m: self._score(m, SCORE_MODEL[m][0] + self.rng.gauss(0, SCORE_MODEL[m][1]))
            for m in measures
        }
        self.plan.patients += 1
        self.add(
            ev.PatientAssessed(
                patient_ref=ref,
                class_id=class_id,
                timepoint=Timepoint.BASELINE,
                measures=ev.Measures(**baseline),
            ),
            site,
            baseline_at,
        )
        # The effect builds over the group sessions and holds to 12 months.
        for timepoint, after, effect in (
            (Timepoint.GROUP_END, 49, 0.7),
            (Timepoint.MONTH_3, 91, 0.9),
            (Timepoint.MONTH_12, 364, 1.0),
        ):
            if self.rng.random() >= FOLLOW_UP_RESPONSE[timepoint]:
                continue
            at = baseline_at + timedelta(days=after) + self.days(-10, 20)
            values = {
                m: self._score(
                    m, v + effect * SCORE_MODEL[m][2] + self.rng.gauss(0, SCORE_MODEL[m][3])
                )
                for m, v in baseline.items()
            }
            self.add(
                ev.PatientAssessed(
                    patient_ref=ref,
                    class_id=class_id,
                    timepoint=timepoint,
                    measures=ev.Measures(**values),
                ),
                site,
                at,
            )

    def _score(self, measure: Measure, value: float) -> int | float:
        spec = MEASURES[measure]
        bounded = min(max(value, spec.minimum), spec.maximum)
        return round(bounded) if spec.integer else round(bounded, 1)

    def anomalies(self) -> None:
        """A few re-sent duplicates and a few events a careless integrator gets wrong."""
        valid = list(self.plan.events)
        for original in valid:
            if self.rng.random() < self.o.duplicate_rate:
                self.plan.events.append(
                    Planned(
                        original.publish_at + self.days(0, 2),
                        original.subject,
                        original.body,
                        original.msg_id,
                        original.name,
                        duplicate=True,
                    )
                )
        for _ in range(round(len(valid) * self.o.invalid_rate)):
            self.plan.events.append(self.invalid(self.rng.choice(valid)))

    def invalid(self, template: Planned) -> Planned:
        """An event breaking the contract, based on a valid one (dead-lettered by services)."""
        raw: dict[str, Any] = json.loads(template.body)
        raw["id"] = str(self._id())
        kind = self.rng.randrange(3)
        subject = template.subject
        if kind == 0:  # a naive timestamp
            raw["time"] = raw["time"][:19]
        elif kind == 1 and raw["type"].endswith("patient.assessed.v1"):
            raw["data"]["measures"] = {"rmdq": 31}  # outside 0 to 24
        elif kind == 1:
            raw["data"]["unexpected_field"] = True
        else:  # a site of another trust
            raw["sitecode"] = "ZZZ01"
        publish_at = datetime.fromisoformat(json.loads(template.body)["time"])
        return Planned(
            publish_at, subject, json.dumps(raw).encode(), raw["id"], template.name, valid=False
        )


def plan_rollout(options: SimulationOptions, trusts: list[Trust], modules: list[str]) -> Plan:
    """Every event of the simulated rollout, in publishing order."""
    if not modules:
        raise ValueError("the course version has no modules")
    return _Planner(options, trusts, modules).run()


def fresh_completion(now: datetime, modules: list[str], site: str = "RTH08") -> list[Planned]:
    """One clinician who enrolled a week ago and completed the course days ago, so the
    demo has a clinician whose intention survey is open now (a fixed-date rollout's surveys
    have all closed). Same day, same ids: a second `ibest up --demo` that day adds nothing."""
    day = now.date().isoformat()
    ref = "c-fresh-" + hashlib.sha256(f"fresh:{day}".encode()).hexdigest()[:20]
    midnight = datetime(now.year, now.month, now.day, tzinfo=UTC)
    trust, start = site[:3], midnight - timedelta(days=7)
    steps: list[tuple[ev.Payload, datetime]] = [
        (
            ev.ClinicianEnrolled(
                clinician_ref=ref, profession=ev.Profession.PHYSIOTHERAPIST, course_version="1"
            ),
            start,
        )
    ]
    for i, module in enumerate(modules):
        at = start + timedelta(hours=2 + 12 * i)
        steps.append((ev.ModuleStarted(clinician_ref=ref, module_id=module), at))
        steps.append(
            (
                ev.ModuleCompleted(clinician_ref=ref, module_id=module, quiz_score=90.0),
                at + timedelta(hours=1),
            )
        )
    out = []
    for n, (payload, at) in enumerate(steps):
        event = new_event(
            payload,
            trustcode=trust,
            sitecode=site,
            time=at,
            source=SOURCE.format(trust=trust),
            event_id=uuid.uuid5(NAMESPACE, f"fresh:{day}:{n}"),
        )
        out.append(
            Planned(at, event.subject, event.to_json(), str(event.id), event.event_type.name)
        )
    return out
