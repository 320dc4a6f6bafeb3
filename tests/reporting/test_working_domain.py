"""Is it working? The RMDQ interval and verdict at their edges, the sustained-site rule at
its day boundaries, and facilitators joined to clinicians (pure domain, no servers)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import Any

from services.reporting.adapters.metrics import metric_families
from services.reporting.domain.disclosure import published_figures
from services.reporting.domain.facts import (
    CLINICIANS,
    class_contribution,
    clinician_contribution,
    facts_of,
)
from services.reporting.domain.figures import fold_site, raw_figures, total
from services.reporting.domain.funnel import comparison_point, improvement_of
from services.reporting.domain.tables import report_rows, to_csv
from services.reporting.domain.trial import BEST_TRIAL, Interval
from services.reporting.domain.working import (
    ClassSpan,
    against_trial,
    improvement,
    sites_sustained,
    verdict,
)
from shared.envelope import new_event
from shared.events import ClassStarted

TODAY = date(2026, 1, 15)


def interval_of(improvements: list[int]) -> dict[str, Any]:
    """The figures of patients with these improvements (change = -improvement)."""
    changes = [-float(x) for x in improvements]
    return against_trial(
        "month_12", len(changes), math.fsum(changes), math.fsum(c * c for c in changes)
    )


def test_the_trial_is_one_reviewed_record() -> None:
    assert BEST_TRIAL.rmdq_improvement == Interval(2.4, 1.89, 2.84)
    assert BEST_TRIAL.followup_completeness == 0.85
    assert BEST_TRIAL.timepoint == "month_12"


def test_interval_of_eight_patients_by_hand() -> None:
    # Improvements 0..7: mean 3.5; squared deviations 2 x (12.25 + 6.25 + 2.25 + 0.25) = 42;
    # sample variance 42 / 7 = 6; half width 1.96 x sqrt(6) / sqrt(8) = 1.6974.
    found = improvement(8, -28.0, float(sum(x * x for x in range(8))))
    assert found is not None and found.mean == 3.5
    assert found.low is not None and found.high is not None
    assert math.isclose(found.high - found.mean, 1.96 * math.sqrt(6) / math.sqrt(8))
    assert interval_of(list(range(8))) == {
        "rmdq_improvement_month_12": 3.5,
        "rmdq_improvement_ci_low_month_12": 1.8,
        "rmdq_improvement_ci_high_month_12": 5.2,
        "rmdq_vs_trial_month_12": "consistent",
    }


def test_identical_scores_give_a_zero_width_interval() -> None:
    assert interval_of([5] * 8) == {
        "rmdq_improvement_month_12": 5.0,
        "rmdq_improvement_ci_low_month_12": 5.0,
        "rmdq_improvement_ci_high_month_12": 5.0,
        "rmdq_vs_trial_month_12": "above",
    }
    assert interval_of([1] * 8)["rmdq_vs_trial_month_12"] == "below"
    none_improved = interval_of([0] * 9)
    assert none_improved["rmdq_improvement_month_12"] == 0.0
    assert str(none_improved["rmdq_improvement_ci_low_month_12"]) == "0.0"  # never -0.0


def test_intervals_touching_the_trials_band_are_consistent() -> None:
    # -3 x 5, 0, 5, 5: mean -0.625, squared deviations 91.875, variance 13.125,
    # half width 1.96 x 3.6228 / 2.8284 = 2.5105: upper limit 1.8855, shown 1.89.
    touching_low = interval_of([-3, -3, -3, -3, -3, 0, 5, 5])
    assert touching_low["rmdq_improvement_ci_high_month_12"] == 1.89
    assert touching_low["rmdq_vs_trial_month_12"] == "consistent"
    # -3 x 4, -1, 2, 3, 5: upper limit 1.8762, shown 1.88: under the band.
    under = interval_of([-3, -3, -3, -3, -1, 2, 3, 5])
    assert under["rmdq_improvement_ci_high_month_12"] == 1.88
    assert under["rmdq_vs_trial_month_12"] == "below"
    # -2, 3, 6, 6, 6, 7, 7, 7: mean 5, squared deviations 68, variance 9.714,
    # half width 2.1598: lower limit 2.8402, shown 2.84.
    touching_high = interval_of([-2, 3, 6, 6, 6, 7, 7, 7])
    assert touching_high["rmdq_improvement_ci_low_month_12"] == 2.84
    assert touching_high["rmdq_vs_trial_month_12"] == "consistent"
    # -1, 3, 5, 5, 6, 6, 6, 7: lower limit 2.8510, shown 2.85: over the band.
    over = interval_of([-1, 3, 5, 5, 6, 6, 6, 7])
    assert over["rmdq_improvement_ci_low_month_12"] == 2.85
    assert over["rmdq_vs_trial_month_12"] == "above"
    band = BEST_TRIAL.rmdq_improvement
    assert verdict(0.5, band.low, band) == "consistent"
    assert verdict(band.high, 4.0, band) == "consistent"
    assert verdict(0.5, 1.884, band) == "below" and verdict(2.846, 4.0, band) == "above"


def test_one_patient_has_a_mean_but_no_interval_and_nobody_nothing() -> None:
    assert interval_of([4]) == {
        "rmdq_improvement_month_12": 4.0,
        "rmdq_improvement_ci_low_month_12": None,
        "rmdq_improvement_ci_high_month_12": None,
        "rmdq_vs_trial_month_12": None,
    }
    assert set(interval_of([]).values()) == {None}
    # Month 3 is an early signal: no verdict against the trial's 12-month result.
    assert list(against_trial("month_3", 0, 0.0, 0.0)) == [
        "rmdq_improvement_month_3",
        "rmdq_improvement_ci_low_month_3",
        "rmdq_improvement_ci_high_month_3",
    ]


def test_sustained_at_182_and_364_days() -> None:
    first = date(2025, 1, 10)

    def site(last_after: int, today_after: int) -> dict[str, tuple[int, int]]:
        return sites_sustained(
            [ClassSpan(first, first + timedelta(days=last_after))],
            first + timedelta(days=today_after),
        )

    assert site(182, 181)["6_months"] == (0, 0)  # 181 days passed: not yet eligible
    assert site(182, 182)["6_months"] == (1, 1)  # eligible, and a class on day 182
    assert site(181, 200)["6_months"] == (0, 1)  # its second class came a day too soon
    assert site(363, 363) == {"6_months": (1, 1), "12_months": (0, 0)}
    assert site(364, 364) == {"6_months": (1, 1), "12_months": (1, 1)}
    assert site(363, 400)["12_months"] == (0, 1)


def class_started(class_id: str, refs: list[str], when: datetime, site: str = "RTH08") -> Any:
    return new_event(
        ClassStarted(class_id=class_id, facilitator_refs=refs, planned_sessions=6),
        trustcode=site[:3],
        sitecode=site,
        source="/t",
        time=when,
    )


def test_class_start_names_its_facilitators_on_their_clinicians() -> None:
    event = class_started("k-1", ["c-1", "c-2", "c-1"], datetime(2025, 3, 1, 9, tzinfo=UTC))
    facts = facts_of(event)
    assert [(f.entity, f.key, f.fact_id) for f in facts] == [
        ("classes", "RTH:k-1", f"RTH:{event.id}"),
        (CLINICIANS, "c-1", f"RTH:{event.id}"),
        (CLINICIANS, "c-2", f"RTH:{event.id}"),
    ]
    assert not any(f.places for f in facts[1:])  # naming a facilitator never moves them
    enrolled = {
        "k": "enrolled",
        "t": datetime(2025, 1, 1, tzinfo=UTC),
        "trust": "RXF",
        "site": "RXF01",
        "cv": "1",
        "profession": "nurse",
    }
    completed = {
        "k": "completed",
        "t": datetime(2025, 2, 1, tzinfo=UTC),
        "trust": "RXF",
        "site": "RXF01",
        "cv": "1",
    }
    named = {facts[1].fact_id: facts[1].fact}
    facilitating = clinician_contribution({"e": enrolled, "c": completed, **named})
    assert facilitating is not None and facilitating["facilitating"] is True
    assert facilitating["site"] == "RXF01"  # at the clinician's place, not the class's
    not_completed = clinician_contribution({"e": enrolled, **named})
    assert not_completed is not None and not_completed["facilitating"] is False
    assert clinician_contribution(named) is None  # never enrolled: counts nowhere


def test_a_class_starts_at_its_earliest_start_at_its_site() -> None:
    facts = {
        f"x{i}": {
            "k": "class",
            "t": datetime(2025, m, d, 23, 30, tzinfo=UTC),
            "trust": "RTH",
            "site": "RTH08",
        }
        for i, (m, d) in enumerate(((3, 1), (1, 5), (9, 1)))
    }
    # 23:30 UTC on 5 January is still 5 January in London (GMT); re-announcements later.
    assert class_contribution(facts) == {"trust": "RTH", "site": "RTH08", "date": "2025-01-05"}
    summer = {
        "x": {
            "k": "class",
            "t": datetime(2025, 6, 30, 23, 30, tzinfo=UTC),
            "trust": "RTH",
            "site": "RTH08",
        }
    }
    assert class_contribution(summer) == {
        "trust": "RTH",
        "site": "RTH08",
        "date": "2025-07-01",
    }  # BST


def patient(site: str, change: float) -> dict[str, Any]:
    return {
        "trust": site[:3],
        "site": site,
        "recorded": {"month_3": False, "month_12": True},
        "due": {"month_3": "2024-04-01", "month_12": "2024-12-30"},
        "outcomes": {"month_12": {"rmdq": {"change": change, "improved": change <= -5}}},
    }


def summary_of(
    site: str, changes: list[float], *, due_only: int = 0, class_dates: tuple[str, ...] = ()
) -> dict[str, Any]:
    patients = [patient(site, c) for c in changes]
    patients += [
        {**patient(site, 0), "recorded": {"month_3": False, "month_12": False}, "outcomes": {}}
        for _ in range(due_only)
    ]
    classes = [{"trust": site[:3], "site": site, "date": d} for d in class_dates]
    return fold_site(site, site[:3], [], patients, classes)


def test_figures_at_every_level_and_their_control() -> None:
    big = summary_of(
        "RTH08", [-5.0] * 8, due_only=2, class_dates=("2025-01-10", "2025-07-11", "2025-03-01")
    )
    small = summary_of("RTH01", [-1.0, -2.0], class_dates=("2025-06-01",))
    raw = raw_figures(total([big, small]), TODAY, with_sites_running=True)
    # Trust: improvements 5 x 8, 1, 2: mean 4.3; due 12 (10 recorded + 2 due), 10 complete.
    assert raw["rmdq_improvement_month_12"] == 4.3
    assert raw["rmdq_followup_completeness_month_12"] == round(10 / 12, 3)
    # RTH08 first 10 Jan, later class 11 Jul 2025 (182 days): sustained at 6 months, eligible
    # at 12 (10 Jan 2026); RTH01 first 1 Jun 2025: eligible at 6 months only.
    assert (
        raw["sites_sustained_6_months"],
        raw["sites_eligible_6_months"],
        raw["sites_sustained_rate_6_months"],
    ) == (1, 2, 0.5)
    assert (
        raw["sites_sustained_12_months"],
        raw["sites_eligible_12_months"],
        raw["sites_sustained_rate_12_months"],
    ) == (0, 1, 0.0)
    published_small = published_figures(total([small]), TODAY, with_sites_running=False)
    assert published_small["rmdq_improvement_month_12"] == "*"
    assert published_small["rmdq_vs_trial_month_12"] == "*"
    assert published_small["rmdq_followup_completeness_month_12"] == "*"
    assert "sites_sustained_6_months" not in published_small  # trust and national only
    published_big = published_figures(total([big]), TODAY, with_sites_running=False)
    assert published_big["rmdq_improvement_month_12"] == 5.0
    assert published_big["rmdq_vs_trial_month_12"] == "above"
    # 8 of 10 due: both published as 10 (rates come from the rounded counts).
    assert published_big["rmdq_followup_completeness_month_12"] == 1.0
    families = {
        f.name: f
        for f in metric_families(
            [({}, raw), ({"trust": "RTH", "site": "RTH08"}, published_big)], None
        )
    }
    verdicts = {
        (s.labels.get("site", ""), s.labels["verdict"]): s.value
        for s in families["ibest_rmdq_vs_trial_month_12"].samples
    }
    assert verdicts == {
        ("", "consistent"): 0,
        ("", "below"): 0,
        ("", "above"): 1,
        ("RTH08", "consistent"): 0,
        ("RTH08", "below"): 0,
        ("RTH08", "above"): 1,
    }
    assert [s.value for s in families["ibest_sites_sustained_6_months"].samples] == [1]


def test_comparison_points_and_csv() -> None:
    # Improvements 2 and 3, eight each: mean 2.5, variance 16 x 0.25 / 15 = 0.2667,
    # half width 1.96 x 0.5164 / 4 = 0.2530.
    national = improvement_of(total([summary_of("RTH08", [-2.0, -3.0] * 8)]), "month_12")
    assert national == {
        "n": 16,
        "improvement": 2.5,
        "ci_low": 2.25,
        "ci_high": 2.75,
        "vs_trial": "consistent",
    }
    strong = total([summary_of("RXF01", [-6.0] * 8)])
    assert comparison_point("RXF", strong, "month_12", national, raw=False) == {
        "trustcode": "RXF",
        "n": 10,
        "improvement": 6.0,
        "ci_low": 6.0,
        "ci_high": 6.0,
        "vs_trial": "above",
        "vs_national": "above",
    }
    few = comparison_point(
        "R0A", total([summary_of("R0A01", [-6.0] * 3)]), "month_12", national, raw=False
    )
    assert few == {
        "trustcode": "R0A",
        "n": "*",
        "improvement": "*",
        "ci_low": "*",
        "ci_high": "*",
        "vs_trial": "*",
        "vs_national": "*",
    }
    report = {
        "as_of": None,
        "figure": "rmdq_improvement_month_12",
        "trial": {"improvement": 2.4, "ci_low": 1.89, "ci_high": 2.84},
        "national": national,
        "trusts": [few],
    }
    lines = to_csv(report_rows(report)).splitlines()
    assert lines == [
        "level,trustcode,sitecode,as_of,improvement,ci_low,ci_high,n,vs_trial,vs_national",
        "trial,,,,2.4,1.89,2.84,,,",
        "national,,,,2.5,2.25,2.75,16,consistent,",
        "trust,R0A,,,*,*,*,*,*,*",
    ]


def test_a_summary_stored_before_these_figures_still_reads() -> None:
    """Until `ibest reporting rebuild` recomputes it, an older summary (no facilitators, class
    dates or squared changes) reads as none of them rather than failing the report."""
    old = summary_of("RTH08", [-5.0] * 8, class_dates=("2025-01-10",))
    for key in ("clinicians_facilitating", "class_dates"):
        del old[key]
    del old["outcomes"]["rmdq"]["month_12"]["sum_sq_change"]
    raw = raw_figures(total([old]), TODAY, with_sites_running=True)
    assert (raw["clinicians_facilitating"], raw["sites_eligible_6_months"]) == (0, 0)
    assert raw["rmdq_improvement_month_12"] == 5.0
