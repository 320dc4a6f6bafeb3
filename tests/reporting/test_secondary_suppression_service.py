"""The demo's disclosure by difference, tried as an outsider would against the running
service: national figures beside every trust's published figures give back no suppressed
trust cell (read scope), while the raw scope still answers exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from nats.js import JetStreamContext

from ibest.backbone.settings import Settings
from ibest.backbone.streams import EVENTS_STREAM
from services.reporting.domain.disclosure import SUPPRESSED, bounds, flat, recoverable
from services.reporting.service import SPEC
from tests.harness import cloud_event, publish_raw, running_service, wait_for

NOW = datetime(2025, 6, 2, 12, tzinfo=UTC)
READ = {"Authorization": "Bearer reader-token"}
RAW = {"Authorization": "Bearer raw-token"}
# Five trusts with one doctor each and twenty physiotherapists, ten with physiotherapists
# only: exactly the demo's national doctor = 5 beside five trusts at "*" and the rest 0.
WITH_DOCTOR = ["RTH", "RNU", "RKB", "RRK", "RJ1"]
WITHOUT = ["RYJ", "R0A", "RHM", "RX1", "RGT", "RR8", "RTD", "RHQ", "RA7", "RXF"]


@pytest.fixture(autouse=True)
def reporting_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IBEST_REPORTING_TOKENS", "reader-token:read,raw-token:raw")


def enrolments() -> list[dict[str, Any]]:
    events = []
    when = NOW - timedelta(days=30)
    for trust in WITH_DOCTOR + WITHOUT:
        staff = [("physiotherapist", 20)] + ([("doctor", 1)] if trust in WITH_DOCTOR else [])
        for profession, n in staff:
            for i in range(n):
                events.append(cloud_event(
                    "clinician.enrolled",
                    {"clinician_ref": f"{trust}-{profession}-{i}", "profession": profession,
                     "course_version": "1"},
                    trust=trust, site=f"{trust}01", time=when))
    return events


async def test_no_trust_cell_is_recovered_by_difference(
    settings: Settings, js: JetStreamContext
) -> None:
    events = enrolments()
    for event in events:
        assert await publish_raw(js, event)
    async with running_service(SPEC, settings, lambda: NOW) as base, \
            httpx.AsyncClient(base_url=base, timeout=10) as client:

        async def applied() -> bool:
            info = await js.consumer_info(EVENTS_STREAM, "reporting")
            raw = (await client.get("/v1/national?raw=true", headers=RAW)).json()
            return (info.num_pending == 0 and info.num_ack_pending == 0
                    and raw.get("figures", {}).get("clinicians_enrolled") == len(events))

        await wait_for(applied, 60, "every enrolment applied")
        raw = flat((await client.get("/v1/national?raw=true", headers=RAW)).json()["figures"])
        national = flat((await client.get("/v1/national", headers=READ)).json()["figures"])
        trusts = [flat(t["figures"]) for t in
                  (await client.get("/v1/trusts", headers=READ)).json()["trusts"]]

    doctors = "clinicians_enrolled_by_profession.doctor"
    assert raw[doctors] == 5 and [t[doctors] for t in trusts].count(SUPPRESSED) == 5
    # The attack that worked on the demo: the exact national total pins every "*" to 1.
    assert recoverable((raw[doctors], raw[doctors]), [t[doctors] for t in trusts])
    # What is published now lets no suppressed trust cell be pinned down, for any count.
    for name, value in national.items():
        cells = [t[name] for t in trusts if name in t]
        if value == SUPPRESSED or (isinstance(value, int) and not isinstance(value, bool)):
            known = bounds(value) if value != raw[name] or value == SUPPRESSED \
                else (value, value)
            assert not recoverable(known, cells), name
    assert national[doctors] == SUPPRESSED
    # Figures no trust cell depends on stay exact: 300 physiotherapists, no one completed.
    assert national["clinicians_enrolled_by_profession.physiotherapist"] == 300
    assert national["clinicians_completed"] == 0
