"""The audit log over the real database and real HTTP (issue 19, "Audit").

Raw-scope reporting requests, erasures and opt-out changes are recorded with the token id
(never the token), what was asked, when and the answer's size; read-scope requests are not;
`ibest audit list` filters them; `ibest_audit_records_total` counts them.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from nats.js import JetStreamContext
from prometheus_client.parser import text_string_to_metric_families
from pymongo import AsyncMongoClient

from ibest.audit_cli import list_command
from ibest.backbone.audit import audit_log_of
from ibest.backbone.settings import Settings
from ibest.backbone.tokens import derived_id
from ibest.local.processes import free_port
from services.enrolment.cli import erase_command
from services.enrolment.service import SPEC as ENROLMENT
from services.notifications.service import SPEC as NOTIFICATIONS
from services.reporting.reports import Reporting
from services.reporting.service import SPEC as REPORTING
from tests.harness import (
    SERVICE_AUTH,
    SERVICE_TOKEN_ID,
    cloud_event,
    publish_raw,
    running_service,
    wait_for,
)

RAW_SECRET = "audit-raw-secret"
LEGACY_RAW = "legacy-raw-secret"
READ_SECRET = "audit-read-secret"


@pytest.fixture(autouse=True)
def reporting_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "IBEST_REPORTING_TOKENS",
        f"auditor:{RAW_SECRET}:raw,{LEGACY_RAW}:raw,reader:{READ_SECRET}:read",
    )


async def records(settings: Settings, **filters: Any) -> list[dict[str, Any]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_url, tz_aware=True)
    try:
        return await audit_log_of(client, settings).find(**filters)
    finally:
        await client.close()


def audit_counts(metrics_text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics_text):
        if family.name == "ibest_audit_records":
            for sample in family.samples:
                if sample.name == "ibest_audit_records_total":
                    out[sample.labels["action"]] = sample.value
    return out


async def test_raw_scope_requests_are_audited_with_token_ids_and_read_ones_are_not(
    settings: Settings, js: JetStreamContext
) -> None:
    for i in range(3):
        await publish_raw(
            js,
            cloud_event(
                "clinician.enrolled",
                {"clinician_ref": f"a-{i}", "profession": "nurse", "course_version": "1"},
            ),
        )
    started = datetime.now(UTC) - timedelta(seconds=1)
    async with (
        running_service(REPORTING, settings) as base,
        httpx.AsyncClient(base_url=base) as api,
    ):

        def auth(secret: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {secret}"}

        async def applied() -> bool:
            r = await api.get("/v1/national", headers=auth(READ_SECRET))
            return r.status_code == 200 and r.json()["figures"]["clinicians_enrolled"] == 3

        await wait_for(applied, 30, "enrolments applied")
        before = audit_counts((await api.get("/metrics")).text).get("raw_report", 0.0)
        # Read scope, and raw tokens not asking for raw figures: never audited.
        for secret in (READ_SECRET, RAW_SECRET, LEGACY_RAW):
            for path in ("/v1/national", "/v1/trusts/RTH", "/v1/trusts/RTH/sites/RTH08"):
                assert (await api.get(path, headers=auth(secret))).status_code == 200
        refused = await api.get("/v1/trusts?raw=true", headers=auth(READ_SECRET))
        assert refused.status_code == 403
        assert await records(settings) == []

        exact = await api.get("/v1/trusts/RTH?raw=true", headers=auth(RAW_SECRET))
        table = await api.get(
            "/v1/trusts?raw=true", headers={**auth(LEGACY_RAW), "Accept": "text/csv"}
        )
        unknown = await api.get("/v1/trusts/RZZ?raw=true", headers=auth(RAW_SECRET))
        assert (exact.status_code, table.status_code, unknown.status_code) == (200, 200, 404)
        assert exact.json()["figures"]["clinicians_enrolled"] == 3
        after = audit_counts((await api.get("/metrics")).text)["raw_report"]

    found = await records(settings)
    assert len(found) == 3
    assert after - before == 3
    by_path = {r["path"]: r for r in found}
    assert set(by_path) == {"/v1/trusts/RTH", "/v1/trusts", "/v1/trusts/RZZ"}
    assert all(
        r["action"] == "raw_report" and r["via"] == "http" and r["at"] >= started for r in found
    )
    trust = by_path["/v1/trusts/RTH"]
    assert trust["token_id"] == "auditor" and trust["query"] == "raw=true"
    assert trust["status"] == 200
    assert trust["size_bytes"] == int(exact.headers["content-length"])
    legacy = by_path["/v1/trusts"]
    assert legacy["token_id"] == derived_id(LEGACY_RAW)
    assert legacy["size_bytes"] == len(table.content)
    assert by_path["/v1/trusts/RZZ"]["status"] == 404
    assert by_path["/v1/trusts/RZZ"]["size_bytes"] == len(unknown.content)
    text = json.dumps(found, default=str)
    for secret in (RAW_SECRET, LEGACY_RAW, READ_SECRET):
        assert secret not in text
    assert [r["path"] for r in await records(settings, token_id="auditor")] == [
        "/v1/trusts/RZZ",
        "/v1/trusts/RTH",
    ]


@pytest.mark.slow
async def test_erasures_and_opt_out_changes_are_audited_and_listed(
    settings: Settings,
    js: JetStreamContext,
    capsys: pytest.CaptureFixture[str],
    nsettings_env: None,
) -> None:
    await publish_raw(
        js,
        cloud_event(
            "clinician.enrolled",
            {
                "clinician_ref": "c-erase",
                "profession": "nurse",
                "course_version": "1",
                "contact_email": "c-erase@example.nhs.uk",
            },
        ),
    )
    async with (
        running_service(ENROLMENT, settings) as base,
        httpx.AsyncClient(base_url=base, headers=SERVICE_AUTH) as api,
    ):

        async def enrolled() -> bool:
            return (await api.get("/v1/clinicians/c-erase")).status_code == 200

        await wait_for(enrolled, 30, "the enrolment applied")
    assert (
        await erase_command(
            argparse.Namespace(clinician_ref="c-erase", record=True, from_stream=False), settings
        )
        == 0
    )
    async with (
        running_service(NOTIFICATIONS, settings) as base,
        httpx.AsyncClient(base_url=base) as api,
    ):
        refused = await api.post("/v1/opt-outs/c-opt")
        assert refused.status_code == 401
        assert (await api.post("/v1/opt-outs/c-opt", headers=SERVICE_AUTH)).status_code == 200
        assert (await api.delete("/v1/opt-outs/c-opt", headers=SERVICE_AUTH)).status_code == 200
        counts = audit_counts((await api.get("/metrics")).text)
    assert counts["opt_out"] >= 1 and counts["opt_in"] >= 1

    found = await records(settings)
    assert [(r["action"], r["clinician_ref"]) for r in reversed(found)] == [
        ("erasure", "c-erase"),
        ("opt_out", "c-opt"),
        ("opt_in", "c-opt"),
    ]
    erasure = found[-1]
    assert erasure["via"] == "cli" and erasure["token_id"] is None and erasure["operator"]
    assert erasure["record"] is True and erasure["command"] == "ibest enrolment erase"
    assert {r["token_id"] for r in found[:2]} == {SERVICE_TOKEN_ID}

    capsys.readouterr()
    args = argparse.Namespace(
        since=None, action="opt_out", token_id=SERVICE_TOKEN_ID, limit=100, json=True
    )
    assert await list_command(args, settings) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["action"], r["token_id"]) for r in listed] == [("opt_out", SERVICE_TOKEN_ID)]
    later = argparse.Namespace(
        since=datetime.now(UTC) + timedelta(minutes=1),
        action=None,
        token_id=None,
        limit=100,
        json=False,
    )
    assert await list_command(later, settings) == 0
    assert capsys.readouterr().out.strip() == "no audit records"
    plain = argparse.Namespace(since=None, action="erasure", token_id=None, limit=100, json=False)
    assert await list_command(plain, settings) == 0
    out = capsys.readouterr().out
    assert "erasure by cli" in out and "clinician_ref=c-erase" in out


@pytest.fixture
def nsettings_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Notifications without a real channel: reminders are logged, never sent."""
    monkeypatch.setenv("IBEST_NOTIFY_CHANNEL", "log")


@pytest.mark.slow
async def test_raw_figures_are_withheld_when_the_audit_log_cannot_be_written(
    settings: Settings, js: JetStreamContext
) -> None:
    await publish_raw(
        js,
        cloud_event(
            "clinician.enrolled",
            {"clinician_ref": "w-1", "profession": "nurse", "course_version": "1"},
        ),
    )
    apps: list[FastAPI] = []
    unreachable: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        f"mongodb://127.0.0.1:{free_port()}", serverSelectionTimeoutMS=300
    )
    async with (
        running_service(REPORTING, settings, apps=apps) as base,
        httpx.AsyncClient(base_url=base) as api,
    ):
        raw = {"Authorization": f"Bearer {RAW_SECRET}"}

        async def applied() -> bool:
            r = await api.get("/v1/trusts/RTH?raw=true", headers=raw)
            return r.status_code == 200 and r.json()["figures"]["clinicians_enrolled"] == 1

        await wait_for(applied, 30, "the enrolment applied")
        reporting: Reporting = apps[0].state.service
        assert reporting.audit is not None
        reporting.audit.records = unreachable["audit"]["records"]  # a database that is down
        withheld = await api.get("/v1/trusts/RTH?raw=true", headers=raw)
        assert withheld.status_code == 503 and "audit" in withheld.json()["detail"]
        assert "clinicians_enrolled" not in withheld.text
        published = await api.get("/v1/trusts/RTH", headers=raw)  # not audited: still served
        assert published.status_code == 200
    await unreachable.close()
