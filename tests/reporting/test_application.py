"""Every reporting use case on the in-memory fakes (no servers): applying events, every
report and monthly series, the view cache, the rebuild and the input checks. The fake store
summarises as the MongoDB adapter does (tests/reporting/test_store.py holds them together);
the real-server tests prove the pieces work together."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.reporting.application import ReportingService
from services.reporting.checks import Malformed, NotFound
from services.reporting.reports import Reporting, metric_levels
from shared.envelope import AnyEvent
from tests.fakes.reporting import FakeEventHistory, FakeGenerationStore
from tests.reporting import dataset as ds
from tests.reporting.test_months import baselines_due_and_recorded
from tests.reporting.test_service import check_trust_rth, subset

EVENTS = [ds.parsed(e) for e in ds.events()]
"""The dataset, parsed once: trusts RTH, RXF and R0A with its figures by hand."""
JAN, MAR = datetime(2025, 1, 5, 9, tzinfo=UTC), datetime(2025, 3, 1, 9, tzinfo=UTC)


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = ds.NOW

    def __call__(self) -> datetime:
        return self.now


def make(clock: Clock | None = None) -> tuple[ReportingService, Reporting, FakeGenerationStore]:
    store = FakeGenerationStore()
    reports = Reporting(store, clock or Clock(), [])
    return ReportingService(store), reports, store


async def applied(events: list[AnyEvent], batch: int = 25) -> Reporting:
    service, reports, _ = make()
    for start in range(0, len(events), batch):
        await service.apply_many(events[start : start + batch])
    return reports


async def everything(reports: Reporting) -> list[dict[str, Any]]:
    """Every current report, raw: national, every trust and every site."""
    answers = [await reports.national(True), await reports.trusts(True)]
    for trust in answers[1]["figures"]:
        found = await reports.trust(trust, True)
        answers.append(found)
        answers += [await reports.site(trust, s["sitecode"], True) for s in found["sites"]]
    return answers


async def test_the_dataset_gives_its_figures_at_every_level_raw_and_published() -> None:
    reports = await applied(EVENTS)
    national = await reports.national(True)
    assert national["as_of"] == ds.LATEST and national["level"] == "national"
    assert subset(national["figures"], ds.NATIONAL) == ds.NATIONAL
    for (measure, tp), expected in ds.NATIONAL_OUTCOMES.items():
        assert national["figures"]["outcomes"][measure][tp] == expected
    published = (await reports.national(False))["figures"]
    assert subset(published, ds.NATIONAL_PUBLISHED) == ds.NATIONAL_PUBLISHED

    rth = await reports.trust("rth", False)  # lower case is accepted
    assert rth["trustcode"] == "RTH"
    check_trust_rth(rth)
    every_trust = await reports.trusts(False)
    trusts = {t["trustcode"]: t["figures"] for t in every_trust["trusts"]}
    assert every_trust["figures"] == trusts and sorted(trusts) == ["R0A", "RTH", "RXF"]
    assert subset(trusts["RXF"], ds.RXF) == ds.RXF
    assert subset(trusts["R0A"], ds.R0A) == ds.R0A

    site = await reports.site("RTH", "rth08", True)
    assert (site["level"], site["trustcode"], site["sitecode"]) == ("site", "RTH", "RTH08")
    figures = site["figures"]
    assert (figures["patients_baseline"], figures["followup_due_month_3"]) == (32, 29)
    assert figures["followup_rate_month_3"] == 0.724
    raw_rth = await reports.trust("RTH", True)
    assert raw_rth["figures"]["clinicians_enrolled"] == 16
    assert {s["sitecode"]: s["figures"]["clinicians_enrolled"] for s in raw_rth["sites"]} == {
        "RTH01": 3,  # the mover left for RXF01
        "RTH08": 13,
    }


async def test_redelivery_and_any_order_give_the_same_reports() -> None:
    in_order = await everything(await applied(EVENTS, batch=1))
    shuffled = [ds.parsed(raw) for raw, _ in ds.shuffled_with_duplicates(seed=3)]
    service, reports, _ = make()
    for start in range(0, len(shuffled), 30):
        batch = shuffled[start : start + 30]
        await service.apply_many(batch)
        await service.apply_many(batch)  # redelivered after a crash before the ack
    for event in random.Random(4).sample(EVENTS, 20):
        await service.apply_many([event])
    assert await everything(reports) == in_order


async def test_a_corrected_outcome_supersedes_the_earlier_one_in_any_order() -> None:
    baseline = ds.parsed(ds._assessed("p-1", "baseline", "RTH08", JAN))
    first = ds.parsed(ds._outcome("p-1", "RTH08", JAN, MAR, 1, rmdq=(14, 13)))
    corrected = ds.parsed(
        ds._outcome("p-1", "RTH08", JAN, MAR + timedelta(days=1), 2, rmdq=(14, 8))
    )
    for events in ([baseline, first, corrected], [corrected, baseline, first]):
        service, reports, _ = make()
        for event in events:
            await service.apply_many([event])
        outcome = (await reports.national(True))["figures"]["outcomes"]["rmdq"]["month_3"]
        assert outcome == {"n": 1, "mean_change": -6.0, "improved_share": 1.0}


async def test_a_clinician_who_moves_counts_at_the_latest_enrolment_only() -> None:
    service, reports, _ = make()
    await service.apply_many([ds.parsed(ds._enrol("c-1", "nurse", "RTH08", JAN))])
    await service.apply_many([ds.parsed(ds._enrol("c-1", "nurse", "RTH01", MAR))])
    # An older enrolment elsewhere, arriving late: reported with zeros there, as it would
    # be had it arrived in time order (issue 25).
    await service.apply_many(
        [ds.parsed(ds._enrol("c-1", "nurse", "RXF01", JAN + timedelta(days=1)))]
    )
    rth = await reports.trust("RTH", True)
    assert {s["sitecode"]: s["figures"]["clinicians_enrolled"] for s in rth["sites"]} == {
        "RTH01": 1,
        "RTH08": 0,  # left, still reported
    }
    rxf = await reports.trust("RXF", True)
    assert rxf["figures"]["clinicians_enrolled"] == 0
    assert (await reports.national(True))["figures"]["clinicians_enrolled"] == 1


async def test_funnels_and_the_comparison_with_the_trial() -> None:
    reports = await applied(EVENTS)
    funnel = await reports.funnel("followup_rate_month_3", None, None, True)
    assert funnel["national"] == {"value": 0.677, "numerator": 21, "denominator": 31}
    points = {p["trustcode"]: p for p in funnel["trusts"]}
    assert sorted(points) == ["R0A", "RTH", "RXF"] and points["RTH"]["denominator"] == 29
    assert "control_limits" in points["RTH"] and funnel["limits"]
    published = await reports.funnel("followup_rate_month_3", None, None, False)
    assert published["national"] == funnel["national"]  # national exact by default
    assert all("control_limits" not in p for p in published["trusts"])
    improved = await reports.funnel("improved_share", "rmdq", "month_3", True)
    assert improved["national"] == {"value": 0.75, "numerator": 9, "denominator": 12}

    comparison = await reports.funnel("rmdq_improvement_month_3", None, None, True)
    assert comparison["timepoint"] == "month_3" and comparison["trial"]
    assert comparison["national"]["n"] == 12
    by_trust = {t["trustcode"]: t for t in comparison["trusts"]}
    assert by_trust["RTH"]["n"] == 12 and by_trust["RXF"]["n"] == 0
    controlled = await reports.comparison("rmdq_improvement_month_3", False)
    assert {t["trustcode"]: t["n"] for t in controlled["trusts"]}["RTH"] == 10


async def test_monthly_series_at_every_level_narrowed_by_from_and_to() -> None:
    reports = await applied(EVENTS)
    national = await reports.months.report(None, None, False, None, None)
    assert national["months"][0] == "2024-03" and national["months"][-1] == "2025-06"
    assert len(national["months"]) == 16 and national["level"] == "national"
    by_month = baselines_due_and_recorded(national)
    assert by_month["2024-05"] == (9, 9, 0) and by_month["2024-06"] == (9, 9, 9)
    current = (await reports.national(False))["figures"]
    assert all(v[-1] == current[name] for name, v in national["figures"].items())

    rxf = await reports.months.report("RXF", None, True, None, None)
    assert (rxf["level"], rxf["trustcode"], rxf["months"][0]) == ("trust", "RXF", "2025-01")
    assert rxf["figures"]["clinicians_completed"][:2] == [0, 1]
    site = await reports.months.report("RTH", "RTH08", False, "2025-01", "2025-03")
    assert (site["level"], site["sitecode"]) == ("site", "RTH08")
    assert site["months"] == ["2025-01", "2025-02", "2025-03"]
    whole = await reports.months.report("RTH", "RTH08", False, None, None)
    i = whole["months"].index("2025-01")
    assert site["figures"] == {name: v[i : i + 3] for name, v in whole["figures"].items()}
    with pytest.raises(NotFound, match="site RTH99"):
        await reports.months.report("RTH", "RTH99", False, None, None)


async def test_answers_are_kept_until_the_figures_or_the_day_change() -> None:
    clock = Clock()
    service, reports, _ = make(clock)
    await service.apply_many(EVENTS)
    national = await reports.national(False)
    months = await reports.months.report("RTH", None, False, None, None)
    assert await reports.national(False) is national  # one computation per view
    assert await reports.months.report("RTH", None, False, None, None) is months

    await service.apply_many([ds.parsed(ds._enrol("c-new", "nurse", "RTH08", ds.LATEST))])
    changed = await reports.national(False)
    enrolled = national["figures"]["clinicians_enrolled"]
    assert isinstance(enrolled, int) and changed["figures"]["clinicians_enrolled"] == enrolled + 1
    assert await reports.months.report("RTH", None, False, None, None) is not months
    assert await reports.national(False) is changed

    clock.now += timedelta(days=400)  # follow-ups fall due with the day, not with events
    later = await reports.national(False)
    assert later["figures"]["followup_due_month_12"] > changed["figures"]["followup_due_month_12"]


async def test_a_rebuild_replays_the_history_into_a_new_generation_and_switches() -> None:
    service, reports, store = make()
    await service.apply_many(EVENTS[:40])  # what the live service had applied
    late = ds.parsed(ds._enrol("c-live", "doctor", "R0A02", ds.LATEST))

    async def live_event_during_the_replay() -> None:
        assert [g.number for g in await store.writable()] == [1, 2]
        await service.apply_many([late])  # the live consumer writes to both generations

    history = FakeEventHistory(EVENTS, meanwhile=live_event_during_the_replay)
    done = await service.rebuild(history)
    assert done == {"generation": 2, "previous": 1, "events": len(EVENTS), "sites": 4}
    assert sorted(store.generations) == [2] and store.active == 2 and store.building is None
    national = (await reports.national(True))["figures"]
    expected = (await (await applied([*EVENTS, late])).national(True))["figures"]
    assert national == expected
    assert national["clinicians_enrolled"] == 26 + 1  # the dataset's and the live one


async def test_a_rebuild_overtaken_by_another_does_not_switch() -> None:
    service, reports, store = make()
    await service.apply_many(EVENTS)
    before = await reports.national(True)

    async def another_rebuild_starts() -> None:
        await store.start_building()

    with pytest.raises(RuntimeError, match="no longer being built"):
        await service.rebuild(FakeEventHistory(EVENTS[:10], meanwhile=another_rebuild_starts))
    assert store.active == 1 and await reports.national(True) == before


async def test_metrics_export_the_national_figures_exact_and_the_rest_controlled() -> None:
    reports = await applied(EVENTS)
    levels, last_event = await metric_levels(reports)
    assert last_event == ds.LATEST.timestamp()
    labels = [tuple(sorted(labels.items())) for labels, _ in levels]
    assert labels[0] == () and len(labels) == 1 + 3 + 4
    assert (("site", "RTH08"), ("trust", "RTH")) in labels
    figures = dict(zip(labels, (f for _, f in levels), strict=True))
    assert figures[()]["clinicians_enrolled"] == 26
    assert figures[(("trust", "RXF"),)]["clinicians_enrolled"] == "*"


@pytest.mark.parametrize(
    ("ask", "field"),
    [
        (lambda r: r.trust("QAT\n", False), "trustcode"),
        (lambda r: r.trust("ﬀx", False), "trustcode"),
        (lambda r: r.site("RTH", "RTH8", False), "sitecode"),
        (lambda r: r.funnel("followup_rate_month_3", "rmdq", None, False), "measure"),
        (lambda r: r.funnel("improved_share", None, "month_3", False), "measure"),
        (lambda r: r.funnel("improved_share", "rmdq", "month_6", False), "timepoint"),
        (lambda r: r.months.report(None, None, False, "2025-13", None), "from"),
        (lambda r: r.months.report(None, None, False, None, "25-01"), "to"),
        (lambda r: r.months.report("RTH", None, False, "2025-04", "2025-03"), "from"),
        (lambda r: r.months.report("R", None, False, None, None), "trustcode"),
    ],
)
async def test_malformed_input_is_refused_naming_its_field(ask: Any, field: str) -> None:
    reports = await applied(EVENTS[:10])
    with pytest.raises(Malformed) as refused:
        await ask(reports)
    assert refused.value.field == field
    assert len(reports.views.answers) == 0  # nothing kept for a question that cannot be valid


@pytest.mark.parametrize(
    ("ask", "says"),
    [
        (lambda r: r.trust("RYJ", False), "no figures for trust RYJ"),
        (lambda r: r.site("RTH", "RXF01", False), "not a site of trust RTH"),
        (lambda r: r.site("RTH", "RTH99", True), "no figures for site RTH99"),
        (lambda r: r.funnel("nope", None, None, False), "no funnel for 'nope'"),
        (lambda r: r.months.report("RYJ", None, True, None, None), "no figures for trust RYJ"),
    ],
)
async def test_an_unknown_place_or_funnel_is_not_found(ask: Any, says: str) -> None:
    reports = await applied(EVENTS)
    with pytest.raises(NotFound, match=says):
        await ask(reports)
