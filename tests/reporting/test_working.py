"""Is it working? over real NATS and the real database: every new figure at every level,
raw and published, by hand; through JSON, CSV, /metrics and the comparison route; with
a correction arriving late, two instances, redelivery, any order, and after a rebuild.

The scripted rollout (reading day 15 January 2026):
- Patients, baselines 3 June 2024 (both follow-ups due). RTH08: 9 patients; RMDQ at
  month 12 for 8 (improvements 0..7; p-a7's first outcome said 1, its correction, revision
  2, arrives late and says 7), month 3 for 5 (improvement 4 each); p-a8 never followed up.
  RTH01: 2 patients, month 12 improvements 2 and 2; one month 3 outcome without RMDQ.
  RXF01: 8 patients, month 12 improvement 5 each (a zero-width interval), no month 3.
- Classes: RTH08 first on 10 Jan 2025, again on 11 Jul 2025 (182 days) and 9 Jan 2026
  (364 days); RTH01 first on 20 Jul 2025 (not yet 182 days); RXF01 first on 1 Mar 2025,
  again on 29 Aug 2025 (181 days), and its first class announced again on 15 Sep 2025
  (a re-announcement does not move a class's start).
- Clinicians: RTH08 c-1..c-12 completed, c-5 then re-enrolled at RXF01 (counts there);
  RTH01 c-r1 enrolled only; RXF01 c-x1, c-x2 completed. Facilitators named: c-1, c-2, c-5
  (k-1); c-2, c-3, c-6 (k-2); c-7, c-8, c-9 and c-ghost, never enrolled (k-3); c-4 (RXF01's
  q-1: counted at RTH08, the clinician's place); c-x1 (q-2); c-r1, not completed (k-4).
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from nats.js import JetStreamContext

from ibest.backbone.settings import Settings
from services.reporting.cli import rebuild_command
from tests.harness import cloud_event, dead_letters, publish_raw, running_service, wait_for
from tests.reporting.test_service import RAW, READ, SPEC, all_applied, get, scrape

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
BASELINE = datetime(2024, 6, 3, 9, 0, tzinfo=UTC)
Event = dict[str, Any]


def clock() -> datetime:
    return NOW


def _t(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 9, 0, tzinfo=UTC)


def _at(site: str) -> dict[str, str]:
    return {"trust": site[:3], "site": site}


def _baseline(patient: str, site: str) -> Event:
    return cloud_event(
        "patient.assessed",
        {"patient_ref": patient, "timepoint": "baseline", "measures": {"rmdq": 14, "pain_nrs": 6}},
        time=BASELINE,
        **_at(site),
    )


def _outcome(
    patient: str,
    site: str,
    timepoint: str,
    improvement: int,
    revision: int = 1,
    measure: str = "rmdq",
) -> Event:
    when = _t(2024, 9, 2) if timepoint == "month_3" else _t(2025, 6, 2)
    base = 14 if measure == "rmdq" else 6
    value = base - improvement
    return cloud_event(
        "outcome.recorded",
        {
            "patient_ref": patient,
            "timepoint": timepoint,
            "baseline_time": BASELINE.isoformat(),
            "assessment_time": when.isoformat(),
            "revision": revision,
            "measures": {
                measure: {
                    "baseline": base,
                    "value": value,
                    "change": value - base,
                    "improved": improvement >= 5,
                }
            },
        },
        time=when,
        **_at(site),
    )


def _class(class_id: str, site: str, when: datetime, *facilitators: str) -> Event:
    return cloud_event(
        "class.started",
        {"class_id": class_id, "facilitator_refs": list(facilitators), "planned_sessions": 6},
        time=when,
        **_at(site),
    )


def _clinician(ref: str, site: str, when: datetime, completed: bool = True) -> list[Event]:
    out = [
        cloud_event(
            "clinician.enrolled",
            {"clinician_ref": ref, "profession": "nurse", "course_version": "1"},
            time=when,
            **_at(site),
        )
    ]
    if completed:
        out += [
            cloud_event(
                f"clinician.training_{k}",
                {"clinician_ref": ref, "course_version": "1"},
                time=_t(2024, 12, day),
                **_at(site),
            )
            for k, day in (("started", 1), ("completed", 20))
        ]
    return out


FIRST_P_A7 = _outcome("p-a7", "RTH08", "month_12", 1)
LATE_CORRECTION = _outcome("p-a7", "RTH08", "month_12", 7, revision=2)


def events() -> list[Event]:
    out: list[Event] = []
    for i in range(9):
        out.append(_baseline(f"p-a{i}", "RTH08"))
    for i, improvement in enumerate([0, 1, 2, 3, 4, 5, 6]):
        out.append(_outcome(f"p-a{i}", "RTH08", "month_12", improvement))
    out.append(FIRST_P_A7)  # corrected later
    out += [_outcome(f"p-a{i}", "RTH08", "month_3", 4) for i in range(5)]
    for i in range(2):
        out.append(_baseline(f"p-b{i}", "RTH01"))
        out.append(_outcome(f"p-b{i}", "RTH01", "month_12", 2))
    out.append(_outcome("p-b0", "RTH01", "month_3", 3, measure="pain_nrs"))
    for i in range(8):
        out.append(_baseline(f"p-x{i}", "RXF01"))
        out.append(_outcome(f"p-x{i}", "RXF01", "month_12", 5))
    out += [
        _class("k-1", "RTH08", _t(2025, 1, 10), "c-1", "c-2", "c-5"),
        _class("k-2", "RTH08", _t(2025, 7, 11), "c-2", "c-3", "c-6"),
        _class("k-3", "RTH08", _t(2026, 1, 9), "c-7", "c-8", "c-9", "c-ghost"),
        _class("k-4", "RTH01", _t(2025, 7, 20), "c-r1"),
        _class("q-1", "RXF01", _t(2025, 3, 1), "c-4"),
        _class("q-2", "RXF01", _t(2025, 8, 29), "c-x1"),
        _class("q-1", "RXF01", _t(2025, 9, 15), "c-4"),  # announced again, under a new id
    ]
    for i in range(1, 13):
        out += _clinician(f"c-{i}", "RTH08", _t(2024, 11, 1))
    out += _clinician("c-5", "RXF01", _t(2025, 2, 1))[:1]  # moves; completed version 1
    out += _clinician("c-r1", "RTH01", _t(2024, 11, 1), completed=False)
    out += _clinician("c-x1", "RXF01", _t(2024, 11, 1))
    out += _clinician("c-x2", "RXF01", _t(2024, 11, 1))
    return out


# Hand-computed. Month 12 RMDQ improvements: RTH08 0..7 (sum 28, squares 140); RTH01 2, 2;
# RTH 10 patients, sum 32, mean 3.2, squares 148, variance (148 - 32²/10) / 9 = 5.0667,
# half width 1.96 x 2.2509 / √10 = 1.3951; RXF 5 x 8; England 18 patients, sum 72, mean 4,
# squares 348, variance (348 - 72²/18) / 17 = 3.5294, half width 1.96 x 1.8787 / √18
# = 0.8679. RTH08 alone: mean 3.5, variance 42 / 7 = 6, half width 1.6974.
# Month 12 due: RTH08 9, RTH01 2, RXF01 8. Month 3: RTH08 5 of 9 (improvement 4 each),
# RTH01 0 of 2 with RMDQ, RXF01 0 of 8.
M12 = (
    "rmdq_improvement_month_12",
    "rmdq_improvement_ci_low_month_12",
    "rmdq_improvement_ci_high_month_12",
    "rmdq_followup_completeness_month_12",
    "rmdq_vs_trial_month_12",
)
M3 = (
    "rmdq_improvement_month_3",
    "rmdq_improvement_ci_low_month_3",
    "rmdq_improvement_ci_high_month_3",
    "rmdq_followup_completeness_month_3",
)
SITES = (
    "sites_sustained_6_months",
    "sites_eligible_6_months",
    "sites_sustained_rate_6_months",
    "sites_sustained_12_months",
    "sites_eligible_12_months",
    "sites_sustained_rate_12_months",
)
CLIN = (
    "clinicians_completed",
    "clinicians_facilitating",
    "clinicians_facilitating_rate",
    "clinicians_delivering",
)


def figures(
    m12: tuple[Any, ...],
    m3: tuple[Any, ...],
    clin: tuple[Any, ...],
    sites: tuple[Any, ...] | None = None,
) -> dict[str, Any]:
    out = {
        **dict(zip(M12, m12, strict=True)),
        **dict(zip(M3, m3, strict=True)),
        **dict(zip(CLIN, clin, strict=True)),
    }
    return out if sites is None else {**out, **dict(zip(SITES, sites, strict=True))}


RAW_FIGURES = {
    # sites: RTH08 sustained at 6 and 12 months, RXF01 eligible at 6 months only (181 days).
    "national": figures(
        (4.0, 3.13, 4.87, 0.947, "above"),
        (4.0, 4.0, 4.0, 0.263),
        (14, 10, 0.714, 0),
        (1, 2, 0.5, 1, 1, 1.0),
    ),
    "RTH": figures(
        (3.2, 1.8, 4.6, 0.909, "consistent"),
        (4.0, 4.0, 4.0, 0.455),
        (11, 8, 0.727, 0),
        (1, 1, 1.0, 1, 1, 1.0),
    ),
    "RXF": figures(
        (5.0, 5.0, 5.0, 1.0, "above"),
        (None, None, None, 0.0),
        (3, 2, 0.667, 0),
        (0, 1, 0.0, 0, 0, None),
    ),
    "RTH08": figures(
        (3.5, 1.8, 5.2, 0.889, "consistent"), (4.0, 4.0, 4.0, 0.556), (11, 8, 0.727, 0)
    ),
    "RTH01": figures((2.0, 2.0, 2.0, 1.0, "consistent"), (None, None, None, 0.0), (0, 0, None, 0)),
    "RXF01": figures((5.0, 5.0, 5.0, 1.0, "above"), (None, None, None, 0.0), (3, 2, 0.667, 0)),
}
PUBLISHED = {
    # n 10 of 11 due: both published as 10; month 3's 5 patients hide the mean and interval.
    "RTH": figures(
        (3.2, 1.8, 4.6, 1.0, "consistent"),
        ("*", "*", "*", "*"),
        (10, 10, 1.0, 0),
        ("*", "*", "*", "*", "*", "*"),
    ),
    "RXF": figures(
        (5.0, 5.0, 5.0, 1.0, "above"),
        (None, None, None, 0.0),
        ("*", "*", "*", 0),
        (0, "*", "*", 0, 0, None),
    ),
    "RTH08": figures((3.5, 1.8, 5.2, 1.0, "consistent"), ("*", "*", "*", "*"), (10, 10, 1.0, 0)),
    "RTH01": figures(("*", "*", "*", "*", "*"), (None, None, None, "*"), (0, 0, None, 0)),
    "RXF01": figures((5.0, 5.0, 5.0, 1.0, "above"), (None, None, None, 0.0), ("*", "*", "*", 0)),
}


def subset(actual: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    return {k: actual.get(k, "<absent>") for k in expected}


async def levels(base: str, raw: bool) -> dict[str, dict[str, Any]]:
    """Figures of every place, as the API answers them (published unless raw)."""
    query, headers = ("?raw=true", RAW) if raw else ("", READ)
    out = {"national": (await get(base, "/v1/national")).json()["figures"]}
    for trust in ("RTH", "RXF"):
        body = (await get(base, f"/v1/trusts/{trust}{query}", headers)).json()
        out[trust] = body["figures"]
        out |= {s["sitecode"]: s["figures"] for s in body["sites"]}
    return out


async def check_every_level(base: str) -> None:
    raw, published = await levels(base, True), await levels(base, False)
    for place, expected in RAW_FIGURES.items():
        assert subset(raw[place], expected) == expected, place
    for place, expected in PUBLISHED.items():
        assert subset(published[place], expected) == expected, place
    for site in ("RTH08", "RTH01", "RXF01"):  # sustained sites: trust and national only
        assert not [k for k in (*raw[site], *published[site]) if k.startswith("sites_")]


@pytest.mark.slow
async def test_is_it_working_figures_at_every_level(
    settings: Settings, js: JetStreamContext
) -> None:
    rng = random.Random(20)
    base_events = events()
    sends = [(e, e["id"]) for e in base_events]
    sends += [(e, str(uuid.uuid4())) for e in rng.sample(base_events, len(base_events) // 4)]
    rng.shuffle(sends)
    half = len(sends) // 2
    for event, msg_id in sends[:half]:
        assert await publish_raw(js, event, msg_id=msg_id)
    async with (
        running_service(SPEC, settings, clock) as a,
        running_service(SPEC, settings, clock) as b,
    ):
        for event, msg_id in sends[half:]:
            assert await publish_raw(js, event, msg_id=msg_id)

        async def settled(improvement: float) -> bool:
            body = (await get(a, "/v1/national")).json()["figures"]
            return body["rmdq_improvement_month_12"] == improvement and await all_applied(js)

        # Before the correction p-a7 improved by 1: England's sum is 66 over 18 = 3.67.
        await wait_for(lambda: settled(3.67), 40, "the figures before the correction")
        assert await publish_raw(js, LATE_CORRECTION)
        await wait_for(lambda: settled(4.0), 20, "the late correction applied")
        # The superseded revision delivered again after its correction changes nothing.
        assert await publish_raw(js, FIRST_P_A7, msg_id=str(uuid.uuid4()))
        await wait_for(lambda: settled(4.0), 20, "the stale revision redelivered")
        await check_every_level(a)
        await check_every_level(b)

        # CSV: the same figures, "*" kept, undefined empty.
        text = (await get(a, "/v1/trusts/RTH", {**READ, "Accept": "text/csv"})).text
        rows = {(r["level"], r["sitecode"]): r for r in csv.DictReader(io.StringIO(text))}
        assert (
            rows[("trust", "")]["rmdq_improvement_ci_low_month_12"],
            rows[("trust", "")]["rmdq_vs_trial_month_12"],
            rows[("trust", "")]["sites_sustained_6_months"],
            rows[("trust", "")]["clinicians_facilitating"],
        ) == ("1.8", "consistent", "*", "10")
        assert rows[("site", "RTH01")]["rmdq_improvement_month_12"] == "*"
        assert rows[("site", "RTH01")]["clinicians_facilitating_rate"] == ""

        # Metrics: national exact, trusts and sites published, suppressed omitted.
        async def scraped() -> dict[Any, float] | None:
            found = scrape((await get(a, "/metrics", {})).text)
            return (
                found
                if found.get(("ibest_rmdq_improvement_month_12", frozenset())) == 4.0
                else None
            )

        metrics = await wait_for(scraped, 20, "the figures in /metrics")
        rth, rth08 = frozenset({("trust", "RTH")}), frozenset({("trust", "RTH"), ("site", "RTH08")})
        assert metrics[("ibest_rmdq_improvement_ci_low_month_12", frozenset())] == 3.13
        assert metrics[("ibest_rmdq_improvement_ci_high_month_12", rth)] == 4.6
        assert metrics[("ibest_rmdq_followup_completeness_month_12", rth08)] == 1.0
        assert ("ibest_rmdq_improvement_month_3", rth) not in metrics  # 5 patients
        assert metrics[("ibest_sites_sustained_rate_6_months", frozenset())] == 0.5
        assert ("ibest_sites_sustained_6_months", rth) not in metrics  # 1 is suppressed
        assert metrics[("ibest_clinicians_facilitating", frozenset())] == 10
        assert metrics[("ibest_clinicians_facilitating_rate", rth)] == 1.0
        assert metrics[("ibest_rmdq_vs_trial_month_12", frozenset({("verdict", "above")}))] == 1
        assert metrics[("ibest_rmdq_vs_trial_month_12", rth | {("verdict", "consistent")})] == 1
        assert metrics[("ibest_rmdq_vs_trial_month_12", rth | {("verdict", "above")})] == 0

        # The comparison route: each trust against the trial and the nation.
        comparison = (await get(a, "/v1/funnel/rmdq_improvement_month_12")).json()
        assert comparison["trial"]["ci_low"] == 1.89 and comparison["trial"]["ci_high"] == 2.84
        assert comparison["national"] == {
            "n": 18,
            "improvement": 4.0,
            "ci_low": 3.13,
            "ci_high": 4.87,
            "vs_trial": "above",
        }
        assert comparison["trusts"] == [
            {
                "trustcode": "RTH",
                "n": 10,
                "improvement": 3.2,
                "ci_low": 1.8,
                "ci_high": 4.6,
                "vs_trial": "consistent",
                "vs_national": "consistent",
            },
            {
                "trustcode": "RXF",
                "n": 10,
                "improvement": 5.0,
                "ci_low": 5.0,
                "ci_high": 5.0,
                "vs_trial": "above",
                "vs_national": "above",
            },
        ]
        early = (await get(a, "/v1/funnel/rmdq_improvement_month_3?raw=true", RAW)).json()
        assert early["national"] == {"n": 5, "improvement": 4.0, "ci_low": 4.0, "ci_high": 4.0}
        assert [p["n"] for p in early["trusts"]] == [5, 0]
        published_early = (await get(a, "/v1/funnel/rmdq_improvement_month_3")).json()
        assert published_early["trusts"][0] == {
            "trustcode": "RTH",
            "n": "*",
            "improvement": "*",
            "ci_low": "*",
            "ci_high": "*",
            "vs_national": "*",
        }
        table = await get(a, "/v1/funnel/rmdq_improvement_month_12", {**READ, "Accept": "text/csv"})
        assert table.headers["content-type"].startswith("text/csv")
        lines = [
            (r["level"], r["trustcode"], r["improvement"], r["ci_low"], r["ci_high"])
            for r in csv.DictReader(io.StringIO(table.text))
        ]
        assert lines == [
            ("trial", "", "2.4", "1.89", "2.84"),
            ("national", "", "4.0", "3.13", "4.87"),
            ("trust", "RTH", "3.2", "1.8", "4.6"),
            ("trust", "RXF", "5.0", "5.0", "5.0"),
        ]

        # Rebuild from the stream while both instances run: the same figures.
        assert await rebuild_command(argparse.Namespace(), settings) == 0
        await check_every_level(b)
        await check_every_level(a)
    assert await dead_letters(js) == []


async def test_an_unknown_comparison_is_404_and_nothing_is_made_up(
    settings: Settings,
    js: JetStreamContext,
) -> None:
    """An unknown comparison figure is a 404 naming the choices; no figure is made up."""
    await publish_raw(js, _baseline("p-1", "RTH08"))
    async with running_service(SPEC, settings, clock) as base:

        async def applied() -> bool:
            body = (await get(base, "/v1/national")).json()["figures"]
            return bool(body["patients_baseline"] == 1)

        await wait_for(applied, 30, "the baseline applied")
        missing = await get(base, "/v1/funnel/rmdq_improvement_month_6")
        assert missing.status_code == 404
        assert "rmdq_improvement_month_12" in missing.json()["detail"]
        national = (await get(base, "/v1/national")).json()["figures"]
        assert subset(
            national,
            {
                "rmdq_improvement_month_12": None,
                "rmdq_followup_completeness_month_12": 0.0,
                "rmdq_vs_trial_month_12": None,
            },
        ) == {
            "rmdq_improvement_month_12": None,
            "rmdq_followup_completeness_month_12": 0.0,
            "rmdq_vs_trial_month_12": None,
        }
        async with httpx.AsyncClient(base_url=base) as client:
            assert (await client.get("/v1/funnel/rmdq_improvement_month_12")).status_code == 401
