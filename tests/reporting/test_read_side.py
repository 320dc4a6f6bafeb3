"""The read side's shared work (issue 26): what several answers of one view share, what a
view carries over from the one before, and the metrics snapshot rendered in slices. Each
must give exactly the answers computed afresh. On the in-memory fakes (no servers)."""

from __future__ import annotations

import asyncio
from typing import Any

from services.reporting.adapters.metrics import exposition, sliced_exposition
from services.reporting.application import ReportingService
from services.reporting.pacing import Slices
from services.reporting.reports import Reporting, metric_levels
from tests.fakes.reporting import FakeGenerationStore
from tests.reporting import dataset as ds
from tests.reporting.test_application import EVENTS, Clock


async def every_answer(reports: Reporting) -> list[dict[str, Any]]:
    """Every current report, raw and published, and every funnel and comparison."""
    answers: list[dict[str, Any]] = []
    for raw in (True, False):
        answers += [await reports.national(raw), await reports.trusts(raw)]
        for trust in answers[-1]["figures"]:
            found = await reports.trust(trust, raw)
            answers.append(found)
            answers += [await reports.site(trust, s["sitecode"], raw) for s in found["sites"]]
        answers += [
            await reports.funnel("followup_rate_month_3", None, None, raw),
            await reports.funnel("improved_share", "rmdq", "month_3", raw),
            await reports.funnel("rmdq_improvement_month_3", None, None, raw),
        ]
    return answers


async def test_a_view_after_a_change_answers_as_one_computed_afresh() -> None:
    store = FakeGenerationStore()
    service = ReportingService(store)
    clock = Clock()
    live = Reporting(store, clock, [])
    await service.apply_many(EVENTS)
    await every_answer(live)  # the view before the change computed every trust's figures
    before = await live.view()
    # One enrolment at RTH: the other trusts' summaries are unchanged.
    await service.apply_many([ds.parsed(ds._enrol("c-new", "doctor", "RTH08", ds.LATEST))])
    after = await every_answer(live)
    assert after == await every_answer(Reporting(store, clock, []))
    now = await live.view()
    moved_by = now.shared["previous"]["national"][1]
    assert [(old["site"], new["site"]) for old, new in moved_by] == [("RTH08", "RTH08")]
    for trust in ("RXF", "R0A"):  # their figures were carried over, not computed again
        assert now.trust_figures(False)[trust] is before.trust_figures(False)[trust]
    assert now.trust_figures(False)["RTH"] is not before.trust_figures(False)["RTH"]
    assert after[0]["figures"]["clinicians_enrolled"] == 26 + 1


async def test_no_trust_figures_are_carried_into_another_day() -> None:
    store = FakeGenerationStore()
    service = ReportingService(store)
    clock = Clock()
    live = Reporting(store, clock, [])
    await service.apply_many(EVENTS)
    await every_answer(live)
    before = await live.view()
    clock.now = ds.NOW.replace(year=2026)  # follow-ups and surveys fall due
    after = await every_answer(live)
    now = await live.view()
    assert now.key != before.key and now.summaries == before.summaries
    for trust, figures in now.trust_figures(False).items():
        assert figures is not before.trust_figures(False)[trust]
    assert after == await every_answer(Reporting(store, clock, []))


async def test_the_sliced_snapshot_is_the_whole_render_and_lets_requests_in() -> None:
    store = FakeGenerationStore()
    await ReportingService(store).apply_many(EVENTS)
    reports = Reporting(store, Clock(), [])
    ticks = 0

    async def another_request() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    other = asyncio.ensure_future(another_request())
    await asyncio.sleep(0)
    started = ticks
    slices = Slices(seconds=0, rest=0)  # give the loop back at every step
    levels, last_event = await metric_levels(reports, slices)
    text = await sliced_exposition(levels, last_event, slices)
    served = ticks - started
    other.cancel()
    assert text == exposition(levels, last_event)
    assert b"# HELP ibest_clinicians_enrolled " in text and text.count(b"# TYPE ") > 10
    assert served >= len(levels), "the loop ran other work between the snapshot's levels"


async def test_the_snapshot_after_a_change_renders_only_what_changed_and_all_of_it() -> None:
    store = FakeGenerationStore()
    service = ReportingService(store)
    await service.apply_many(EVENTS)
    reports = Reporting(store, Clock(), [])
    sites: dict[str, Any] = {}
    rendered: dict[Any, Any] = {}
    levels, last_event = await metric_levels(reports, Slices(), sites)
    await sliced_exposition(levels, last_event, Slices(), rendered)
    before_sites, before_rendered = dict(sites), dict(rendered)
    await service.apply_many([ds.parsed(ds._enrol("c-new", "doctor", "RTH08", ds.LATEST))])
    levels, last_event = await metric_levels(reports, Slices(), sites)
    text = await sliced_exposition(levels, last_event, Slices(), rendered)
    fresh_levels, fresh_last = await metric_levels(Reporting(store, Clock(), []))
    assert levels == fresh_levels
    assert text == exposition(fresh_levels, fresh_last)
    # RXF's sites kept their figures and their text; RTH08 and RTH itself were redone.
    rxf = next(site for site in sites if site.startswith("RXF"))
    assert sites[rxf][2] is before_sites[rxf][2]
    assert rendered[(("trust", "RXF"),)][1] is before_rendered[(("trust", "RXF"),)][1]
    assert sites["RTH08"][2] is not before_sites["RTH08"][2]
    assert rendered[(("trust", "RTH"),)][1] != before_rendered[(("trust", "RTH"),)][1]
