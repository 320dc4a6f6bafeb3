"""All four services together over real NATS and the real database.

A trust's raw CloudEvents go in; the figures come out of the reporting API. Completion and
outcomes reach reporting only through the events the enrolment and outcomes services derive,
so this proves the services meet through the contract, not just each on its own.
"""

from __future__ import annotations

import json
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from nats.js import JetStreamContext

from ibest.backbone.settings import Settings
from services.enrolment.service import SPEC as ENROLMENT
from services.notifications.service import SPEC as NOTIFICATIONS
from services.outcomes.service import SPEC as OUTCOMES
from services.reporting.service import SPEC as REPORTING
from tests.harness import cloud_event, dead_letters, publish_raw, running_service, wait_for

CATALOGUE = json.loads((Path(__file__).parents[2] / "shared" / "catalogue.json").read_text())
MODULES = [m["module_id"] for m in CATALOGUE["courses"][0]["modules"] if m["required"]]
T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=120)
TOKEN = "e2e-raw"


def scripted_rollout() -> list[dict[str, Any]]:
    """12 clinicians at RTH08 and RXF01; 8 start, 5 complete; 10 patients, 6 followed up."""
    events: list[dict[str, Any]] = []
    for i in range(12):
        trust, site = ("RTH", "RTH08") if i % 2 == 0 else ("RXF", "RXF01")
        ref = f"clin-{i:02d}"
        at = T0 + timedelta(hours=i)

        def ev(
            name: str,
            data: dict[str, Any],
            minutes: int,
            trust: str = trust,
            site: str = site,
            at: datetime = at,
        ) -> dict[str, Any]:
            return cloud_event(
                name, data, trust=trust, site=site, time=at + timedelta(minutes=minutes)
            )

        events.append(
            ev(
                "clinician.enrolled",
                {
                    "clinician_ref": ref,
                    "profession": "physiotherapist" if i < 6 else "nurse",
                    "course_version": "1",
                },
                0,
            )
        )
        if i < 8:
            events.append(ev("module.started", {"clinician_ref": ref, "module_id": MODULES[0]}, 5))
        if i < 5:
            for n, module in enumerate(MODULES):
                events.append(
                    ev(
                        "module.completed",
                        {"clinician_ref": ref, "module_id": module, "quiz_score": 90},
                        10 + n,
                    )
                )
            events.append(
                ev(
                    "clinician.intention_reported",
                    {"clinician_ref": ref, "intends_to_deliver": i < 4, "confidence": 8},
                    60,
                )
            )
    events.append(
        cloud_event(
            "class.started",
            {"class_id": "class-1", "facilitator_refs": ["clin-00"], "planned_sessions": 6},
            trust="RTH",
            site="RTH08",
            time=T0 + timedelta(days=10),
        )
    )
    for p in range(10):
        patient = f"pt-{p:03d}"
        events.append(
            cloud_event(
                "patient.assessed",
                {
                    "patient_ref": patient,
                    "class_id": "class-1",
                    "timepoint": "baseline",
                    "measures": {"rmdq": 14, "pain_nrs": 7},
                },
                trust="RTH",
                site="RTH08",
                time=T0 + timedelta(days=10, minutes=p),
            )
        )
        if p < 6:  # 4 of the 6 improve meaningfully on RMDQ (-6); 2 do not (-2)
            events.append(
                cloud_event(
                    "patient.assessed",
                    {
                        "patient_ref": patient,
                        "timepoint": "month_3",
                        "measures": {"rmdq": 8 if p < 4 else 12, "pain_nrs": 6},
                    },
                    trust="RTH",
                    site="RTH08",
                    time=T0 + timedelta(days=101, minutes=p),
                )
            )
    return events


@pytest.mark.slow
async def test_trust_events_become_published_figures_through_every_service(
    settings: Settings, js: JetStreamContext, monkeypatch: Any
) -> None:
    monkeypatch.setenv("IBEST_REPORTING_TOKENS", f"{TOKEN}:raw")
    monkeypatch.setenv("IBEST_REPORTING_SNAPSHOT_SECONDS", "0.2")
    events = scripted_rollout()
    for event in reversed(events):  # the worst order: every follow-up before its baseline
        await publish_raw(js, event)
    await publish_raw(js, events[0], msg_id="redelivered-copy")  # a duplicate beyond dedup
    async with AsyncExitStack() as stack:
        for spec in (ENROLMENT, OUTCOMES, NOTIFICATIONS):
            await stack.enter_async_context(running_service(spec, settings, lambda: NOW))
        reporting = await stack.enter_async_context(
            running_service(REPORTING, settings, lambda: NOW)
        )
        async with httpx.AsyncClient(
            base_url=reporting, headers={"Authorization": f"Bearer {TOKEN}"}
        ) as api:

            async def national() -> dict[str, Any] | None:
                figures: dict[str, Any] = (await api.get("/v1/national")).json()["figures"]
                done = (
                    figures["clinicians_completed"] == 5
                    and figures["outcomes"]["rmdq"]["month_3"]["n"] == 6
                )
                return figures if done else None

            figures = await wait_for(national, 90, "completion and outcomes derived")
            assert figures["clinicians_enrolled"] == 12
            assert figures["clinicians_started"] == 8
            assert figures["clinicians_intending"] == 4
            # The national by-profession breakdown beside the trusts' "*" would give them
            # back by difference, so it is published under control (HAZ-007): read it raw.
            exact = (await api.get("/v1/national?raw=true")).json()["figures"]
            assert exact["clinicians_completed_by_profession"]["physiotherapist"] == 5
            assert figures["clinicians_completed_by_profession"]["physiotherapist"] == "*"
            assert figures["classes_started"] == 1 and figures["sites_running_classes"] == 1
            assert figures["patients_baseline"] == 10 and figures["patients_month_3"] == 6
            assert figures["followup_due_month_3"] == 10
            assert figures["followup_rate_month_3"] == 0.6
            rmdq = figures["outcomes"]["rmdq"]["month_3"]
            assert rmdq == {
                "n": 6,
                "mean_change": round((4 * -6 + 2 * -2) / 6, 2),
                "improved_share": round(4 / 6, 3),
            }
            # Below national, the same counts leave disclosure-controlled:
            rth = (await api.get("/v1/trusts/RTH")).json()["figures"]
            assert rth["clinicians_enrolled"] == "*" and rth["patients_baseline"] == 10
    assert await dead_letters(js) == []
