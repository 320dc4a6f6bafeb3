"""The delivery survey figures (domain.md, "Clinicians' delivery surveys"): the pure
contribution, and the figures end to end over real NATS and the real database, checked
against a hand-computed table at every level, raw and published, in JSON, CSV, metrics and
the funnel, with two instances and after a rebuild."""

from __future__ import annotations

import argparse
import csv
import io
from datetime import UTC, date, datetime
from typing import Any

import pytest
from nats.js import JetStreamContext

from ibest.backbone.settings import Settings
from services.reporting.cli import rebuild_command
from services.reporting.domain.facts import clinician_contribution
from services.reporting.domain.figures import fold_site, raw_figures, total
from tests.harness import cloud_event, dead_letters, publish_raw, running_service, wait_for
from tests.reporting.test_service import RAW, READ, SPEC, all_applied, get, scrape

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)  # reading time: today is 1 March 2026


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def enrolled_fact(days_site: str = "RTH08", cv: str = "1") -> dict[str, Any]:
    return {
        "k": "enrolled",
        "t": utc(2024, 11, 1, 9),
        "trust": days_site[:3],
        "site": days_site,
        "cv": cv,
        "profession": "nurse",
    }


def report_fact(when: datetime, delivering: bool) -> dict[str, Any]:
    return {"k": "delivery", "t": when, "trust": "RTH", "site": "RTH08", "value": delivering}


def test_contribution_carries_due_dates_and_answers_of_both_surveys() -> None:
    completed = {
        "k": "completed",
        "t": utc(2025, 5, 31, 23, 30),
        "trust": "RTH",
        "site": "RTH08",
        "cv": "1",
        "done": utc(2025, 5, 31, 23, 30),
    }  # 1 June, BST
    facts = {
        "e": enrolled_fact(),
        "c": completed,
        "r1": report_fact(utc(2025, 9, 20, 9), True),  # month 4 (17 Sep - 12 Nov)
        "r2": report_fact(utc(2025, 10, 5, 9), False),  # month 4 again: the later wins
        "r3": report_fact(utc(2026, 1, 10, 9), True),
    }  # between windows: neither
    c = clinician_contribution(facts)
    assert c is not None and c["delivering"] is True  # the latest report overall
    assert c["surveys"] == {
        "month_4": {"due": "2025-10-01", "answered": True, "delivering": False},
        "month_12": {"due": "2026-06-01", "answered": False, "delivering": False},
    }


def test_completion_without_completed_at_is_timed_by_its_event_and_others_have_no_survey() -> None:
    old = {
        "k": "completed",
        "t": utc(2025, 1, 15, 10),
        "trust": "RTH",
        "site": "RTH08",
        "cv": "1",
    }  # stored before the field existed
    c = clinician_contribution({"e": enrolled_fact(), "c": old})
    assert c is not None
    assert {s: v["due"] for s, v in c["surveys"].items()} == {
        "month_4": "2025-05-17",
        "month_12": "2026-01-15",
    }
    not_completed = clinician_contribution(
        {"e": enrolled_fact(), "r": report_fact(utc(2025, 6, 1), True)}
    )
    assert not_completed is not None and not_completed["surveys"] == {}
    # Completed version 1, now enrolled on version 2: not completed, so never surveyed.
    moved = clinician_contribution(
        {"e1": enrolled_fact(), "c": old, "e2": {**enrolled_fact(cv="2"), "t": utc(2025, 6, 1)}}
    )
    assert moved is not None and moved["surveys"] == {}


def test_due_is_judged_at_reading_time_and_an_early_answer_counts_as_due() -> None:
    completed = {
        "k": "completed",
        "t": utc(2025, 11, 10, 10),
        "trust": "RTH",
        "site": "RTH08",
        "cv": "1",
        "done": utc(2025, 11, 10, 10),
    }  # due 12 Mar 2026
    silent = clinician_contribution({"e": enrolled_fact(), "c": completed})
    early = clinician_contribution(
        {"e": enrolled_fact(), "c": completed, "r": report_fact(utc(2026, 2, 27, 9), True)}
    )
    assert silent is not None and early is not None
    t = total([fold_site("RTH08", "RTH", [silent, early], [], [])])
    before = raw_figures(t, date(2026, 3, 11), with_sites_running=True)
    on_due = raw_figures(t, date(2026, 3, 12), with_sites_running=True)
    assert [
        before[f"{f}_month_4"]
        for f in (
            "delivery_survey_due",
            "delivery_reported",
            "delivery_response_rate",
            "clinicians_delivering",
        )
    ] == [1, 1, 1.0, 1]
    assert [
        on_due[f"{f}_month_4"]
        for f in ("delivery_survey_due", "delivery_reported", "delivery_response_rate")
    ] == [2, 1, 0.5]
    assert on_due["delivery_survey_due_month_12"] == 0
    assert on_due["delivery_response_rate_month_12"] is None


# The dataset of the end-to-end test, and the table computed from it by hand.
# RTH08: 12 completed 1 June 2025 (month 4 due 1 Oct 2025, month 12 not due until June
#   2026): 9 answered month 4 (6 delivering); of the 3 silent, one reported delivering
#   between the windows (counts only for clinicians_delivering); plus one enrolled clinician
#   who never completed and reports delivering (never surveyed).
# RTH01: 3 completed 15 January 2025 (month 4 due 17 May 2025, month 12 due 15 Jan 2026;
#   one without completed_at): c1 month 4 yes, month 12 yes; c2 month 4 yes then no (the
#   later answer wins), month 12 yes; c3 silent.
# RXF01: completed 20 Oct 2025 (month 4 due 19 Feb 2026) answered yes on 25 Feb; completed
#   10 Nov 2025 (due 12 Mar 2026, opened 26 Feb) answered no on 27 Feb, early; completed
#   1 Dec 2025 (due 2 Apr 2026), silent and not yet due.
FIGURES = (
    "delivery_survey_due",
    "delivery_reported",
    "delivery_response_rate",
    "clinicians_delivering",
)
RAW_TABLE = {  # place -> survey -> (due, reported, rate, delivering)
    "national": {"month_4": (17, 13, 0.765, 8), "month_12": (3, 2, 0.667, 2)},
    "RTH": {"month_4": (15, 11, 0.733, 7), "month_12": (3, 2, 0.667, 2)},
    "RTH08": {"month_4": (12, 9, 0.75, 6), "month_12": (0, 0, None, 0)},
    "RTH01": {"month_4": (3, 2, 0.667, 1), "month_12": (3, 2, 0.667, 2)},
    "RXF": {"month_4": (2, 2, 1.0, 1), "month_12": (0, 0, None, 0)},
    "RXF01": {"month_4": (2, 2, 1.0, 1), "month_12": (0, 0, None, 0)},
}
PUBLISHED_TABLE = {  # 1-7 is "*", others to the nearest 5, rates from the rounded counts
    # (to 1 place over a rounded denominator under 100: 10/15 -> 0.7)
    "RTH": {"month_4": (15, 10, 0.7, "*"), "month_12": ("*", "*", "*", "*")},
    "RTH08": {"month_4": (10, 10, 1.0, "*"), "month_12": (0, 0, None, 0)},
    "RTH01": {"month_4": ("*", "*", "*", "*"), "month_12": ("*", "*", "*", "*")},
    "RXF": {"month_4": ("*", "*", "*", "*"), "month_12": (0, 0, None, 0)},
    "RXF01": {"month_4": ("*", "*", "*", "*"), "month_12": (0, 0, None, 0)},
}
DELIVERING_LATEST = {"national": 11, "RTH08": 8, "RTH01": 2, "RXF01": 1}


def _clinician(
    ref: str,
    site: str,
    completed: datetime | None,
    *,
    with_completed_at: bool = True,
    reports: tuple[tuple[datetime, bool], ...] = (),
) -> list[dict[str, Any]]:
    trust = site[:3]
    events = [
        cloud_event(
            "clinician.enrolled",
            {"clinician_ref": ref, "profession": "nurse", "course_version": "1"},
            trust=trust,
            site=site,
            time=utc(2024, 10, 1, 9),
        )
    ]
    if completed is not None:
        data: dict[str, Any] = {"clinician_ref": ref, "course_version": "1"}
        if with_completed_at:
            data["completed_at"] = completed.isoformat()
        events.append(
            cloud_event(
                "clinician.training_completed", data, trust=trust, site=site, time=completed
            )
        )
    events += [
        cloud_event(
            "clinician.delivery_reported",
            {"clinician_ref": ref, "delivering": yes, "groups_delivered": int(yes)},
            trust=trust,
            site=site,
            time=when,
        )
        for when, yes in reports
    ]
    return events


def dataset() -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    june = utc(2025, 5, 31, 23, 30)  # 00:30 BST on 1 June
    for i in range(12):
        reports: tuple[tuple[datetime, bool], ...] = ()
        if i < 9:
            reports = ((utc(2025, 10, 1 + i, 10), i < 6),)
        elif i == 9:
            reports = ((utc(2026, 1, 10, 10), True),)
        events += _clinician(f"rth08-{i}", "RTH08", june, reports=reports)
    events += _clinician("rth08-learner", "RTH08", None, reports=((utc(2025, 10, 2), True),))
    jan = utc(2025, 1, 15, 10)
    events += _clinician(
        "rth01-1",
        "RTH01",
        jan,
        with_completed_at=False,
        reports=((utc(2025, 5, 20, 9), True), (utc(2026, 1, 20, 9), True)),
    )
    events += _clinician(
        "rth01-2",
        "RTH01",
        jan,
        reports=(
            (utc(2025, 5, 10, 9), True),
            (utc(2025, 6, 1, 9), False),
            (utc(2026, 2, 1, 9), True),
        ),
    )
    events += _clinician("rth01-3", "RTH01", jan)
    events += _clinician(
        "rxf01-1", "RXF01", utc(2025, 10, 20, 10), reports=((utc(2026, 2, 25, 9), True),)
    )
    events += _clinician(
        "rxf01-2", "RXF01", utc(2025, 11, 10, 10), reports=((utc(2026, 2, 27, 9), False),)
    )
    events += _clinician("rxf01-3", "RXF01", utc(2025, 12, 1, 10))
    return events


def row(figures: dict[str, Any], survey: str) -> tuple[Any, ...]:
    return tuple(figures[f"{f}_{survey}"] for f in FIGURES)


def table_of(
    national: dict[str, Any], trusts: dict[str, dict[str, Any]], sites: dict[str, dict[str, Any]]
) -> dict[str, dict[str, tuple[Any, ...]]]:
    places = {"national": national, **trusts, **sites}
    return {place: {s: row(f, s) for s in ("month_4", "month_12")} for place, f in places.items()}


async def read_table(base: str, raw: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """The survey table at every level as the API serves it, and every figure by place."""
    q, headers = ("?raw=true", RAW) if raw else ("", READ)
    national = (await get(base, "/v1/national", headers)).json()["figures"]
    trusts: dict[str, Any] = {}
    sites: dict[str, Any] = {}
    for trust in ("RTH", "RXF"):
        response = await get(base, f"/v1/trusts/{trust}{q}", headers)
        if response.status_code == 404:  # no event of this trust applied yet
            return {}, {}
        body = response.json()
        trusts[trust] = body["figures"]
        sites |= {s["sitecode"]: s["figures"] for s in body["sites"]}
    return table_of(national, trusts, sites), {"national": national, **trusts, **sites}


@pytest.mark.slow
async def test_survey_figures_match_the_hand_computed_table_everywhere(
    settings: Settings, js: JetStreamContext
) -> None:
    events = dataset()
    half = len(events) // 2
    for event in events[:half]:
        assert await publish_raw(js, event)
    async with (
        running_service(SPEC, settings, lambda: NOW) as a,
        running_service(SPEC, settings, lambda: NOW) as b,
    ):
        for event in reversed(events[half:]):  # any order gives the same figures
            assert await publish_raw(js, event)

        async def settled() -> dict[str, Any] | None:
            table, figures = await read_table(a, raw=True)
            done = table == RAW_TABLE and await all_applied(js)
            return figures if done else None

        raw = await wait_for(settled, 45, "the raw survey table")
        for place, n in DELIVERING_LATEST.items():  # clinicians_delivering keeps its meaning
            assert raw[place]["clinicians_delivering"] == n, place
        published, _ = await read_table(b, raw=False)
        assert published == {**PUBLISHED_TABLE, "national": RAW_TABLE["national"]}

        # CSV: the same table, one row per place.
        response = await get(a, "/v1/trusts/RTH", {**READ, "Accept": "text/csv"})
        rows = {(r["level"], r["sitecode"]): r for r in csv.DictReader(io.StringIO(response.text))}
        assert [rows[("trust", "")][f"{f}_month_4"] for f in FIGURES] == ["15", "10", "0.7", "*"]
        assert [rows[("site", "RTH08")][f"{f}_month_12"] for f in FIGURES] == ["0", "0", "", "0"]

        # Metrics: controlled gauges, national exact, suppressed values omitted.
        async def scraped() -> dict[Any, float] | None:
            found = scrape((await get(a, "/metrics", {})).text)
            ok = found.get(("ibest_delivery_survey_due_month_4", frozenset())) == 17
            return found if ok else None

        metrics = await wait_for(scraped, 30, "the survey figures in /metrics")
        rth = frozenset({("trust", "RTH")})
        rth08 = frozenset({("trust", "RTH"), ("site", "RTH08")})
        assert metrics[("ibest_delivery_response_rate_month_4", frozenset())] == 0.765
        assert metrics[("ibest_clinicians_delivering_month_12", frozenset())] == 2
        assert metrics[("ibest_delivery_survey_due_month_4", rth)] == 15
        assert metrics[("ibest_delivery_response_rate_month_4", rth08)] == 1.0
        assert ("ibest_clinicians_delivering_month_4", rth) not in metrics  # 7 is suppressed
        assert ("ibest_delivery_response_rate_month_12", rth08) not in metrics  # undefined

        # Funnel of each survey's response rate, raw and published.
        m4 = (await get(a, "/v1/funnel/delivery_response_rate_month_4?raw=true", RAW)).json()
        assert m4["national"] == {"value": 0.765, "numerator": 13, "denominator": 17}
        points = {p["trustcode"]: p for p in m4["trusts"]}
        assert (points["RTH"]["value"], points["RTH"]["denominator"]) == (0.733, 15)
        assert (points["RXF"]["value"], points["RXF"]["denominator"]) == (1.0, 2)
        assert points["RTH"]["control_limits"] is not None
        m4_published = (await get(a, "/v1/funnel/delivery_response_rate_month_4")).json()
        points = {p["trustcode"]: p for p in m4_published["trusts"]}
        assert (points["RTH"]["value"], points["RTH"]["denominator"]) == (0.7, 15)
        assert (points["RXF"]["value"], points["RXF"]["denominator"]) == ("*", "*")
        m12 = (await get(a, "/v1/funnel/delivery_response_rate_month_12?raw=true", RAW)).json()
        assert m12["national"] == {"value": 0.667, "numerator": 2, "denominator": 3}
        points = {p["trustcode"]: p for p in m12["trusts"]}
        assert points["RXF"]["value"] is None and points["RXF"]["denominator"] == 0

        # Rebuild from the stream while both instances run: the same table.
        assert await rebuild_command(argparse.Namespace(), settings) == 0

        async def rebuilt() -> bool:
            table, _ = await read_table(b, raw=True)
            return table == RAW_TABLE and (await read_table(a, raw=False))[0] == published

        await wait_for(rebuilt, 30, "the same table after the rebuild")
    assert await dead_letters(js) == []
