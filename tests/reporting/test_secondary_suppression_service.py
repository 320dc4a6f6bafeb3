"""The demo's disclosure by difference, tried as an outsider would against the running
service: national by-profession figures beside every trust's published figures give back
no suppressed trust cell (read scope), headline national figures stay exact unless
IBEST_REPORTING_PROTECT_NATIONAL is on, and the raw scope still answers exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from nats.js import JetStreamContext

from ibest.backbone.settings import Settings
from ibest.backbone.streams import EVENTS_STREAM
from services.reporting.domain.disclosure import SUPPRESSED, bounds, flat, recoverable
from services.reporting.service import build_spec
from services.reporting.settings import ReportingSettings
from tests.harness import cloud_event, publish_raw, running_service, wait_for
from tests.reporting.test_service import TOKENS

NOW = datetime(2025, 6, 2, 12, tzinfo=UTC)
READ = {"Authorization": "Bearer reader-token"}
RAW = {"Authorization": "Bearer raw-token"}
# Five trusts with one doctor each and twenty physiotherapists, ten with physiotherapists
# only: exactly the demo's national doctor = 5 beside five trusts at "*" and the rest 0.
WITH_DOCTOR = ["RTH", "RNU", "RKB", "RRK", "RJ1"]
WITHOUT = ["RYJ", "R0A", "RHM", "RX1", "RGT", "RR8", "RTD", "RHQ", "RA7", "RXF"]


def enrolments(staffing: dict[str, list[tuple[str, int]]] | None = None) -> list[dict[str, Any]]:
    events = []
    when = NOW - timedelta(days=30)
    staffing = staffing or {
        trust: [("physiotherapist", 20)] + ([("doctor", 1)] if trust in WITH_DOCTOR else [])
        for trust in WITH_DOCTOR + WITHOUT
    }
    for trust, staff in staffing.items():
        for profession, n in staff:
            for i in range(n):
                events.append(
                    cloud_event(
                        "clinician.enrolled",
                        {
                            "clinician_ref": f"{trust}-{profession}-{i}",
                            "profession": profession,
                            "course_version": "1",
                        },
                        trust=trust,
                        site=f"{trust}01",
                        time=when,
                    )
                )
    return events


Flat = dict[str, Any]


async def published_beside_raw(
    settings: Settings,
    js: JetStreamContext,
    events: list[dict[str, Any]],
    months: dict[str, Any] | None = None,
    *,
    protect_national: bool = False,
) -> tuple[Flat, Flat, list[Flat]]:
    """Once every event is applied: the raw national figures, the published national ones
    and every trust's published figures (what an outsider holds), flattened; `months`
    receives the published national monthly series and every trust's."""
    for event in events:
        assert await publish_raw(js, event)
    async with (
        running_service(
            build_spec(
                ReportingSettings(
                    IBEST_REPORTING_TOKENS=TOKENS,
                    IBEST_REPORTING_PROTECT_NATIONAL=protect_national,
                )
            ),
            settings,
            lambda: NOW,
        ) as base,
        httpx.AsyncClient(base_url=base, timeout=10) as client,
    ):

        async def applied() -> bool:
            info = await js.consumer_info(EVENTS_STREAM, "reporting")
            raw = (await client.get("/v1/national?raw=true", headers=RAW)).json()
            return bool(
                info.num_pending == 0
                and info.num_ack_pending == 0
                and raw.get("figures", {}).get("clinicians_enrolled") == len(events)
            )

        await wait_for(applied, 60, "every enrolment applied")
        raw = flat((await client.get("/v1/national?raw=true", headers=RAW)).json()["figures"])
        national = flat((await client.get("/v1/national", headers=READ)).json()["figures"])
        trusts = [
            flat(t["figures"])
            for t in (await client.get("/v1/trusts", headers=READ)).json()["trusts"]
        ]
        if months is not None:
            months["national"] = (await client.get("/v1/national/months", headers=READ)).json()
            months["funnel"] = (
                await client.get("/v1/funnel/clinicians_completed", headers=READ)
            ).json()
            for trust in sorted({str(e["trustcode"]) for e in events}):
                months[trust] = (
                    await client.get(f"/v1/trusts/{trust}/months", headers=READ)
                ).json()
    return raw, national, trusts


async def test_no_trust_cell_is_recovered_by_difference(
    settings: Settings, js: JetStreamContext
) -> None:
    """The default: the by-profession family is protected, headline figures exact."""
    events = enrolments()
    raw, national, trusts = await published_beside_raw(settings, js, events)
    doctors = "clinicians_enrolled_by_profession.doctor"
    assert raw[doctors] == 5 and [t[doctors] for t in trusts].count(SUPPRESSED) == 5
    # The attack that worked on the demo: the exact national total pins every "*" to 1.
    assert recoverable((raw[doctors], raw[doctors]), [t[doctors] for t in trusts])
    # What is published now lets no suppressed trust cell be pinned down, for any count
    # (in this rollout no headline count can pin one either).
    for name, value in national.items():
        cells = [t[name] for t in trusts if name in t]
        if value == SUPPRESSED or (isinstance(value, int) and not isinstance(value, bool)):
            known = bounds(value) if value != raw[name] or value == SUPPRESSED else (value, value)
            assert not recoverable(known, cells), name
    assert national[doctors] == SUPPRESSED
    # Figures no trust cell depends on stay exact: 300 physiotherapists, no one completed.
    assert national["clinicians_enrolled_by_profession.physiotherapist"] == 300
    assert national["clinicians_completed"] == 0
    assert national["clinicians_enrolled"] == raw["clinicians_enrolled"] == 305


@pytest.mark.parametrize("protect", [False, True])
async def test_headline_national_counts_are_protected_only_when_configured(
    settings: Settings, js: JetStreamContext, protect: bool
) -> None:
    """Few trusts: two with one doctor each. The national 2 enrolled beside their two "*"
    pins both to 1. By default it is published exactly (domain.md: national totals are not
    suppressed; at national scale the other trusts' ranges leave too many possibilities,
    HAZ-008); with IBEST_REPORTING_PROTECT_NATIONAL it goes out under the trusts' control.
    The by-profession breakdown is protected in both."""
    events = enrolments({"RTH": [("doctor", 1)], "RXF": [("doctor", 1)]})
    months: dict[str, Any] = {}
    raw, national, trusts = await published_beside_raw(
        settings, js, events, months, protect_national=protect
    )
    enrolled = "clinicians_enrolled"
    assert raw[enrolled] == 2
    cells = [t[enrolled] for t in trusts]
    assert cells == [SUPPRESSED, SUPPRESSED]
    assert recoverable((2, 2), cells)  # what the default accepts for headline counts
    assert national[enrolled] == (SUPPRESSED if protect else 2)
    assert national["clinicians_enrolled_by_profession.doctor"] == SUPPRESSED
    assert national["clinicians_intending"] == 0  # 0 stays 0
    # The monthly national series, month by month against the trusts' series (domain/
    # months.py, protected_national_series): the same rule.
    series = months["national"]["figures"][enrolled]
    assert [months[t]["figures"][enrolled][-1] for t in ("RTH", "RXF")] == [SUPPRESSED] * 2
    assert series[-1] == (SUPPRESSED if protect else 2)
    # The funnel's national proportion is built on the enrolled count: with the setting its
    # numerator, denominator and value come from the controlled counts.
    funnel = months["funnel"]["national"]
    assert funnel["denominator"] == (SUPPRESSED if protect else 2)
    assert funnel["value"] == (SUPPRESSED if protect else 0.0)
