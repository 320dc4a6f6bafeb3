"""The outcomes service over real NATS and the real database, driven by raw CloudEvents."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from nats.js import JetStreamContext

from ibest.backbone.settings import Settings
from services.outcomes.service import SPEC
from tests.harness import (
    SERVICE_AUTH,
    cloud_event,
    dead_letters,
    platform_msg_id,
    publish_raw,
    running_service,
    stream_events,
    wait_for,
)

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def assessed(
    ref: str,
    timepoint: str,
    measures: dict[str, Any],
    *,
    days: float = 0,
    site: str = "RTH08",
    class_id: str | None = None,
    **kw: Any,
) -> dict[str, Any]:
    data: dict[str, Any] = {"patient_ref": ref, "timepoint": timepoint, "measures": measures}
    if class_id:
        data["class_id"] = class_id
    return cloud_event("patient.assessed", data, site=site, time=T0 + timedelta(days=days), **kw)


async def outcomes_in_stream(js: JetStreamContext) -> list[dict[str, Any]]:
    """Every outcome.recorded in IBEST_EVENTS, read like any consumer would (raw nats-py)."""
    events = await stream_events(js, "outcome.recorded")
    for event in events:
        assert event.pop("_msg_id") == platform_msg_id(event)
        assert event.pop("_subject") == f"ibest.v1.{event['trustcode']}.outcome.recorded"
    return events


def of(
    events: list[dict[str, Any]], ref: str, timepoint: str | None = None
) -> list[dict[str, Any]]:
    return [
        e
        for e in events
        if e["data"]["patient_ref"] == ref
        and (timepoint is None or e["data"]["timepoint"] == timepoint)
    ]


async def wait_outcomes(js: JetStreamContext, ref: str, n: int, what: str) -> list[dict[str, Any]]:
    async def check() -> list[dict[str, Any]] | None:
        found = of(await outcomes_in_stream(js), ref)
        return found if len(found) >= n else None

    found = await wait_for(check, 45, what)
    assert found is not None
    return found


async def test_outcome_recorded_from_raw_events_then_superseded_by_corrections(
    settings: Settings, js: JetStreamContext
) -> None:
    baseline = assessed("p-100", "baseline", {"rmdq": 12, "pain_nrs": 7, "psfs": 3.1})
    month_3 = assessed(
        "p-100",
        "month_3",
        {"rmdq": 6, "pain_nrs": 6, "psfs": 5.1, "pseq": 40},
        days=91,
        site="RTH02",
    )
    async with running_service(SPEC, settings) as base_url:
        await publish_raw(js, baseline)
        await publish_raw(js, month_3)
        [first] = await wait_outcomes(js, "p-100", 1, "the month 3 outcome")
        assert first["type"] == "uk.nhs.ibest.outcome.recorded.v1"
        assert (first["trustcode"], first["sitecode"]) == ("RTH", "RTH08")  # the baseline's
        assert first["source"] == "/services/outcomes"
        assert datetime.fromisoformat(first["time"]) == T0 + timedelta(days=91)
        data = dict(first["data"])
        assert datetime.fromisoformat(data.pop("baseline_time")) == T0
        assert datetime.fromisoformat(data.pop("assessment_time")) == T0 + timedelta(days=91)
        assert data == {
            "patient_ref": "p-100",
            "timepoint": "month_3",
            "revision": 1,
            "measures": {
                "rmdq": {"baseline": 12.0, "value": 6.0, "change": -6.0, "improved": True},
                "pain_nrs": {"baseline": 7.0, "value": 6.0, "change": -1.0, "improved": False},
                "psfs": {"baseline": 3.1, "value": 5.1, "change": 2.0, "improved": True},
            },
        }

        # A corrected baseline (later time) supersedes with a higher revision.
        fixed = assessed("p-100", "baseline", {"rmdq": 9, "pain_nrs": 8}, days=2)
        await publish_raw(js, fixed)
        second = (await wait_outcomes(js, "p-100", 2, "the superseding outcome"))[1]
        assert second["data"]["revision"] == 2
        assert second["data"]["measures"] == {
            "rmdq": {"baseline": 9.0, "value": 6.0, "change": -3.0, "improved": True},
            "pain_nrs": {"baseline": 8.0, "value": 6.0, "change": -2.0, "improved": True},
        }
        assert second["id"] != first["id"]

        # An older correction, and the same event again beyond JetStream's dedupe, change
        # nothing; a later marker patient proves they were processed first.
        await publish_raw(js, assessed("p-100", "month_3", {"rmdq": 1}, days=80))
        await publish_raw(js, fixed, msg_id="redelivered-beyond-window")
        await publish_raw(js, assessed("p-marker", "baseline", {"rmdq": 10}))
        await publish_raw(js, assessed("p-marker", "month_3", {"rmdq": 2}, days=91))
        await wait_outcomes(js, "p-marker", 1, "the marker outcome")
        assert len(of(await outcomes_in_stream(js), "p-100")) == 2

        async with httpx.AsyncClient(base_url=base_url, headers=SERVICE_AUTH) as http:
            view = (await http.get("/v1/patients/RTH/p-100")).json()
        assert view["sitecode"] == "RTH08"
        assert view["assessments"]["baseline"]["event_id"] == fixed["id"]
        assert view["assessments"]["month_3"]["event_id"] == month_3["id"]
        assert view["outcomes"]["month_3"]["revision"] == 2
        assert view["outcomes"]["month_3"]["measures"] == second["data"]["measures"]
        history = [(h["event_id"], h["winner"]) for h in view["history"]]
        assert len(history) == 4 and (baseline["id"], False) in history  # kept for audit
    assert await dead_letters(js, "outcomes") == []


@pytest.mark.slow
async def test_early_follow_up_waits_for_baseline_and_classes_link_in_any_order(
    settings: Settings, js: JetStreamContext
) -> None:
    now = T0 + timedelta(days=100)  # month 3 due (31 May), month 12 not yet
    async with running_service(SPEC, settings, clock=lambda: now) as base_url:
        await publish_raw(js, assessed("p-200", "month_12", {"von_korff_pain": 30}, days=364))
        await publish_raw(
            js,
            assessed("p-200", "group_end", {"von_korff_pain": 45.5}, days=42, class_id="class-7"),
        )
        async with httpx.AsyncClient(base_url=base_url, headers=SERVICE_AUTH) as http:

            async def stored() -> bool:
                r = await http.get("/v1/patients/RTH/p-200")
                return r.status_code == 200 and len(r.json()["assessments"]) == 2

            await wait_for(stored, 45, "early follow-ups stored")
            assert of(await outcomes_in_stream(js), "p-200") == []
            pending = (await http.get("/v1/patients/RTH/p-200/followups")).json()
            assert pending["baseline_date"] is None
            assert pending["followups"]["month_12"]["recorded"] is True

            await publish_raw(
                js,
                assessed(
                    "p-200", "baseline", {"von_korff_pain": 50}, site="RTH02", class_id="class-7"
                ),
            )
            found = await wait_outcomes(js, "p-200", 2, "both outcomes after the baseline")
            by_tp = {e["data"]["timepoint"]: e for e in found}
            assert by_tp["month_12"]["data"]["measures"]["von_korff_pain"] == {
                "baseline": 50.0,
                "value": 30.0,
                "change": -20.0,
                "improved": True,
            }
            assert by_tp["group_end"]["data"]["measures"]["von_korff_pain"]["improved"] is False
            assert {e["sitecode"] for e in found} == {"RTH02"}

            schedule = (await http.get("/v1/patients/RTH/p-200/followups")).json()
            assert schedule["baseline_date"] == "2024-03-01"
            assert schedule["followups"]["month_3"] == {
                "due": "2024-05-31",
                "opens": "2024-05-17",
                "closes": "2024-07-12",
                "due_now": True,
                "recorded": False,
            }
            assert schedule["followups"]["month_12"] == {
                "due": "2025-02-28",
                "opens": "2025-01-31",
                "closes": "2025-04-25",
                "due_now": False,
                "recorded": True,
            }

            # The class arrives after the assessments that name it: linked, not refused.
            await publish_raw(
                js,
                cloud_event(
                    "class.started",
                    {
                        "class_id": "class-7",
                        "facilitator_refs": ["c-1", "c-2"],
                        "planned_sessions": 6,
                    },
                    site="RTH02",
                ),
            )

            async def linked() -> dict[str, Any] | None:
                cls = (await http.get("/v1/patients/RTH/p-200")).json()["classes"]["class-7"]
                return dict(cls) if cls else None

            cls = await wait_for(linked, 45, "the class linked")
            assert cls is not None
            assert (cls["sitecode"], cls["planned_sessions"]) == ("RTH02", 6)
            assert cls["facilitator_refs"] == ["c-1", "c-2"]
            assert (await http.get("/v1/patients/RTH/p-unknown")).status_code == 404
            assert (await http.get("/v1/patients/RTH/9434765919")).status_code == 422
    assert await dead_letters(js, "outcomes") == []


async def test_invalid_assessments_are_dead_lettered_with_specific_reasons(
    settings: Settings, js: JetStreamContext
) -> None:
    cases = {
        "out of range": (
            assessed("p-300", "baseline", {"rmdq": 25}),
            "data.measures.rmdq: rmdq must be from 0 to 24, got 25",
        ),
        "not a whole number": (
            assessed("p-300", "baseline", {"pain_nrs": 3.5}),
            "data.measures.pain_nrs: pain_nrs must be a whole number",
        ),
        "unknown measure": (
            assessed("p-300", "baseline", {"oswestry": 20}),
            "data.measures.oswestry: is not a field",
        ),
        "no measure": (
            assessed("p-300", "baseline", {}),
            "data.measures: an assessment must carry at least one measure",
        ),
        "NHS number": (
            assessed("9434765919", "baseline", {"rmdq": 5}),
            "data.patient_ref: is a valid NHS number",
        ),
        "unknown timepoint": (assessed("p-300", "month_6", {"rmdq": 5}), "data.timepoint"),
    }
    for event, _ in cases.values():
        await publish_raw(js, event)
    await publish_raw(js, assessed("p-300", "baseline", {"rmdq": 14}))
    await publish_raw(js, assessed("p-300", "month_3", {"rmdq": 4}, days=91))
    async with running_service(SPEC, settings):
        await wait_outcomes(js, "p-300", 1, "the valid events applied after the invalid")

        async def all_letters() -> list[Any] | None:
            letters = await dead_letters(js, "outcomes")
            return letters if len(letters) >= len(cases) else None

        letters = await wait_for(all_letters, 45, "every invalid event dead-lettered")
        assert letters is not None
    by_id = {json.loads(dl.data)["id"]: dl for dl in letters}
    for name, (event, reason) in cases.items():
        letter = by_id[event["id"]]
        assert letter.reason == "invalid", name
        assert reason in letter.error, (name, letter.error)
    [outcome] = of(await outcomes_in_stream(js), "p-300")
    assert outcome["data"]["measures"]["rmdq"]["baseline"] == 14.0
