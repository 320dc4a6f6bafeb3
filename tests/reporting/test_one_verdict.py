"""One verdict per event, end to end over real NATS and the real database: what enrolment
rejects (an unknown course version, a module in no course version) no figure counts, at
any level, raw or published, in JSON, CSV or metrics; the same after a rebuild and from
either of two reporting instances. Each rejected event is one dead-letter row."""

from __future__ import annotations

import argparse
import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from nats.js import JetStreamContext
from nats.js.api import ConsumerInfo
from prometheus_client.parser import text_string_to_metric_families

from ibest.backbone.deadletters import group_dead_letters
from ibest.backbone.settings import Settings
from ibest.backbone.streams import EVENTS_STREAM
from services.enrolment.service import build_spec
from services.reporting.cli import rebuild_command
from shared.catalogue import catalogue
from tests.harness import cloud_event, dead_letters, publish_raw, running_service, wait_for
from tests.reporting.test_service import SPEC as REPORTING

READ = {"Authorization": "Bearer reader-token"}
RAW = {"Authorization": "Bearer raw-token"}
MODULES = catalogue().courses[0].required_modules
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
FUNNEL = ("clinicians_enrolled", "clinicians_started", "clinicians_completed")
# 15 valid enrolments, 10 of them complete every module; 5 more valid enrolments whose only
# module events name modules in no course version; 9 enrolments on version 97 with modules.
EXPECTED = {"clinicians_enrolled": 20, "clinicians_started": 10, "clinicians_completed": 10}


def enrolled(ref: str, minute: int, version: str = "1") -> dict[str, Any]:
    return cloud_event(
        "clinician.enrolled",
        {"clinician_ref": ref, "profession": "nurse", "course_version": version},
        time=T0 + timedelta(minutes=minute),
    )


def module(ref: str, verb: str, module_id: str, minute: int) -> dict[str, Any]:
    return cloud_event(
        f"module.{verb}",
        {"clinician_ref": ref, "module_id": module_id},
        time=T0 + timedelta(minutes=minute),
    )


def trust_events() -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for i in range(15):
        events.append(enrolled(f"valid-{i}", i))
        if i < 10:
            events += [module(f"valid-{i}", "completed", m, 100 + n) for n, m in enumerate(MODULES)]
    for i in range(9):
        events += [
            enrolled(f"v97-{i}", i, version="97"),
            module(f"v97-{i}", "started", MODULES[0], 100),
            module(f"v97-{i}", "completed", MODULES[0], 101),
        ]
    for i in range(5):
        events += [
            enrolled(f"nomod-{i}", i),
            module(f"nomod-{i}", "started", "m99-not-in-any-version", 100),
            module(f"nomod-{i}", "completed", "m42-nor-this", 101),
        ]
    return events


async def get(base: str, path: str, headers: dict[str, str] = READ) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        return await client.get(path, headers=headers)


async def idle(js: JetStreamContext, durable: str) -> bool:
    info: ConsumerInfo = await js.consumer_info(EVENTS_STREAM, durable)
    return info.num_pending == 0 and info.num_ack_pending == 0


def scrape(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("ibest_clinicians")
    }


async def every_view(base: str) -> dict[str, Any]:
    """The funnel counts of RTH and its one site in every view a reader has."""
    views: dict[str, Any] = {}
    national = (await get(base, "/v1/national")).json()["figures"]
    views["national"] = {f: national[f] for f in FUNNEL}
    for scope, headers, query in (("raw", RAW, "?raw=true"), ("published", READ, "")):
        trust = (await get(base, f"/v1/trusts/RTH{query}", headers)).json()
        views[f"trust {scope}"] = {f: trust["figures"][f] for f in FUNNEL}
        [site] = trust["sites"]
        views[f"site {scope}"] = {f: site["figures"][f] for f in FUNNEL}
        one = (await get(base, f"/v1/trusts/RTH/sites/RTH08{query}", headers)).json()
        views[f"site page {scope}"] = {f: one["figures"][f] for f in FUNNEL}
    rows = list(
        csv.DictReader(
            io.StringIO((await get(base, "/v1/trusts/RTH", {**READ, "Accept": "text/csv"})).text)
        )
    )
    for row in rows:
        views[f"csv {row['level']}"] = {f: int(row[f]) for f in FUNNEL}
    [nat] = csv.DictReader(
        io.StringIO((await get(base, "/v1/national", {**READ, "Accept": "text/csv"})).text)
    )
    views["csv national"] = {f: int(nat[f]) for f in FUNNEL}
    metrics = scrape((await get(base, "/metrics", {})).text)
    for name, labels in (
        ("metrics national", frozenset()),
        ("metrics trust", frozenset({("trust", "RTH")})),
        ("metrics site", frozenset({("trust", "RTH"), ("site", "RTH08")})),
    ):
        views[name] = {f: metrics.get((f"ibest_{f}", labels)) for f in FUNNEL}
    views["metrics nurses"] = {
        f: metrics.get(
            (
                "ibest_clinicians_by_profession",
                frozenset({("stage", f.removeprefix("clinicians_")), ("profession", "nurse")}),
            )
        )
        for f in FUNNEL
    }
    return views


EVERY_VIEW = (
    "national",
    "trust raw",
    "site raw",
    "site page raw",
    "trust published",
    "site published",
    "site page published",
    "csv trust",
    "csv site",
    "csv national",
    "metrics national",
    "metrics trust",
    "metrics site",
    "metrics nurses",
)


def settled(base: str, js: JetStreamContext) -> Callable[[], Any]:
    async def check() -> dict[str, Any] | None:
        if not (await idle(js, "enrolment") and await idle(js, "reporting")):
            return None
        views = await every_view(base)
        return views if all(views.get(v) == EXPECTED for v in EVERY_VIEW) else None

    return check


@pytest.mark.slow
async def test_no_figure_counts_what_the_platform_rejects(
    settings: Settings, js: JetStreamContext
) -> None:
    events = trust_events()
    for event in events:
        assert await publish_raw(js, event)
    async with (
        running_service(build_spec(), settings),
        running_service(REPORTING, settings) as a,
        running_service(REPORTING, settings) as b,
    ):
        for base in (a, b):
            await wait_for(settled(base, js), 45, f"exact figures in every view of {base}")
        assert await rebuild_command(argparse.Namespace(), settings) == 0
        for base in (a, b):
            await wait_for(settled(base, js), 30, f"the same figures after a rebuild ({base})")
        letters = await dead_letters(js)

    rejected = group_dead_letters(letters)
    # 9 enrolments on version 97 (enrolment and reporting both reject each: one row),
    # 10 module events naming modules in no version (enrolment alone consumes them).
    assert len(rejected) == 19
    by_type: dict[str, list[Any]] = {}
    for r in rejected:
        by_type.setdefault(r.first.event_type, []).append(r)
    assert len(by_type["clinician.enrolled"]) == 9
    assert all(
        r.consumers == ("enrolment", "reporting") and r.first.trust == "RTH"
        for r in by_type["clinician.enrolled"]
    )
    assert all(
        "data.course_version: '97'" in e
        for r in by_type["clinician.enrolled"]
        for e in r.errors.values()
    )
    modules = by_type["module.started"] + by_type["module.completed"]
    assert len(modules) == 10 and all(r.consumers == ("enrolment",) for r in modules)
    assert all("data.module_id" in r.first.error for r in modules)
