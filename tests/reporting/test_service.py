"""The reporting service over real NATS and the real database, fed raw CloudEvents."""

from __future__ import annotations

import argparse
import csv
import io
from typing import Any

import httpx
import pytest
from nats.js import JetStreamContext
from nats.js.api import ConsumerInfo
from prometheus_client.parser import text_string_to_metric_families
from pymongo import AsyncMongoClient

from ibest.backbone.settings import Settings
from ibest.backbone.streams import EVENTS_STREAM
from services.reporting.cli import rebuild_command
from services.reporting.service import build_spec
from services.reporting.settings import ReportingSettings
from tests.harness import cloud_event, dead_letters, publish_raw, running_service, wait_for
from tests.reporting import dataset as ds

READ = {"Authorization": "Bearer reader-token"}
RAW = {"Authorization": "Bearer raw-token"}
COUNT_METRICS = {
    "ibest_clinicians_enrolled",
    "ibest_clinicians_started",
    "ibest_clinicians_completed",
    "ibest_clinicians_intending",
    "ibest_clinicians_delivering",
    "ibest_classes_started",
    "ibest_sites_running_classes",
    "ibest_patients_baseline",
    "ibest_patients_month_3",
    "ibest_patients_month_12",
    "ibest_followup_due_month_3",
    "ibest_followup_due_month_12",
    "ibest_clinicians_by_profession",
    "ibest_outcome_n",
    "ibest_reminders_sent",
    "ibest_reminders_failed",
}


TOKENS = "reader-token:read,raw-token:raw"
SPEC = build_spec(
    ReportingSettings(IBEST_REPORTING_TOKENS=TOKENS, IBEST_REPORTING_SNAPSHOT_SECONDS=0.2)
)
"""The service as these tests run it: READ and RAW accepted, metrics refreshed quickly."""


@pytest.fixture(autouse=True)
def with_version_2(monkeypatch: pytest.MonkeyPatch) -> None:
    """The contract judges events against the dataset's catalogue (it has a version 2)."""
    monkeypatch.setattr("shared.envelope.catalogue", lambda: ds.CATALOGUE)


def clock() -> Any:
    return ds.NOW


def subset(actual: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    """The entries of `actual` that `expected` names (to compare the two whole)."""
    return {k: actual.get(k) for k in expected}


def check_trust_rth(rth: dict[str, Any]) -> None:
    """Trust RTH as published, with its sites: the dataset's figures by hand."""
    assert subset(rth["figures"], ds.RTH) == ds.RTH
    sites = {s["sitecode"]: s["figures"] for s in rth["sites"]}
    assert sorted(sites) == ["RTH01", "RTH08"]
    assert subset(sites["RTH08"], ds.RTH08) == ds.RTH08
    assert sites["RTH08"]["outcomes"]["rmdq"]["month_3"] == ds.RTH08_RMDQ_MONTH_3
    assert subset(sites["RTH01"], ds.RTH01) == ds.RTH01
    assert "sites_running_classes" not in sites["RTH08"]


async def get(base: str, path: str, headers: dict[str, str] = READ) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        return await client.get(path, headers=headers)


async def all_applied(js: JetStreamContext) -> bool:
    info: ConsumerInfo = await js.consumer_info(EVENTS_STREAM, "reporting")
    return info.num_pending == 0 and info.num_ack_pending == 0


def scrape(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("ibest_") and not s.name.startswith(("ibest_events", "ibest_handler"))
    }


@pytest.mark.slow
async def test_dataset_figures_through_api_csv_metrics_two_instances_and_rebuild(
    settings: Settings, js: JetStreamContext
) -> None:
    sends = ds.shuffled_with_duplicates()
    half = len(sends) // 2
    for event, msg_id in sends[:half]:
        assert await publish_raw(js, event, msg_id=msg_id)
    async with (
        running_service(SPEC, settings, clock) as a,
        running_service(SPEC, settings, clock) as b,
    ):
        for event, msg_id in sends[half:]:
            assert await publish_raw(js, event, msg_id=msg_id)

        async def national_settled() -> dict[str, Any] | None:
            body = (await get(a, "/v1/national?raw=true", RAW)).json()
            done = subset(body["figures"], ds.NATIONAL) == ds.NATIONAL and await all_applied(js)
            return body if done else None

        national = await wait_for(national_settled, 60, "the national figures")
        assert national["as_of"].replace("Z", "+00:00") == ds.LATEST.isoformat()
        for (measure, tp), expected in ds.NATIONAL_OUTCOMES.items():
            assert national["figures"]["outcomes"][measure][tp] == expected
        # Both instances answer the same; trusts and sites are controlled.
        assert (await get(b, "/v1/national?raw=true", RAW)).json() == national
        # Published national figures: exact, except a by-profession breakdown that would
        # give back a suppressed trust cell by difference (tests/reporting/
        # test_secondary_suppression*): published under the trusts' control.
        published_national = (await get(b, "/v1/national")).json()["figures"]
        assert subset(published_national, ds.NATIONAL_PUBLISHED) == ds.NATIONAL_PUBLISHED
        check_trust_rth((await get(b, "/v1/trusts/RTH")).json())
        every_trust = (await get(a, "/v1/trusts")).json()
        trusts = {t["trustcode"]: t["figures"] for t in every_trust["trusts"]}
        assert sorted(trusts) == ["R0A", "RTH", "RXF"]
        assert every_trust["figures"] == trusts
        assert subset(trusts["RXF"], ds.RXF) == ds.RXF
        assert subset(trusts["R0A"], ds.R0A) == ds.R0A
        site = (await get(a, "/v1/trusts/RTH/sites/RTH08?raw=true", RAW)).json()
        assert site["figures"]["patients_baseline"] == 32
        assert site["figures"]["followup_due_month_3"] == 29
        assert site["figures"]["followup_rate_month_3"] == 0.724
        raw_rth = (await get(a, "/v1/trusts/RTH?raw=true", RAW)).json()
        raw_sites = {s["sitecode"]: s["figures"] for s in raw_rth["sites"]}
        assert raw_sites["RTH01"]["clinicians_enrolled"] == 3  # the mover left for RXF01
        assert raw_rth["figures"]["clinicians_enrolled"] == 16
        assert (raw_rth["figures"]["reminders_sent"], raw_rth["figures"]["reminders_failed"]) == (
            14,
            3,
        )
        assert (
            raw_sites["RTH08"]["reminders_sent"],
            raw_sites["RTH08"]["reminders_failed"],
            raw_sites["RTH01"]["reminders_sent"],
        ) == (13, 3, 1)

        # CSV: the same table, one row per place.
        response = await get(a, "/v1/trusts/RTH", {**READ, "Accept": "text/csv"})
        assert response.headers["content-type"].startswith("text/csv")
        rows = {(r["level"], r["sitecode"]): r for r in csv.DictReader(io.StringIO(response.text))}
        assert rows[("trust", "")]["clinicians_enrolled"] == "15"
        assert rows[("trust", "")]["clinicians_delivering"] == "*"
        assert rows[("site", "RTH01")]["classes_started"] == "*"
        assert rows[("site", "RTH08")]["outcomes.rmdq.month_3.n"] == "10"
        assert rows[("site", "RTH08")]["outcomes.rmdq.month_3.mean_change"] == "-4.75"
        assert rows[("site", "RTH01")]["followup_rate_month_3"] == ""
        assert rows[("trust", "")]["reminders_sent"] == "15"
        assert rows[("trust", "")]["reminders_failed"] == "*"
        assert rows[("site", "RTH01")]["reminders_failed"] == "0"
        national_csv = await get(a, "/v1/national", {**READ, "Accept": "text/csv"})
        [row] = list(csv.DictReader(io.StringIO(national_csv.text)))
        assert row["clinicians_enrolled"] == "26" and row["followup_rate_month_3"] == "0.677"
        assert (row["reminders_sent"], row["reminders_failed"]) == ("14", "11")

        # Metrics: controlled gauges, national exact, suppressed values omitted.
        async def scraped() -> dict[Any, float] | None:
            found = scrape((await get(a, "/metrics", {})).text)
            ok = (
                found.get(("ibest_clinicians_enrolled", frozenset())) == 26
                and found.get(("ibest_reporting_last_event_timestamp_seconds", frozenset()))
                == ds.LATEST.timestamp()
            )
            return found if ok else None

        metrics = await wait_for(scraped, 30, "the figures in /metrics")
        rth_labels = frozenset({("trust", "RTH")})
        rth08 = frozenset({("trust", "RTH"), ("site", "RTH08")})
        rth01 = frozenset({("trust", "RTH"), ("site", "RTH01")})
        assert metrics[("ibest_clinicians_enrolled", rth_labels)] == 15
        assert metrics[("ibest_clinicians_enrolled", rth08)] == 15
        assert ("ibest_clinicians_enrolled", rth01) not in metrics  # 3 is suppressed
        assert ("ibest_clinicians_delivering", rth_labels) not in metrics
        assert metrics[("ibest_sites_running_classes", frozenset())] == 3
        assert metrics[("ibest_reminders_sent", frozenset())] == 14
        assert metrics[("ibest_reminders_failed", frozenset())] == 11
        assert metrics[("ibest_reminders_sent", rth_labels)] == 15
        assert metrics[("ibest_reminders_sent", rth08)] == 15
        assert ("ibest_reminders_failed", rth_labels) not in metrics  # 3 is suppressed
        assert ("ibest_reminders_sent", rth01) not in metrics  # 1 is suppressed
        assert metrics[("ibest_reminders_failed", frozenset({("trust", "RXF")}))] == 10
        assert metrics[("ibest_reminders_failed", frozenset({("trust", "R0A")}))] == 0
        assert metrics[("ibest_followup_rate_month_3", rth_labels)] == 0.7  # 20/30 to 1 place
        assert (
            metrics[
                (
                    "ibest_clinicians_by_profession",
                    frozenset({("stage", "enrolled"), ("profession", "psychologist")}),
                )
            ]
            == 10
        )
        assert (
            "ibest_clinicians_by_profession",  # 7 nationally, "*" beside the trusts'
            frozenset({("stage", "enrolled"), ("profession", "nurse")}),
        ) not in metrics
        assert (
            metrics[("ibest_outcome_n", frozenset({("measure", "rmdq"), ("timepoint", "month_3")}))]
            == 12
        )
        assert (
            metrics[
                (
                    "ibest_outcome_improved_share",
                    rth08 | {("measure", "rmdq"), ("timepoint", "month_3")},
                )
            ]
            == 1.0
        )
        for (name, labels), value in metrics.items():
            if name in COUNT_METRICS and dict(labels).get("trust"):
                assert value == 0 or (value >= 10 and value % 5 == 0), (name, labels, value)

        # Funnel: raw per trust against national, and the published version.
        funnel = (await get(a, "/v1/funnel/followup_rate_month_3?raw=true", RAW)).json()
        assert funnel["national"] == {"value": 0.677, "numerator": 21, "denominator": 31}
        points = {p["trustcode"]: p for p in funnel["trusts"]}
        assert points["RTH"]["value"] == 0.724 and points["RTH"]["denominator"] == 29
        # p = 21/31; 3.09 * sqrt(p(1-p)/29) = 0.268
        assert points["RTH"]["control_limits"]["99.8"] == {"lower": 0.409, "upper": 0.946}
        assert points["RTH"]["outside_99_8"] is False
        # 0 of 2 is inside: the limits for a denominator of 2 span [0, 1].
        assert points["RXF"]["value"] == 0.0 and points["RXF"]["outside_99_8"] is False
        assert points["RXF"]["control_limits"]["99.8"] == {"lower": 0.0, "upper": 1.0}
        assert points["R0A"]["value"] is None and points["R0A"]["control_limits"] is None
        published = (await get(a, "/v1/funnel/followup_rate_month_3")).json()
        points = {p["trustcode"]: p for p in published["trusts"]}
        # Published: the controlled value (20/30 to one place), the flags judged raw, and
        # no per-trust limits; the plotted limits are the curve by denominator.
        assert points["RTH"] == {
            "trustcode": "RTH",
            "value": 0.7,
            "denominator": 30,
            "outside_95": False,
            "outside_99_8": False,
        }
        assert points["RXF"]["value"] == "*" and points["RXF"]["outside_99_8"] == "*"
        assert "control_limits" not in points["RXF"]
        assert published["limits"][0]["denominator"] == 1
        assert published["limits"][-1]["denominator"] >= 30
        assert {r["national"] for r in published["limits"]} == {0.677}
        response = await get(a, "/v1/funnel/followup_rate_month_3", {**READ, "Accept": "text/csv"})
        assert response.headers["content-type"].startswith("text/csv")
        funnel_rows = list(csv.DictReader(io.StringIO(response.text)))
        assert [r["level"] for r in funnel_rows[:4]] == ["national", "trust", "trust", "trust"]
        rth_row = next(r for r in funnel_rows if r["trustcode"] == "RTH")
        assert (rth_row["value"], rth_row["denominator"], rth_row["outside_99_8"]) == (
            "0.7",
            "30",
            "False",
        )
        assert {r["level"] for r in funnel_rows[4:]} == {"limit"}
        assert [r["denominator"] for r in funnel_rows[4:]] == [
            str(r["denominator"]) for r in published["limits"]
        ]
        share = (
            await get(a, "/v1/funnel/improved_share?measure=rmdq&timepoint=month_3&raw=true", RAW)
        ).json()
        assert share["national"]["value"] == 0.75
        completed = (await get(a, "/v1/funnel/clinicians_completed?raw=true", RAW)).json()
        assert completed["national"]["numerator"] == 9
        assert completed["national"]["denominator"] == 26

        # Rebuild from the stream while both instances run: the same answers, new generation.
        before = [
            (await get(a, path, RAW)).json()
            for path in ("/v1/national", "/v1/trusts?raw=true", "/v1/trusts/RTH", "/v1/trusts/RXF")
        ]
        assert await rebuild_command(argparse.Namespace(), settings) == 0
        after = [
            (await get(b, path, RAW)).json()
            for path in ("/v1/national", "/v1/trusts?raw=true", "/v1/trusts/RTH", "/v1/trusts/RXF")
        ]
        assert after == before
    assert await dead_letters(js) == []
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_url)
    try:
        db = client[settings.database_of("reporting")]
        pointer = await db["generations"].find_one({"_id": "active"})
        assert pointer is not None and pointer["generation"] == 2 and pointer["building"] is None
        names = await db.list_collection_names()
        assert "g2_sites" in names and not [n for n in names if n.startswith("g1_")]
    finally:
        await client.close()


@pytest.mark.slow
async def test_tokens_scopes_and_unknown_places(settings: Settings, js: JetStreamContext) -> None:
    enrolled = cloud_event(
        "clinician.enrolled", {"clinician_ref": "c-1", "profession": "nurse", "course_version": "1"}
    )
    await publish_raw(js, enrolled)
    async with running_service(SPEC, settings, clock) as base:

        async def applied() -> bool:
            body = (await get(base, "/v1/national")).json()
            return bool(body["figures"]["clinicians_enrolled"] == 1)

        await wait_for(applied, 30, "the enrolment applied")
        missing = await get(base, "/v1/national", {})
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith("Bearer")
        assert (await get(base, "/v1/trusts", {"Authorization": "Bearer nope"})).status_code == 401
        assert (await get(base, "/v1/national?raw=true")).status_code == 403
        assert (await get(base, "/v1/trusts/RTH?raw=true", RAW)).status_code == 200
        published = (await get(base, "/v1/trusts/RTH")).json()
        assert published["figures"]["clinicians_enrolled"] == "*"
        raw = (await get(base, "/v1/trusts/RTH?raw=true", RAW)).json()
        assert raw["figures"]["clinicians_enrolled"] == 1
        unknown = await get(base, "/v1/trusts/RXX")
        assert unknown.status_code == 404 and "RXX" in unknown.json()["detail"]
        assert (await get(base, "/v1/trusts/RTH/sites/RTH99")).status_code == 404
        other = await get(base, "/v1/trusts/RTH/sites/RXF01")
        assert other.status_code == 404 and "not a site of trust RTH" in other.json()["detail"]
        malformed = await get(base, "/v1/trusts/RT-H")
        assert malformed.status_code == 422
        assert "ODS trust code" in malformed.json()["errors"][0]["message"]
        assert (await get(base, "/v1/funnel/patients_baseline")).status_code == 404
        assert (await get(base, "/v1/funnel/improved_share?measure=rmdq")).status_code == 422
        plain = await get(base, "/v1/national", {**READ, "Accept-Encoding": "identity"})
        zipped = await get(base, "/v1/national", {**READ, "Accept-Encoding": "br, gzip"})
        refused = await get(base, "/v1/national", {**READ, "Accept-Encoding": "gzip;q=0"})
        assert "content-encoding" not in plain.headers and "content-encoding" not in refused.headers
        assert zipped.headers["content-encoding"] == "gzip" and zipped.json() == plain.json()
        assert int(zipped.headers["content-length"]) < len(plain.content)
        assert zipped.headers["vary"] == plain.headers["vary"] == "Accept, Accept-Encoding"
        schema = (await get(base, "/openapi.json", {})).json()
        assert "/v1/trusts/{trustcode}/sites/{sitecode}" in schema["paths"]
        assert "/v1/funnel/{figure}" in schema["paths"]


async def test_malformed_notification_events_are_dead_lettered_by_reporting(
    settings: Settings, js: JetStreamContext
) -> None:
    """reporting consumes notification.* so a broken one is no longer left unread."""
    await publish_raw(
        js,
        b'{"specversion": "1.0", "id": ',
        subject="ibest.v1.RTH.notification.sent",
        msg_id="bad-sent",
    )
    no_reason = ds.notification("failed", "n-1", "RTH08", ds.LATEST)
    del no_reason["data"]["reason"]
    await publish_raw(js, no_reason)
    good = ds.notification("sent", "n-2", "RTH08", ds.LATEST)
    await publish_raw(js, good)
    async with running_service(SPEC, settings, clock) as base:

        async def applied() -> bool:
            body = (await get(base, "/v1/national")).json()
            return bool(body["figures"]["reminders_sent"] == 1)

        await wait_for(applied, 30, "the good reminder counted")

        async def two_letters() -> list[Any] | None:
            letters = await dead_letters(js, "reporting")
            return letters if len(letters) >= 2 else None

        letters = await wait_for(two_letters, 30, "two dead letters from reporting")
        national = (await get(base, "/v1/national")).json()["figures"]
        assert (national["reminders_sent"], national["reminders_failed"]) == (1, 0)
    by_subject = {dl.subject: dl for dl in letters}
    assert by_subject["ibest.v1.RTH.notification.sent"].reason == "invalid"
    failed = by_subject["ibest.v1.RTH.notification.failed"]
    assert failed.reason == "invalid" and "reason" in failed.error
