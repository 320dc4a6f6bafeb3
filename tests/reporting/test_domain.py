"""Aggregation and disclosure control without servers (property-based where it matters)."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.reporting.domain.counted import Counted, EntityId, fold_counted, merge
from services.reporting.domain.disclosure import (
    control_count,
    control_mean,
    control_rate,
    published_figures,
    rate_places,
)
from services.reporting.domain.facts import (
    CLINICIANS,
    class_contribution,
    clinician_contribution,
    fact_of,
    notification_contribution,
    patient_contribution,
)
from services.reporting.domain.figures import (
    FOLLOW_UP_NAMES,
    PROFESSIONS,
    STAGES,
    SURVEY_NAMES,
    OutcomeTotals,
    Totals,
    fold_site,
    raw_figures,
    total,
)
from services.reporting.domain.funnel import Proportion, funnel_point, limit_curve, limits
from services.reporting.domain.tables import report_rows, to_csv
from services.reporting.domain.working import ClassSpan
from shared.envelope import new_event
from shared.events import (
    ClassStarted,
    NotificationFailed,
    NotificationSent,
    RecipientKind,
    ReminderKind,
)

T0 = datetime(2025, 1, 10, 9, tzinfo=UTC)


def at(days: int) -> datetime:
    return T0 + timedelta(days=days)


def enrolled(site: str, days: int, cv: str = "1", profession: str = "nurse") -> dict[str, Any]:
    return {
        "k": "enrolled",
        "t": at(days),
        "trust": site[:3],
        "site": site,
        "cv": cv,
        "profession": profession,
    }


def derived(kind: str, cv: str = "1") -> dict[str, Any]:
    return {"k": kind, "t": at(1), "trust": "RTH", "site": "RTH08", "cv": cv}


def test_clinician_waits_for_enrolment_and_stages_are_cumulative() -> None:
    assert clinician_contribution({"s": derived("started")}) is None
    c = clinician_contribution({"c": derived("completed"), "e": enrolled("RTH08", 0)})
    assert c is not None and c["started"] and c["completed"] and c["enrolled"]


def test_clinician_counts_at_latest_enrolment_against_its_version() -> None:
    facts = {
        "e1": enrolled("RTH01", 0, "1", "physiotherapist"),
        "c1": derived("completed", "1"),
        "e2": enrolled("RXF01", 30, "2", "doctor"),
    }
    c = clinician_contribution(facts)
    assert c == {
        "trust": "RXF",
        "site": "RXF01",
        "profession": "doctor",
        "enrolled": True,
        "started": False,
        "completed": False,
        "intending": False,
        "delivering": False,
        "facilitating": False,
        "surveys": {},
    }


def test_latest_report_by_event_time_wins() -> None:
    facts = {
        "e": enrolled("RTH08", 0),
        "i2": {"k": "intention", "t": at(20), "value": False},
        "i1": {"k": "intention", "t": at(10), "value": True},
        "d1": {"k": "delivery", "t": at(5), "value": True},
    }
    c = clinician_contribution(facts)
    assert c is not None and not c["intending"] and c["delivering"]


def assessed(tp: str, days: int, site: str = "RTH08") -> dict[str, Any]:
    return {"k": "assessed", "tp": tp, "t": at(days), "trust": site[:3], "site": site}


def outcome(rev: int, change: float, improved: bool, days: int = 100) -> dict[str, Any]:
    return {
        "k": "outcome",
        "tp": "month_3",
        "rev": rev,
        "t": at(days),
        "trust": "RTH",
        "site": "RTH08",
        "measures": {"rmdq": {"change": change, "improved": improved}},
    }


def test_patient_needs_a_baseline_and_highest_revision_wins() -> None:
    assert patient_contribution({"m3": assessed("month_3", 95)}) is None
    facts = {
        "b": assessed("baseline", 0),
        "m3": assessed("month_3", 95),
        "o2": outcome(2, -6, True, days=90),
        "o1": outcome(1, -1, False, days=120),
    }
    p = patient_contribution(facts)
    assert p is not None
    assert p["recorded"] == {"month_3": True, "month_12": False}
    assert p["outcomes"]["month_3"]["rmdq"] == {"change": -6, "improved": True}
    assert p["due"] == {"month_3": "2025-04-11", "month_12": "2026-01-09"}


def test_patient_counts_at_latest_baseline_site() -> None:
    p = patient_contribution(
        {"b1": assessed("baseline", 0, "RTH01"), "b2": assessed("baseline", 3, "RTH08")}
    )
    assert p is not None and p["site"] == "RTH08"


def test_class_counts_at_its_site() -> None:
    assert class_contribution(
        {"x": {"k": "class", "t": at(0), "trust": "RXF", "site": "RXF01"}}
    ) == {"trust": "RXF", "site": "RXF01", "date": "2025-01-10"}


def test_followup_due_depends_on_the_reading_day() -> None:
    patients = [
        patient_contribution({"b": assessed("baseline", 0)}),
        patient_contribution({"b": assessed("baseline", 0), "m": assessed("month_3", 5)}),
    ]
    summary = fold_site("RTH08", "RTH", [], [p for p in patients if p], [])
    t = total([summary])
    before = raw_figures(t, date(2025, 4, 10), with_sites_running=True)
    on_due = raw_figures(t, date(2025, 4, 11), with_sites_running=True)
    assert before["followup_due_month_3"] == 1  # recorded early: due already
    assert on_due["followup_due_month_3"] == 2
    assert on_due["followup_rate_month_3"] == 0.5
    assert on_due["patients_month_3"] == 1 and on_due["patients_baseline"] == 2


def test_fold_is_independent_of_entity_order() -> None:
    patients = []
    for i in range(30):
        facts = {"b": assessed("baseline", i % 7), "o": outcome(1, -0.1 * i, i % 3 == 0)}
        p = patient_contribution(facts)
        assert p is not None
        patients.append(p)
    first = fold_site("RTH08", "RTH", [], patients, [])
    random.Random(1).shuffle(patients)
    assert fold_site("RTH08", "RTH", [], patients, []) == first


VERSIONED = st.lists(
    st.tuples(
        st.sampled_from(["c-1", "c-2", "c-3"]), st.integers(1, 6), st.sampled_from(["RTH08", None])
    ),
    min_size=1,
    max_size=12,
)


@given(VERSIONED, st.randoms(use_true_random=False), st.integers(1, 4))
def test_a_site_record_keeps_each_entitys_newest_version_whatever_the_order(
    writes: list[tuple[str, int, str | None]], rng: random.Random, writers: int
) -> None:
    """Writers merge computed contributions in any order and grouping: the record ends with
    each entity's newest version (the same version is always the same contribution)."""

    def counted(ref: str, v: int, site: str | None) -> Counted:
        return Counted(
            v,
            None
            if site is None
            else {
                "trust": "RTH",
                "site": site,
                "profession": "nurse",
                "enrolled": True,
                "started": v > 2,
                "completed": v > 4,
                "intending": False,
                "delivering": False,
            },
        )

    versions = {(ref, v): site for ref, v, site in writes}  # one contribution per version
    shuffled = [((CLINICIANS, ref), counted(ref, v, site)) for (ref, v), site in versions.items()]
    rng.shuffle(shuffled)
    entries: list[dict[str, Any]] = []
    for i in range(writers):
        batch: dict[EntityId, Counted] = {}
        for entity, c in shuffled[i::writers]:
            if entity not in batch or batch[entity].v < c.v:
                batch[entity] = c
        entries = merge(entries, batch)
    newest = {ref: max(v for r, v in versions if r == ref) for ref, _ in versions}
    assert {e["id"]: e["v"] for e in entries} == newest
    live = [e for e in entries if e["c"] is not None]
    assert fold_counted("RTH08", entries) == fold_site(
        "RTH08", "RTH", [e["c"] for e in live], [], []
    )


def test_control_count_examples() -> None:
    assert [control_count(n) for n in (0, 1, 7, 8, 10, 12, 13, 17, 18)] == [
        0,
        "*",
        "*",
        10,
        10,
        10,
        15,
        15,
        20,
    ]
    assert control_rate(3, 20) == "*" and control_rate(20, 5) == "*"
    assert control_rate(0, 0) is None and control_rate(12, 13) == round(10 / 15, 1)


def test_published_rates_to_the_precision_of_their_rounded_denominator() -> None:
    # Under 100 -> 1 place, 100 to 999 -> 2, 1,000 or more -> 3 (RATE_PLACES).
    assert [rate_places(n) for n in (10, 95, 100, 995, 1000, 20000)] == [1, 1, 2, 2, 3, 3]
    assert control_rate(9, 12) == 1.0  # rounded 10/10
    assert control_rate(200, 301) == round(200 / 300, 2) == 0.67
    assert control_rate(2000, 3001) == 0.667
    assert control_mean(10.0, 7) == "*" and control_mean(-57.0, 12) == -4.75


@given(st.integers(min_value=0, max_value=10_000))
def test_rounding_is_exact(n: int) -> None:
    published = control_count(n)
    if n == 0:
        assert published == 0
    elif n <= 7:
        assert published == "*"
    else:
        assert isinstance(published, int) and published % 5 == 0 and abs(published - n) <= 2


counts = st.integers(min_value=0, max_value=60)


@st.composite
def totals(draw: st.DrawFn) -> Totals:
    t = Totals()
    for stage in STAGES:
        for prof in PROFESSIONS:
            t.clinicians[stage][prof] = draw(counts)
    t.classes_started = draw(counts)
    t.reminders = {"sent": draw(counts), "failed": draw(counts)}
    t.sites_running_classes = draw(counts)
    t.patients_baseline = draw(counts)
    for tp in FOLLOW_UP_NAMES:
        t.recorded[tp] = draw(counts)
        t.pending_due[tp] = {"2025-01-01": draw(counts), "2030-01-01": draw(counts)}
    for m in ("rmdq", "psfs"):
        for tp in ("month_3", "month_12"):
            n = draw(counts)
            t.outcomes[(m, tp)] = OutcomeTotals(
                n,
                [draw(st.floats(-24 * n, 24 * n))],
                draw(st.integers(0, n)),
                [draw(st.floats(0, 576 * n))],
            )
    t.clinicians_facilitating = draw(counts)
    first = date(2024, 1, 1)
    t.class_spans = [
        ClassSpan(first + timedelta(days=a), first + timedelta(days=a + b))
        for a, b in draw(st.lists(st.tuples(st.integers(0, 700), st.integers(0, 700)), max_size=20))
    ]
    for survey in SURVEY_NAMES:
        answered = draw(counts)
        t.surveys[survey] = {
            "answered": answered,
            "delivering": draw(st.integers(0, answered)),
            "pending_due": {"2025-06-01": draw(counts), "2030-01-01": draw(counts)},
        }
    return t


def counts_and_rates(
    published: dict[str, Any], raw: dict[str, Any], path: str = ""
) -> list[tuple[str, Any, Any]]:
    out = []
    for key, value in published.items():
        if isinstance(value, dict):
            out += counts_and_rates(value, raw[key], f"{path}{key}.")
        else:
            out.append((f"{path}{key}", value, raw[key]))
    return out


@settings(max_examples=200, deadline=None)
@given(totals())
def test_no_published_figure_reveals_one_to_seven(t: Totals) -> None:
    today = date(2026, 1, 1)
    published = published_figures(t, today, with_sites_running=True)
    raw = raw_figures(t, today, with_sites_running=True)
    for name, value, exact in counts_and_rates(published, raw):
        leaf = name.rsplit(".", 1)[-1]
        if leaf.startswith(
            (
                "followup_rate",
                "improved_share",
                "mean_change",
                "rmdq_",
                "sites_sustained_rate",
                "clinicians_facilitating_rate",
                "delivery_response_rate",
            )
        ):
            continue
        stage_total = name.split("_by_profession.")[0] if "_by_profession." in name else None
        if stage_total is not None and published[stage_total] == "*":
            assert value == "*", name  # secondary suppression: no make-up of a small group
            continue
        assert value == control_count(exact), name
        assert value == "*" or value == 0 or (value >= 10 and value % 5 == 0), name
    for tp in FOLLOW_UP_NAMES:
        num, den = published[f"patients_{tp}"], published[f"followup_due_{tp}"]
        rate = published[f"followup_rate_{tp}"]
        if den == 0:
            assert rate is None
        elif "*" in (num, den):
            assert rate == "*"
        else:
            assert rate == round(num / den, rate_places(den))  # rounded counts
    for survey in SURVEY_NAMES:
        num, den = (
            published[f"delivery_reported_{survey}"],
            published[f"delivery_survey_due_{survey}"],
        )
        rate = published[f"delivery_response_rate_{survey}"]
        assert (
            rate is None
            if den == 0
            else rate == "*"
            if "*" in (num, den)
            else (rate == round(num / den, rate_places(den)))
        )
    for m, by_tp in published["outcomes"].items():
        for tp, o in by_tp.items():
            n = t.outcome(m, tp).n
            if 1 <= n <= 7:
                assert o["mean_change"] == "*" and o["improved_share"] == "*"
    for tp in FOLLOW_UP_NAMES:
        n = t.outcome("rmdq", tp).n
        names = [
            n_ for n_ in published if n_.startswith("rmdq_improvement_") and n_.endswith(tp)
        ] + (["rmdq_vs_trial_month_12"] if tp == "month_12" else [])
        assert len(names) == 3 + (tp == "month_12")
        for name in names:
            assert published[name] == ("*" if 1 <= n <= 7 else raw[name]), name
        completeness = published[f"rmdq_followup_completeness_{tp}"]
        assert completeness == control_rate(n, t.due(tp, today))
    for period in ("6_months", "12_months"):
        assert published[f"sites_sustained_rate_{period}"] == control_rate(
            raw[f"sites_sustained_{period}"], raw[f"sites_eligible_{period}"]
        )
    assert published["clinicians_facilitating_rate"] == control_rate(
        t.clinicians_facilitating, raw["clinicians_completed"]
    )


def test_funnel_limits_and_flag() -> None:
    lim = limits(0.5, 100)
    assert lim["95"] == (0.5 - 1.96 * 0.05, 0.5 + 1.96 * 0.05)
    assert limits(0.9, 4)["99.8"][1] == 1.0  # clipped
    low = funnel_point("RTH", Proportion(20, 100), 0.5, raw=True)
    assert low["outside_99_8"] is True and low["control_limits"]["99.8"]["lower"] == 0.346
    inside = funnel_point("RTH", Proportion(45, 100), 0.5, raw=True)
    assert inside["outside_99_8"] is False and inside["outside_95"] is False
    hidden = funnel_point("RXF", Proportion(3, 100), 0.5, raw=False)
    assert hidden["value"] == "*" and hidden["denominator"] == 100
    assert hidden["outside_95"] == hidden["outside_99_8"] == "*"


def test_published_funnel_point_is_judged_on_the_raw_value() -> None:
    # The RHM: raw 9/12 = 0.75, national 0.6. Published from rounded 10/10, to one
    # place (1.0); its flags come from 0.75 against the limits for 12, so it is inside, and
    # no limit for the rounded denominator (which 1.0 would exceed) is published with it.
    rhm = funnel_point("RHM", Proportion(9, 12), 0.6, raw=False)
    assert rhm == {
        "trustcode": "RHM",
        "value": 1.0,
        "denominator": 10,
        "outside_95": False,
        "outside_99_8": False,
    }
    # A trust truly outside stays flagged whatever the rounding does to its value.
    low = funnel_point("RNU", Proportion(10, 100), 0.6, raw=False)
    assert low["value"] == 0.1 and low["outside_99_8"] is True and low["outside_95"] is True
    curve = limit_curve(0.6, 130)
    assert curve[0]["denominator"] == 1 and curve[-1]["denominator"] == 150
    at_12 = next(r for r in curve if r["denominator"] == 12)
    lo, hi = limits(0.6, 12)["95"]
    assert at_12 == {
        "denominator": 12,
        "national": 0.6,
        "lower_95": round(lo, 3),
        "upper_95": round(hi, 3),
        "lower_99_8": 0.163,
        "upper_99_8": 1.0,
    }
    assert limit_curve(None, 10) == []


def test_csv_rows_flatten_outcomes_and_keep_suppression() -> None:
    report = {
        "as_of": None,
        "level": "site",
        "trustcode": "RTH",
        "sitecode": "RTH08",
        "figures": {
            "clinicians_enrolled": "*",
            "followup_rate_month_3": None,
            "outcomes": {"rmdq": {"month_3": {"n": 10}}},
        },
    }
    text = to_csv(report_rows(report))
    header, row = text.splitlines()
    assert header == (
        "level,trustcode,sitecode,as_of,clinicians_enrolled,"
        "followup_rate_month_3,outcomes.rmdq.month_3.n"
    )
    assert row == "site,RTH,RTH08,,*,,10"


def test_event_ids_key_facts() -> None:
    event = new_event(
        ClassStarted(class_id="k1", facilitator_refs=["c1"], planned_sessions=6),
        trustcode="RTH",
        sitecode="RTH08",
        source="/t",
        time=T0,
        event_id=uuid.UUID(int=1),
    )
    fact = fact_of(event)
    assert (fact.entity, fact.key, fact.fact_id) == ("classes", "RTH:k1", f"RTH:{uuid.UUID(int=1)}")


def reminder(kind: str, days: int, site: str = "RTH08") -> dict[str, Any]:
    return {"k": kind, "t": at(days), "trust": site[:3], "site": site}


def test_reminder_counts_by_latest_outcome_in_any_order() -> None:
    assert notification_contribution({}) is None
    failed_then_sent = {"f": reminder("failed", 0), "s": reminder("sent", 1, "RTH01")}
    sent_then_failed = {"s": reminder("sent", 0), "f": reminder("failed", 1)}
    resent = {"s1": reminder("sent", 0), "s2": reminder("sent", 4)}
    for facts, expected in (
        (failed_then_sent, {"trust": "RTH", "site": "RTH01", "outcome": "sent"}),
        (sent_then_failed, {"trust": "RTH", "site": "RTH08", "outcome": "failed"}),
        (resent, {"trust": "RTH", "site": "RTH08", "outcome": "sent"}),
    ):
        assert notification_contribution(facts) == expected
        assert notification_contribution(dict(reversed(facts.items()))) == expected
    # Same event time: sent wins whatever the event ids.
    tie = {"a": reminder("failed", 2), "b": reminder("sent", 2), "c": reminder("failed", 2)}
    assert notification_contribution(tie) == {"trust": "RTH", "site": "RTH08", "outcome": "sent"}


def test_reminders_fold_into_controlled_counts() -> None:
    contributions = [notification_contribution({"x": reminder("sent", 0)})] * 13 + [
        notification_contribution({"x": reminder("failed", 0)})
    ] * 3
    summary = fold_site("RTH08", "RTH", [], [], [], [c for c in contributions if c])
    assert summary["reminders"] == {"sent": 13, "failed": 3}
    t = total([summary, fold_site("RTH01", "RTH", [], [], [])])
    raw = raw_figures(t, date(2025, 4, 1), with_sites_running=True)
    assert (raw["reminders_sent"], raw["reminders_failed"]) == (13, 3)
    published = published_figures(t, date(2025, 4, 1), with_sites_running=True)
    assert (published["reminders_sent"], published["reminders_failed"]) == (15, "*")
    # A summary stored before reminders were counted still totals (as none).
    old = {k: v for k, v in summary.items() if k != "reminders"}
    assert total([old]).reminders == {"sent": 0, "failed": 0}


def test_notification_events_are_keyed_by_notification_id() -> None:
    common: dict[str, Any] = {
        "notification_id": "n-7",
        "kind": ReminderKind.TRAINING_START,
        "recipient_kind": RecipientKind.CLINICIAN,
        "recipient_ref": "c-1",
        "template_id": "t1",
        "channel": "log",
    }
    sent = new_event(
        NotificationSent(**common, sent_at=T0),
        trustcode="RTH",
        sitecode="RTH08",
        source="/t",
        time=T0,
        event_id=uuid.UUID(int=2),
    )
    failed = new_event(
        NotificationFailed(**common, reason="bounced"),
        trustcode="RTH",
        sitecode="RTH08",
        source="/t",
        time=at(1),
        event_id=uuid.UUID(int=3),
    )
    facts = {f.fact_id: f.fact for f in map(fact_of, (sent, failed))}
    assert {(f.entity, f.key) for f in map(fact_of, (sent, failed))} == {("notifications", "n-7")}
    assert notification_contribution(facts) == {
        "trust": "RTH",
        "site": "RTH08",
        "outcome": "failed",
    }
