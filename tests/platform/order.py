"""Generated histories and deliveries for the order-independence property (issue 25).

A history is what trusts send over at least 12 months: several clinicians (re-enrolments on
another version and at another site, modules in any order, some completed twice, intention
and delivery reports), patients with baseline and follow-up corrections, classes with
facilitators (announced again). A delivery is one way the platform may receive it: a
permutation, redelivered duplicates and batch boundaries. What the platform ends with
(figures at every level, current and monthly, raw and published, and the latest derived
events) must be the same for every delivery: `outcome_of` computes it.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from shared.envelope import AnyEvent
from tests.harness import ID_KEY, cloud_event
from tests.reporting import dataset as ds

CATALOGUE = ds.CATALOGUE
"""The shipped version 1 (8 required modules) and a version 2 with one module."""
V1 = list(CATALOGUE.courses[0].required_modules)
V2 = ["v2-m01"]
SITES = ["RTH08", "RTH01", "RXF01"]
T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
DAYS = 430
NOW = T0 + timedelta(days=DAYS + 10)
"""When the figures are read (every event is before it)."""

Raw = dict[str, Any]


def when(day: int, hour: int) -> datetime:
    return T0 + timedelta(days=day, hours=hour)


days = st.integers(0, DAYS)
hours = st.sampled_from([0, 3])  # few distinct times: ties happen
sites = st.sampled_from(SITES)


@st.composite
def clinician(draw: st.DrawFn, ref: str) -> list[Raw]:
    site = draw(sites)

    def ev(name: str, day: int, where: str = site, **data: Any) -> Raw:
        return cloud_event(
            name,
            {"clinician_ref": ref, **data},
            trust=where[:3],
            site=where,
            time=when(day, draw(hours)),
        )

    out = [ev("clinician.enrolled", draw(days), profession="nurse", course_version="1")]
    if draw(st.booleans()):  # a re-enrolment: another site, perhaps another version
        out.append(
            ev(
                "clinician.enrolled",
                draw(days),
                draw(sites),
                profession="physiotherapist",
                course_version=draw(st.sampled_from(["1", "2"])),
            )
        )
    for module in [*V1, *V2]:
        if draw(st.integers(0, 3)) == 0:
            continue
        if draw(st.booleans()):
            out.append(ev("module.started", draw(days), module_id=module))
        for _ in range(draw(st.integers(0, 2))):  # completed twice sometimes
            out.append(ev("module.completed", draw(days), module_id=module))
    for _ in range(draw(st.integers(0, 1))):
        out.append(
            ev(
                "clinician.intention_reported",
                draw(days),
                intends_to_deliver=draw(st.booleans()),
                confidence=7,
            )
        )
    for _ in range(draw(st.integers(0, 2))):  # survey answers (or reports outside windows)
        out.append(
            ev(
                "clinician.delivery_reported",
                draw(days),
                delivering=draw(st.booleans()),
                groups_delivered=1,
            )
        )
    return out


@st.composite
def patient(draw: st.DrawFn, ref: str) -> list[Raw]:
    site = draw(sites)
    base = draw(st.integers(0, DAYS - 100))

    def assessed(timepoint: str, day: int, where: str = site) -> Raw:
        return cloud_event(
            "patient.assessed",
            {
                "patient_ref": ref,
                "timepoint": timepoint,
                "measures": {"rmdq": draw(st.integers(0, 24))},
            },
            trust=where[:3],
            site=where,
            time=when(min(day, DAYS), draw(hours)),
        )

    out = [assessed("baseline", base)]
    if draw(st.booleans()):  # a baseline correction, perhaps at another site of the trust
        out.append(
            assessed(
                "baseline",
                base + draw(st.integers(0, 2)),
                draw(st.sampled_from([s for s in SITES if s[:3] == site[:3]])),
            )
        )
    if draw(st.booleans()):
        out.append(assessed("month_3", base + 91 + draw(st.integers(-10, 30))))
        if draw(st.booleans()):  # a follow-up correction
            out.append(assessed("month_3", base + 95 + draw(st.integers(0, 10))))
    return out


@st.composite
def class_started(draw: st.DrawFn, class_id: str, refs: list[str]) -> list[Raw]:
    site = draw(sites)
    facilitators = draw(
        st.lists(st.sampled_from([*refs, "f" * 32]), min_size=1, max_size=2, unique=True)
    )
    first = draw(days)
    starts = [first] + ([first + draw(st.integers(0, 200))] if draw(st.booleans()) else [])
    return [
        cloud_event(
            "class.started",
            {"class_id": class_id, "facilitator_refs": facilitators, "planned_sessions": 6},
            trust=site[:3],
            site=site,
            time=when(min(day, DAYS), draw(hours)),
        )
        for day in starts
    ]


@st.composite
def histories(
    draw: st.DrawFn,
    clinicians: tuple[int, int] = (2, 4),
    patients: tuple[int, int] = (1, 3),
    classes: tuple[int, int] = (0, 2),
) -> list[Raw]:
    """One generated history, spread over at least 12 months (its first and last events are
    more than a year apart); how many clinicians, patients and classes within the ranges."""
    refs = [f"{i:x}" * 32 for i in range(1, draw(st.integers(*clinicians)) + 1)]
    out: list[Raw] = []
    for ref in refs:
        out += draw(clinician(ref))
    for p in range(draw(st.integers(*patients))):
        out += draw(patient(f"pt-{p}"))
    for c in range(draw(st.integers(*classes))):
        out += draw(class_started(f"class-{c}", refs))
    # Anchors: the history spans 14 months whatever was drawn.
    out.append(
        cloud_event(
            "class.started",
            {"class_id": "anchor-first", "facilitator_refs": ["f" * 32], "planned_sessions": 6},
            trust="RXF",
            site="RXF01",
            time=when(0, 0),
        )
    )
    out.append(
        cloud_event(
            "class.started",
            {"class_id": "anchor-last", "facilitator_refs": ["f" * 32], "planned_sessions": 6},
            trust="RXF",
            site="RXF01",
            time=when(DAYS, 0),
        )
    )
    return out


def time_ordered(events: list[AnyEvent]) -> list[AnyEvent]:
    """The history as live operation would deliver it in a perfect world."""
    return sorted(events, key=lambda e: (e.time, e.trustcode, str(e.id)))


def delivery(events: list[AnyEvent], rng: random.Random) -> Iterator[list[AnyEvent]]:
    """One way of receiving `events`: shuffled, some delivered again, in batches of 1 to 9."""
    arranged = [*events, *rng.sample(events, min(len(events), rng.randint(0, 6)))]
    rng.shuffle(arranged)
    i = 0
    while i < len(arranged):
        size = rng.randint(1, 9)
        yield arranged[i : i + size]
        i += size


CLINICIAN_EVENTS = {
    "clinician.enrolled",
    "module.started",
    "module.completed",
    "clinician.intention_reported",
    "clinician.delivery_reported",
}
OUTCOME_EVENTS = {"patient.assessed", "class.started"}


def latest_facts(published: list[AnyEvent]) -> dict[tuple[str, ...], tuple[Any, ...]]:
    """The latest derived fact of each clinician and course version (training started,
    completed) and of each patient and timepoint (outcome): its time, place and data, the
    revision aside (how many revisions it took may depend on the order; what the latest
    says may not)."""
    best: dict[tuple[str, ...], AnyEvent] = {}
    for e in published:
        d = e.data
        if e.event_type.name == "outcome.recorded":
            key: tuple[str, ...] = (e.event_type.name, e.trustcode, d.patient_ref, str(d.timepoint))
        else:
            key = (e.event_type.name, d.clinician_ref, d.course_version)
        if key not in best or (d.revision or 1) > (best[key].data.revision or 1):
            best[key] = e
    return {
        k: (e.time, e.trustcode, e.sitecode, e.data.model_dump(mode="json", exclude={"revision"}))
        for k, e in best.items()
    }


async def through_fakes(
    events: list[AnyEvent], rng: random.Random | None
) -> tuple[list[AnyEvent], list[AnyEvent]]:
    """Enrolment and outcomes on their in-memory fakes, receiving `events` as delivered
    (time-ordered one by one when `rng` is None); what each published."""
    from ibest.backbone.outbox import OutboxRelay, OutboxSettings
    from services.enrolment.application import EnrolmentService
    from services.outcomes.application import OutcomesService
    from services.outcomes.settings import OutcomesSettings
    from tests.fakes.enrolment import FakeClinicianRepository
    from tests.fakes.outcomes import FakeOutcomesRepository
    from tests.fakes.publisher import FakePublisher

    clinicians, derived = FakeClinicianRepository(), FakePublisher()
    relay = OutboxRelay(clinicians.outbox, derived, "enrolment", OutboxSettings(0.01, 500))
    enrolment = EnrolmentService(clinicians, relay, CATALOGUE, id_key=ID_KEY)
    outcomes_published = FakePublisher()
    outcomes = OutcomesService(
        FakeOutcomesRepository(), outcomes_published, lambda: NOW, OutcomesSettings(), id_key=ID_KEY
    )
    batches = delivery(events, rng) if rng else ([e] for e in time_ordered(events))
    for batch in batches:
        mine = [e for e in batch if e.event_type.name in CLINICIAN_EVENTS]
        if mine:
            await enrolment.apply_many(mine)
        theirs = [e for e in batch if e.event_type.name in OUTCOME_EVENTS]
        if theirs:
            await outcomes.apply_many(theirs)
    return derived.published, outcomes_published.published


async def figures_of(events: list[AnyEvent], rng: random.Random | None) -> dict[str, Any]:
    """Reporting on its in-memory store, receiving `events` as delivered: every current
    report and every monthly series, raw and published, at every level."""
    from services.reporting.application import ReportingService
    from services.reporting.checks import NotFound
    from services.reporting.domain.facts import CONSUMES
    from services.reporting.reports import Reporting
    from tests.fakes.reporting import FakeGenerationStore

    events = [e for e in events if e.event_type.name in CONSUMES]
    store = FakeGenerationStore()
    service, reports = ReportingService(store), Reporting(store, lambda: NOW, [])
    if rng is None:
        for event in time_ordered(events):
            await service.apply_many([event])
    else:
        for batch in delivery(events, rng):
            await service.apply_many(batch)
    out: dict[str, Any] = {}

    async def answer(name: str, read: Awaitable[dict[str, Any]]) -> None:
        try:
            out[name] = await read
        except NotFound as exc:  # a place nothing was ever counted at
            out[name] = str(exc)

    for raw in (True, False):
        await answer(f"national {raw}", reports.national(raw))
        await answer(f"national months {raw}", reports.months.report(None, None, raw, None, None))
        for trust in sorted({s[:3] for s in SITES}):
            await answer(f"{trust} {raw}", reports.trust(trust, raw))
            await answer(
                f"{trust} months {raw}", reports.months.report(trust, None, raw, None, None)
            )
            for site in (s for s in SITES if s[:3] == trust):
                await answer(f"{site} {raw}", reports.site(trust, site, raw))
                await answer(
                    f"{site} months {raw}", reports.months.report(trust, site, raw, None, None)
                )
    return out


async def outcome_of(events: list[AnyEvent], rng: random.Random | None) -> dict[str, Any]:
    """Everything the platform ends with after receiving `events` as delivered."""
    derived, outcomes = await through_fakes(events, rng)
    return {
        "latest derived": latest_facts([*derived, *outcomes]),
        "figures": await figures_of([*events, *derived, *outcomes], rng),
    }
